"""Voices: upstream's pickled presets converted once into plain tensors, and loaded from those.

Upstream ships each voice as a pickled prompt cache (`upstream_preset`). The converter turns one into a
`.safetensors` file (`s2s-voice-1`), so nothing is unpickled at run time: for each part in `lm`, `tts_lm`, `neg_lm`,
`neg_tts_lm`: `{part}.last_hidden_state` [1, T, H] and `{part}.key.{layer}` / `{part}.value.{layer}`
[1, kv_heads, T, head_dim], dtype as in the preset; metadata `format` and `source_sha256` (of the `.pt` file).
`lm` holds the text LM's layers, `tts_lm` the TTS LM's, the `neg_*` parts the one-position negative prompt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from s2s_tts.upstream_preset import PARTS, PresetError, read_preset

FORMAT = "s2s-voice-1"
# The parts of the negative (guidance) prompt are one position long upstream.
_NEGATIVE_PARTS = ("neg_lm", "neg_tts_lm")


class VoiceFormatError(ValueError):
    """A converted voice that does not have the expected structure, or does not fit the model."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# The converted form


@dataclass(frozen=True)
class VoiceShape:
    """What a voice must match to feed a model: the model config's sizes."""

    hidden_size: int
    lm_layers: int
    tts_lm_layers: int
    kv_heads: int
    head_dim: int

    @staticmethod
    def from_model_config(config: dict[str, Any]) -> VoiceShape:
        """From upstream's `config.json` (a `vibevoice_streaming` config with a Qwen2 `decoder_config`)."""
        decoder = config["decoder_config"]
        total = int(decoder["num_hidden_layers"])
        tts = int(config.get("tts_backbone_num_hidden_layers", 20))
        heads = int(decoder["num_attention_heads"])
        hidden = int(decoder["hidden_size"])
        head_dim = decoder.get("head_dim") or hidden // heads
        return VoiceShape(
            hidden_size=hidden,
            lm_layers=total - tts,
            tts_lm_layers=tts,
            kv_heads=int(decoder.get("num_key_value_heads") or heads),
            head_dim=int(head_dim),
        )


@dataclass(frozen=True)
class PromptPart:
    """One cached prompt: the last hidden state [1, T, H] and per-layer keys/values [1, kv_heads, T, head_dim]."""

    last_hidden_state: torch.Tensor
    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]

    @property
    def length(self) -> int:
        return int(self.last_hidden_state.shape[1])

    @property
    def layers(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class VoicePrompt:
    """A voice: the prompt caches of the text LM and TTS LM, and of the negative (guidance) prompt.

    Treat the tensors as read-only: streams copy them into caches of their own."""

    name: str
    lm: PromptPart
    tts_lm: PromptPart
    neg_lm: PromptPart
    neg_tts_lm: PromptPart
    source_sha256: str

    def part(self, name: str) -> PromptPart:
        if name not in PARTS:
            raise KeyError(name)
        part: PromptPart = getattr(self, name)
        return part


def _layer_count(tensors: dict[str, torch.Tensor], part: str, kind: str) -> int:
    count = 0
    while f"{part}.{kind}.{count}" in tensors:
        count += 1
    return count


def _check_structure(tensors: dict[str, torch.Tensor], where: str, expect: VoiceShape | None = None) -> None:
    """Checks that the flat tensor dict is a complete, self-consistent voice (and matches `expect` if given)."""
    hidden_sizes: set[int] = set()
    kv_shapes: set[tuple[int, int]] = set()
    layers: dict[str, int] = {}
    expected_names: set[str] = set()
    for part in PARTS:
        name = f"{part}.last_hidden_state"
        if name not in tensors:
            raise VoiceFormatError(f"{where}: {name} is missing")
        hidden = tensors[name]
        if hidden.dim() != 3 or hidden.shape[0] != 1 or hidden.shape[1] < 1:
            raise VoiceFormatError(f"{where}: {name} has shape {list(hidden.shape)}, expected [1, T>=1, H]")
        length = int(hidden.shape[1])
        if part in _NEGATIVE_PARTS and length != 1:
            raise VoiceFormatError(f"{where}: {name} has {length} positions, the negative prompt has 1")
        hidden_sizes.add(int(hidden.shape[2]))
        n_keys = _layer_count(tensors, part, "key")
        n_values = _layer_count(tensors, part, "value")
        if n_keys == 0 or n_keys != n_values:
            raise VoiceFormatError(f"{where}: {part} has {n_keys} key and {n_values} value layers")
        layers[part] = n_keys
        expected_names.add(name)
        for kind in ("key", "value"):
            for layer in range(n_keys):
                tname = f"{part}.{kind}.{layer}"
                expected_names.add(tname)
                t = tensors[tname]
                if t.dim() != 4 or t.shape[0] != 1 or t.shape[2] != length:
                    raise VoiceFormatError(
                        f"{where}: {tname} has shape {list(t.shape)}, expected [1, kv_heads, {length}, head_dim]"
                    )
                if t.dtype != hidden.dtype:
                    raise VoiceFormatError(f"{where}: {tname} is {t.dtype}, {name} is {hidden.dtype}")
                kv_shapes.add((int(t.shape[1]), int(t.shape[3])))
    extra = set(tensors) - expected_names
    if extra:
        raise VoiceFormatError(f"{where}: unexpected tensors {sorted(extra)[:5]}")
    if len(hidden_sizes) != 1:
        raise VoiceFormatError(f"{where}: the parts disagree on the hidden size: {sorted(hidden_sizes)}")
    if len(kv_shapes) != 1:
        raise VoiceFormatError(f"{where}: the layers disagree on (kv_heads, head_dim): {sorted(kv_shapes)}")
    if layers["lm"] != layers["neg_lm"] or layers["tts_lm"] != layers["neg_tts_lm"]:
        raise VoiceFormatError(f"{where}: positive and negative prompts have different layer counts: {layers}")
    if expect is not None:
        (hidden_size,) = hidden_sizes
        ((kv_heads, head_dim),) = kv_shapes
        got = VoiceShape(hidden_size, layers["lm"], layers["tts_lm"], kv_heads, head_dim)
        if got != expect:
            raise VoiceFormatError(f"{where}: the voice is for a model of {got}, this model is {expect}")


def convert_preset(src: Path, out_dir: Path, expect: VoiceShape | None = None) -> Path:
    """Converts one upstream `.pt` preset to `out_dir/<stem>.safetensors`; returns the written path."""
    tensors = read_preset(src)
    _check_structure(tensors, str(src), expect)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{src.stem}.safetensors"
    tmp = out.with_suffix(".safetensors.tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT, "source_sha256": sha256_file(src)})
    tmp.replace(out)
    return out


def write_voice(tensors: dict[str, torch.Tensor], out: Path, source_sha256: str) -> None:
    """Writes a flat `s2s-voice-1` tensor dict (checked first)."""
    _check_structure(tensors, str(out))
    save_file(
        {k: v.contiguous() for k, v in tensors.items()},
        str(out),
        metadata={"format": FORMAT, "source_sha256": source_sha256},
    )


def load_voice(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    expect: VoiceShape | None = None,
) -> VoicePrompt:
    """Loads a converted voice (`s2s-voice-1` safetensors) onto `device`, cast to `dtype` if given."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise VoiceFormatError(f"{path}: not a readable safetensors voice ({exc})") from exc
    if metadata.get("format") != FORMAT:
        raise VoiceFormatError(f"{path}: format {metadata.get('format')!r}, expected {FORMAT!r}")
    sha = str(metadata.get("source_sha256", ""))
    return voice_from_tensors(tensors, path.stem, sha, device, dtype, expect=expect, where=str(path))


def voice_from_tensors(
    tensors: dict[str, torch.Tensor],
    name: str,
    source_sha256: str = "",
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    expect: VoiceShape | None = None,
    where: str | None = None,
) -> VoicePrompt:
    """A voice from its flat `s2s-voice-1` tensors, checked first (errors name `where`, by default `name`), on
    `device`, cast to `dtype` if given."""
    _check_structure(tensors, where or name, expect)

    def part(part_name: str) -> PromptPart:
        n = _layer_count(tensors, part_name, "key")

        def to(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype or t.dtype)

        return PromptPart(
            last_hidden_state=to(tensors[f"{part_name}.last_hidden_state"]),
            keys=tuple(to(tensors[f"{part_name}.key.{i}"]) for i in range(n)),
            values=tuple(to(tensors[f"{part_name}.value.{i}"]) for i in range(n)),
        )

    return VoicePrompt(
        name=name,
        lm=part("lm"),
        tts_lm=part("tts_lm"),
        neg_lm=part("neg_lm"),
        neg_tts_lm=part("neg_tts_lm"),
        source_sha256=source_sha256,
    )


def _preset_files(sources: Iterable[str]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        p = Path(source)
        if p.is_dir():
            files.extend(sorted(p.glob("*.pt")))
        elif p.is_file():
            files.append(p)
        else:
            raise VoiceFormatError(f"{p}: no such file or folder")
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2s_tts.voices", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("convert", help="convert upstream .pt presets into <out>/<name>.safetensors")
    convert.add_argument("sources", nargs="+", help=".pt files, or folders whose *.pt are converted")
    convert.add_argument("--out", required=True, type=Path, help="output folder")
    convert.add_argument("--model-config", type=Path, help="a model's config.json: check the voices fit it")
    args = parser.parse_args(argv)
    try:
        expect = None
        if args.model_config is not None:
            expect = VoiceShape.from_model_config(json.loads(args.model_config.read_text()))
        files = _preset_files(args.sources)
        if not files:
            raise VoiceFormatError("no .pt presets found in " + ", ".join(args.sources))
        for src in files:
            out = convert_preset(src, args.out, expect)
            print(f"{src} -> {out}")
    except (VoiceFormatError, PresetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
