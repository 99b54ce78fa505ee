"""Loading `model.safetensors` as microsoft publishes it (upstream's key names) into our modules.

The mapping is written once, as rules over key names, in both directions: `to_ours` for loading, `to_upstream`
for writing a checkpoint in the published layout (tests). Loading is strict: every tensor our modules need must be
there, and every key in the file must be either used or one of the known unused ones (the TTS stack's own token
embedding, which upstream keeps and never reads; the acoustic encoder, which a `save_pretrained` folder has and the
published file leaves out)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open

from .config import load_config
from .model import RealtimeModel


class CheckpointError(ValueError):
    """The checkpoint does not fit the config: names the missing and unexpected keys."""


_DEC = "model.acoustic_tokenizer.decoder."
_HEAD = "model.prediction_head."

# Keys a published or save_pretrained checkpoint may hold that inference never reads.
_UNUSED = (
    re.compile(r"^model\.tts_language_model\.embed_tokens\.weight$"),
    re.compile(r"^model\.language_model\.norm\.weight$"),
    re.compile(r"^model\.acoustic_tokenizer\.encoder\."),
)


def _block_to_ours(rest: str) -> str:
    return rest.replace("mixer.conv.conv.conv.", "mixer.conv.")


def _block_to_upstream(rest: str) -> str:
    return rest.replace("mixer.conv.", "mixer.conv.conv.conv.")


def _decoder_to_ours(key: str) -> str | None:
    if m := re.fullmatch(r"upsample_layers\.0\.0\.conv\.conv\.(\w+)", key):
        return f"stem.conv.conv.{m[1]}"
    if m := re.fullmatch(r"upsample_layers\.(\d+)\.0\.convtr\.convtr\.(\w+)", key):
        return f"conv_layers.{int(m[1]) - 1}.convtr.convtr.{m[2]}"
    if m := re.fullmatch(r"stages\.0\.(\d+)\.(.+)", key):
        return f"stem.stage.{m[1]}.{_block_to_ours(m[2])}"
    if m := re.fullmatch(r"stages\.(\d+)\.(\d+)\.(.+)", key):
        return f"conv_layers.{int(m[1]) - 1}.stage.{m[2]}.{_block_to_ours(m[3])}"
    if m := re.fullmatch(r"head\.conv\.conv\.(\w+)", key):
        return f"head.conv.{m[1]}"
    return None


def _decoder_to_upstream(key: str) -> str | None:
    if m := re.fullmatch(r"stem\.conv\.conv\.(\w+)", key):
        return f"upsample_layers.0.0.conv.conv.{m[1]}"
    if m := re.fullmatch(r"conv_layers\.(\d+)\.convtr\.convtr\.(\w+)", key):
        return f"upsample_layers.{int(m[1]) + 1}.0.convtr.convtr.{m[2]}"
    if m := re.fullmatch(r"stem\.stage\.(\d+)\.(.+)", key):
        return f"stages.0.{m[1]}.{_block_to_upstream(m[2])}"
    if m := re.fullmatch(r"conv_layers\.(\d+)\.stage\.(\d+)\.(.+)", key):
        return f"stages.{int(m[1]) + 1}.{m[2]}.{_block_to_upstream(m[3])}"
    if m := re.fullmatch(r"head\.conv\.(\w+)", key):
        return f"head.conv.conv.{m[1]}"
    return None


_HEAD_RULES: list[tuple[str, str]] = [
    (r"t_embedder\.mlp\.0\.(\w+)", r"timestep_proj.fc1.\1"),
    (r"t_embedder\.mlp\.2\.(\w+)", r"timestep_proj.fc2.\1"),
    (r"layers\.(\d+)\.adaLN_modulation\.1\.(\w+)", r"layers.\1.linear.\2"),
    (r"final_layer\.adaLN_modulation\.1\.(\w+)", r"final_layer.linear_1.\1"),
    (r"final_layer\.linear\.(\w+)", r"final_layer.linear_2.\1"),
    (r"(noisy_images_proj|cond_proj)\.(\w+)", r"\1.\2"),
    (r"layers\.(\d+)\.(ffn\.\w+_proj|norm)\.(\w+)", r"layers.\1.\2.\3"),
]
_HEAD_BACK: list[tuple[str, str]] = [
    (r"timestep_proj\.fc1\.(\w+)", r"t_embedder.mlp.0.\1"),
    (r"timestep_proj\.fc2\.(\w+)", r"t_embedder.mlp.2.\1"),
    (r"layers\.(\d+)\.linear\.(\w+)", r"layers.\1.adaLN_modulation.1.\2"),
    (r"final_layer\.linear_1\.(\w+)", r"final_layer.adaLN_modulation.1.\1"),
    (r"final_layer\.linear_2\.(\w+)", r"final_layer.linear.\1"),
    (r"(noisy_images_proj|cond_proj)\.(\w+)", r"\1.\2"),
    (r"layers\.(\d+)\.(ffn\.\w+_proj|norm)\.(\w+)", r"layers.\1.\2.\3"),
]


def _apply(rules: list[tuple[str, str]], key: str) -> str | None:
    for pattern, repl in rules:
        if re.fullmatch(pattern, key):
            return re.sub(f"^{pattern}$", repl, key)
    return None


_CONNECTOR = {"fc1": "linear_1", "norm": "act", "fc2": "linear_2"}
_PLAIN = {
    "model.language_model.embed_tokens.weight": "embed_tokens.weight",
    "model.tts_language_model.norm.weight": "tts_norm.weight",
    "model.tts_input_types.weight": "input_types.weight",
    "model.speech_scaling_factor": "speech_scaling_factor",
    "model.speech_bias_factor": "speech_bias_factor",
}


def to_ours(key: str) -> str | None:
    """Our parameter name for an upstream checkpoint key (None: not ours)."""
    if key in _PLAIN:
        return _PLAIN[key]
    if m := re.fullmatch(r"model\.language_model\.layers\.(\d+)\.(.+)", key):
        return f"lm_layers.{m[1]}.{m[2]}"
    if m := re.fullmatch(r"model\.tts_language_model\.layers\.(\d+)\.(.+)", key):
        return f"tts_layers.{m[1]}.{m[2]}"
    if m := re.fullmatch(r"model\.acoustic_connector\.(fc1|norm|fc2)\.(\w+)", key):
        return f"connector.{_CONNECTOR[m[1]]}.{m[2]}"
    if m := re.fullmatch(r"tts_eos_classifier\.(fc1|fc2)\.(\w+)", key):
        return f"eos.{m[1]}.{m[2]}"
    if key.startswith(_HEAD):
        mapped = _apply(_HEAD_RULES, key[len(_HEAD) :])
        return f"head.{mapped}" if mapped else None
    if key.startswith(_DEC):
        mapped = _decoder_to_ours(key[len(_DEC) :])
        return f"decoder.{mapped}" if mapped else None
    return None


def to_upstream(name: str) -> str | None:
    """The upstream checkpoint key for one of our parameter names (the inverse of `to_ours`)."""
    for up, ours in _PLAIN.items():
        if ours == name:
            return up
    if m := re.fullmatch(r"lm_layers\.(\d+)\.(.+)", name):
        return f"model.language_model.layers.{m[1]}.{m[2]}"
    if m := re.fullmatch(r"tts_layers\.(\d+)\.(.+)", name):
        return f"model.tts_language_model.layers.{m[1]}.{m[2]}"
    if m := re.fullmatch(r"connector\.(linear_1|act|linear_2)\.(\w+)", name):
        back = {v: k for k, v in _CONNECTOR.items()}
        return f"model.acoustic_connector.{back[m[1]]}.{m[2]}"
    if m := re.fullmatch(r"eos\.(fc1|fc2)\.(\w+)", name):
        return f"tts_eos_classifier.{m[1]}.{m[2]}"
    if name.startswith("head."):
        mapped = _apply(_HEAD_BACK, name[len("head.") :])
        return f"{_HEAD}{mapped}" if mapped else None
    if name.startswith("decoder."):
        mapped = _decoder_to_upstream(name[len("decoder.") :])
        return f"{_DEC}{mapped}" if mapped else None
    return None


def _is_unused(key: str) -> bool:
    return any(p.search(key) for p in _UNUSED)


def expected_names(model: RealtimeModel) -> list[str]:
    """Every tensor of ours a checkpoint must fill: parameters and persistent buffers."""
    return list(model.state_dict().keys())


def upstream_state_dict(model: RealtimeModel) -> dict[str, torch.Tensor]:
    """Our weights under upstream's key names (for writing a checkpoint in the published layout)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        key = to_upstream(name)
        if key is None:
            raise CheckpointError(f"no upstream name for our tensor {name}")
        out[key] = tensor
    return out


def load_weights(model: RealtimeModel, path: str | Path, keep: Callable[[str], bool] | None = None) -> None:
    """Fills `model` (already placed on its device and dtype) from an upstream-named safetensors file, strictly."""
    state = model.state_dict()
    wanted = set(state)
    found: set[str] = set()
    unexpected: list[str] = []
    shape_errors: list[str] = []
    device = model.device
    with safe_open(str(path), framework="pt", device="cpu") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            name = to_ours(key)
            if name is None or name not in wanted:
                if not _is_unused(key):
                    unexpected.append(key)
                continue
            tensor = f.get_tensor(key)
            target = state[name]
            if tuple(tensor.shape) != tuple(target.shape):
                shape_errors.append(f"{key}: {tuple(tensor.shape)} vs {tuple(target.shape)} for {name}")
                continue
            with torch.no_grad():
                target.copy_(tensor.to(device=device, dtype=target.dtype))
            found.add(name)
    missing = sorted(wanted - found)
    if missing or unexpected or shape_errors:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: " + ", ".join(to_upstream(n) or n for n in missing[:20]))
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: " + ", ".join(sorted(unexpected)[:20]))
        if shape_errors:
            parts.append("shape mismatch: " + "; ".join(shape_errors[:20]))
        raise CheckpointError(f"{path}: " + " | ".join(parts))


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
