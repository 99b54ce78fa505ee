"""Writes a tiny random-weight model folder in the published layout (upstream's config.json and safetensors key
names, the tokenizer under tokenizer/, converted voices under voices/) for the engine's tests. The formats helper's
`s2s_tts.tiny_model` writes the same layout from upstream's own classes; this one is built from ours, through the
inverse key mapping, so the tests do not depend on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from s2s_tts.vibevoice.checkpoint import upstream_state_dict
from s2s_tts.vibevoice.model import RealtimeModel
from s2s_tts.vibevoice.prompt import PromptPart, VoicePrompt
from s2s_tts.vibevoice.random_model import byte_level_tokenizer, random_model, random_voice, tiny_config_dict
from s2s_tts.voices import write_voice


def voice_tensors(voice: VoicePrompt, hidden: int) -> dict[str, torch.Tensor]:
    """A prompt in the converted voice format ([1, T, H] last hidden states, [1, kv, T, d] caches); the negative
    text prompt (never read by the engine) is one position, as in upstream's presets."""
    out: dict[str, torch.Tensor] = {}
    neg_lm = PromptPart(
        keys=tuple(k[:, -1:] for k in voice.lm.keys),
        values=tuple(v[:, -1:] for v in voice.lm.values),
        last_hidden=voice.lm.last_hidden,
    )
    parts = {"lm": voice.lm, "tts_lm": voice.tts_lm, "neg_lm": neg_lm, "neg_tts_lm": voice.neg_tts_lm}
    for name, part in parts.items():
        length = part.length
        hs = torch.zeros(1, length, hidden)
        hs[0, -1] = part.last_hidden.float()
        out[f"{name}.last_hidden_state"] = hs
        for i, (k, v) in enumerate(zip(part.keys, part.values, strict=True)):
            out[f"{name}.key.{i}"] = k.float().unsqueeze(0).clone()
            out[f"{name}.value.{i}"] = v.float().unsqueeze(0).clone()
    return out


def write_tiny_model(
    out: Path, seed: int = 0, extra: dict[str, torch.Tensor] | None = None, drop: tuple[str, ...] = ()
) -> tuple[dict[str, Any], RealtimeModel]:
    out.mkdir(parents=True, exist_ok=True)
    tok = byte_level_tokenizer()
    raw = tiny_config_dict(vocab_size=512)
    model = random_model(raw, seed=seed)
    (out / "config.json").write_text(json.dumps(raw, indent=2))
    state = {k: v.contiguous() for k, v in upstream_state_dict(model).items() if k not in drop}
    # what upstream's files also hold and inference never reads
    state["model.tts_language_model.embed_tokens.weight"] = torch.zeros_like(model.embed_tokens.weight)
    state["model.acoustic_tokenizer.encoder.head.conv.conv.weight"] = torch.zeros(4, 4, 7)
    state.update(extra or {})
    save_file(state, str(out / "model.safetensors"))
    (out / "tokenizer").mkdir(exist_ok=True)
    tok.save(str(out / "tokenizer" / "tokenizer.json"))
    (out / "voices").mkdir(exist_ok=True)
    for i, name in enumerate(["en-Carter_man", "en-Emma_woman"]):
        voice = random_voice(model, lm_len=10 + i, tts_len=16 + 3 * i, seed=seed + 10 + i)
        write_voice(voice_tensors(voice, model.cfg.lm.hidden_size), out / "voices" / f"{name}.safetensors", "0" * 64)
    return raw, model
