"""Loading `model.safetensors` as microsoft publishes it (upstream's key names) into our modules.

The key mapping is written once, as one table of name templates (`_RULES`: upstream's name beside ours); both
directions, `to_ours` and `to_upstream`, are read from it, and a name that two rules match is an error in the table.
Loading pairs every tensor of ours with its upstream key and checks the pairing is one-to-one first. Loading is
strict: every tensor our modules need must be there, and every key in the file must be either used or one of the
known unused ones (the TTS stack's own token embedding, which upstream keeps and never reads; the acoustic encoder,
which a `save_pretrained` folder has and the published file leaves out)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import safe_open

from .config import load_config
from .model import RealtimeModel


class CheckpointError(ValueError):
    """The checkpoint does not fit the config: names the missing and unexpected keys."""


_DEC = "model.acoustic_tokenizer.decoder."
_HEAD = "model.prediction_head."
# A decoder block's tensors other than its mixer (which upstream nests three `conv`s deeper than transformers).
_BLOCK = r"gamma|ffn_gamma|(?:norm|ffn_norm|ffn\.linear1|ffn\.linear2)\.\w+"

# (upstream's key, our name). `{i}`/`{j}`: a layer index (`{i+1}`: the same index, one more on that side); `{w}`: one
# name segment; `{proj}`: an MLP projection; `{block}`: a decoder block tensor; `{rest}`: the rest of the name.
_RULES: tuple[tuple[str, str], ...] = (
    ("model.language_model.embed_tokens.weight", "embed_tokens.weight"),
    ("model.tts_language_model.norm.weight", "tts_norm.weight"),
    ("model.tts_input_types.weight", "input_types.weight"),
    ("model.speech_scaling_factor", "speech_scaling_factor"),
    ("model.speech_bias_factor", "speech_bias_factor"),
    ("model.language_model.layers.{i}.{rest}", "lm_layers.{i}.{rest}"),
    ("model.tts_language_model.layers.{i}.{rest}", "tts_layers.{i}.{rest}"),
    ("model.acoustic_connector.fc1.{w}", "connector.linear_1.{w}"),
    ("model.acoustic_connector.norm.{w}", "connector.act.{w}"),
    ("model.acoustic_connector.fc2.{w}", "connector.linear_2.{w}"),
    ("tts_eos_classifier.fc1.{w}", "eos.fc1.{w}"),
    ("tts_eos_classifier.fc2.{w}", "eos.fc2.{w}"),
    (_HEAD + "t_embedder.mlp.0.{w}", "head.timestep_proj.fc1.{w}"),
    (_HEAD + "t_embedder.mlp.2.{w}", "head.timestep_proj.fc2.{w}"),
    (_HEAD + "layers.{i}.adaLN_modulation.1.{w}", "head.layers.{i}.linear.{w}"),
    (_HEAD + "final_layer.adaLN_modulation.1.{w}", "head.final_layer.linear_1.{w}"),
    (_HEAD + "final_layer.linear.{w}", "head.final_layer.linear_2.{w}"),
    (_HEAD + "noisy_images_proj.{w}", "head.noisy_images_proj.{w}"),
    (_HEAD + "cond_proj.{w}", "head.cond_proj.{w}"),
    (_HEAD + "layers.{i}.ffn.{proj}.{w}", "head.layers.{i}.ffn.{proj}.{w}"),
    (_HEAD + "layers.{i}.norm.{w}", "head.layers.{i}.norm.{w}"),
    (_DEC + "upsample_layers.0.0.conv.conv.{w}", "decoder.stem.conv.conv.{w}"),
    (_DEC + "upsample_layers.{i+1}.0.convtr.convtr.{w}", "decoder.conv_layers.{i}.convtr.convtr.{w}"),
    (_DEC + "stages.0.{j}.mixer.conv.conv.conv.{w}", "decoder.stem.stage.{j}.mixer.conv.{w}"),
    (_DEC + "stages.0.{j}.{block}", "decoder.stem.stage.{j}.{block}"),
    (_DEC + "stages.{i+1}.{j}.mixer.conv.conv.conv.{w}", "decoder.conv_layers.{i}.stage.{j}.mixer.conv.{w}"),
    (_DEC + "stages.{i+1}.{j}.{block}", "decoder.conv_layers.{i}.stage.{j}.{block}"),
    (_DEC + "head.conv.conv.{w}", "decoder.head.conv.{w}"),
)
_FIELDS = {"i": r"0|[1-9]\d*", "j": r"0|[1-9]\d*", "w": r"\w+", "proj": r"\w+_proj", "block": _BLOCK, "rest": r".+"}
_FIELD = re.compile(r"\{(\w+)(?:\+(\d+))?\}")

# Keys a published or save_pretrained checkpoint may hold that inference never reads.
_UNUSED = (
    re.compile(r"^model\.tts_language_model\.embed_tokens\.weight$"),
    re.compile(r"^model\.language_model\.norm\.weight$"),
    re.compile(r"^model\.acoustic_tokenizer\.encoder\."),
)


class _Template:
    """One side of a rule: matches a name into field values, and writes field values into a name."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offsets: dict[str, int] = {}
        pattern, pos = "", 0
        for m in _FIELD.finditer(text):
            field, offset = m[1], int(m[2] or 0)
            pattern += re.escape(text[pos : m.start()]) + f"(?P<{field}>{_FIELDS[field]})"
            self.offsets[field] = offset
            pos = m.end()
        self.regex = re.compile(pattern + re.escape(text[pos:]))

    def match(self, name: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(name)
        if m is None:
            return None
        values = dict(m.groupdict())
        for field, offset in self.offsets.items():
            if offset:
                index = int(values[field]) - offset
                if index < 0:
                    return None
                values[field] = str(index)
        return values

    def write(self, values: dict[str, str]) -> str:
        def field(m: re.Match[str]) -> str:
            offset = self.offsets[m[1]]
            return str(int(values[m[1]]) + offset) if offset else values[m[1]]

        return _FIELD.sub(field, self.text)


def _compile(rules: Iterable[tuple[str, str]]) -> list[tuple[_Template, _Template]]:
    out: list[tuple[_Template, _Template]] = []
    for upstream, ours in rules:
        up, we = _Template(upstream), _Template(ours)
        if set(up.offsets) != set(we.offsets):
            raise ValueError(f"checkpoint rule {upstream!r} <-> {ours!r}: the two sides name different fields")
        out.append((up, we))
    return out


_COMPILED = _compile(_RULES)


def _translate(name: str, upstream_side: bool) -> str | None:
    """`name` through the one rule that matches it (None: none does); two matching rules are a table error."""
    hits: list[str] = []
    for up, ours in _COMPILED:
        src, dst = (up, ours) if upstream_side else (ours, up)
        values = src.match(name)
        if values is not None:
            hits.append(dst.write(values))
    if len(hits) > 1:
        raise ValueError(f"checkpoint rules: {name!r} matches {len(hits)} rules")
    return hits[0] if hits else None


def to_ours(key: str) -> str | None:
    """Our parameter name for an upstream checkpoint key (None: not ours)."""
    return _translate(key, upstream_side=True)


def to_upstream(name: str) -> str | None:
    """The upstream checkpoint key for one of our parameter names (None: the table has no rule for it)."""
    return _translate(name, upstream_side=False)


def _is_unused(key: str) -> bool:
    return any(p.search(key) for p in _UNUSED)


def upstream_names(names: Iterable[str]) -> dict[str, str]:
    """Our tensor names by their upstream keys, checked one-to-one: each of ours has an upstream key, no two share
    one, and each key leads back to its own name."""
    out: dict[str, str] = {}
    for name in names:
        key = to_upstream(name)
        if key is None:
            raise CheckpointError(f"no upstream name for our tensor {name}")
        if key in out:
            raise CheckpointError(f"our tensors {out[key]} and {name} both map to {key}")
        if to_ours(key) != name:
            raise CheckpointError(f"{name} -> {key} -> {to_ours(key)}: the key mapping is not one-to-one")
        out[key] = name
    return out


class WeightFill:
    """One strict pass of upstream-named tensors into a model (already placed on its device and dtype): offer each
    key (`wants`), give the tensor if wanted (`put`), then `finish`, which names what is missing, unexpected or of
    the wrong shape."""

    def __init__(self, model: RealtimeModel) -> None:
        self._state = model.state_dict()
        self._ours = upstream_names(self._state)
        self._upstream = {name: key for key, name in self._ours.items()}
        self._device = model.device
        self._found: set[str] = set()
        self._unexpected: list[str] = []
        self._shape_errors: list[str] = []

    def wants(self, key: str) -> bool:
        if key in self._ours:
            return True
        if not _is_unused(key):
            self._unexpected.append(key)
        return False

    def put(self, key: str, tensor: torch.Tensor) -> None:
        name = self._ours[key]
        target = self._state[name]
        if tuple(tensor.shape) != tuple(target.shape):
            self._shape_errors.append(f"{key}: {tuple(tensor.shape)} vs {tuple(target.shape)} for {name}")
            return
        with torch.no_grad():
            target.copy_(tensor.to(device=self._device, dtype=target.dtype))
        self._found.add(name)

    def finish(self, where: str | Path) -> None:
        missing = sorted(set(self._state) - self._found)
        if not (missing or self._unexpected or self._shape_errors):
            return
        parts: list[str] = []
        if missing:
            parts.append(f"missing {len(missing)}: " + ", ".join(self._upstream[n] for n in missing[:20]))
        if self._unexpected:
            parts.append(f"unexpected {len(self._unexpected)}: " + ", ".join(sorted(self._unexpected)[:20]))
        if self._shape_errors:
            parts.append("shape mismatch: " + "; ".join(self._shape_errors[:20]))
        raise CheckpointError(f"{where}: " + " | ".join(parts))


def load_weights(model: RealtimeModel, path: str | Path) -> None:
    """Fills `model` (already placed on its device and dtype) from an upstream-named safetensors file, strictly."""
    fill = WeightFill(model)
    with safe_open(str(path), framework="pt", device="cpu") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            if fill.wants(key):
                fill.put(key, f.get_tensor(key))
    fill.finish(path)


def load_model(model_dir: str | Path, device: torch.device, dtype: torch.dtype) -> RealtimeModel:
    cfg = load_config(model_dir)
    with torch.device("meta"):
        model = RealtimeModel(cfg)
    model = model.to_empty(device=device)
    model.place(device, dtype)
    load_weights(model, Path(model_dir) / "model.safetensors")
    model.place(device, dtype)  # the tables `place` recomputes are not in the checkpoint
    model.eval()
    return model
