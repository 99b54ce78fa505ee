"""A voice as the engine uses it: from a converted voice (`s2s_tts.voices.load_voice`, the `s2s-voice-1` format),
only what inference reads: the text stack's cache, both TTS caches, and the TTS streams' last hidden states (the
negative one conditions the first latent's guidance). The negative text cache (neg_lm) is never read by
upstream's loop either. Streams copy these tensors into their cache rows; nothing here is mutated."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..voices import PromptPart as VoicePart
from ..voices import VoicePrompt as Voice
from ..voices import VoiceShape, load_voice
from .config import ModelConfig


@dataclass(frozen=True)
class PromptPart:
    keys: tuple[torch.Tensor, ...]  # per layer [kv_heads, T, head_dim]
    values: tuple[torch.Tensor, ...]
    last_hidden: torch.Tensor  # [H]: the hidden state at the prompt's last position

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[-2])


@dataclass(frozen=True)
class VoicePrompt:
    lm: PromptPart
    tts_lm: PromptPart
    neg_tts_lm: PromptPart


def _part(part: VoicePart, device: torch.device, dtype: torch.dtype) -> PromptPart:
    return PromptPart(
        keys=tuple(k[0].to(device=device, dtype=dtype) for k in part.keys),
        values=tuple(v[0].to(device=device, dtype=dtype) for v in part.values),
        last_hidden=part.last_hidden_state[0, -1].to(device=device, dtype=dtype),
    )


def voice_shape(cfg: ModelConfig) -> VoiceShape:
    """The shape a voice for this model has."""
    return VoiceShape(
        hidden_size=cfg.lm.hidden_size,
        lm_layers=cfg.text_layers,
        tts_lm_layers=cfg.tts_layers,
        kv_heads=cfg.lm.num_key_value_heads,
        head_dim=cfg.lm.head_dim,
    )


def prompt_from_voice(voice: Voice, device: torch.device, dtype: torch.dtype) -> VoicePrompt:
    """What inference reads of a converted voice, on `device` in `dtype`."""
    return VoicePrompt(
        lm=_part(voice.lm, device, dtype),
        tts_lm=_part(voice.tts_lm, device, dtype),
        neg_tts_lm=_part(voice.neg_tts_lm, device, dtype),
    )


def load_voice_prompt(path: str | Path, cfg: ModelConfig, device: torch.device, dtype: torch.dtype) -> VoicePrompt:
    """Reads a converted voice, checked against the model's shape (VoiceFormatError names what does not fit)."""
    return prompt_from_voice(load_voice(path, "cpu", None, expect=voice_shape(cfg)), device, dtype)
