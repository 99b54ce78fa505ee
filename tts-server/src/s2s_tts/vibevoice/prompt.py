"""A voice as the engine uses it: the cached prompt of a converted voice file (`voices/<name>.safetensors`, see
the shared contract: `{part}.last_hidden_state` [1, T, H], `{part}.key.{layer}` / `{part}.value.{layer}`
[1, kv_heads, T, head_dim] for part in lm, tts_lm, neg_lm, neg_tts_lm). Only what inference reads is kept: the
text stack's cache, both TTS caches, and the TTS streams' last hidden states (the negative one conditions the
first latent's guidance). The negative text cache (neg_lm) is never read by upstream's loop either."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open


class VoiceError(ValueError):
    """A voice file that does not fit the model."""


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


def load_voice_prompt(
    path: str | Path,
    device: torch.device,
    dtype: torch.dtype,
    text_layers: int,
    tts_layers: int,
    kv_heads: int,
    head_dim: int,
    hidden: int,
) -> VoicePrompt:
    def part(f: object, name: str, layers: int) -> PromptPart:
        get = f.get_tensor  # type: ignore[attr-defined]
        names = set(f.keys())  # type: ignore[attr-defined]
        keys, values = [], []
        for layer in range(layers):
            k_name, v_name = f"{name}.key.{layer}", f"{name}.value.{layer}"
            if k_name not in names or v_name not in names:
                raise VoiceError(f"{path}: {k_name} or {v_name} missing")
            k, v = get(k_name), get(v_name)
            if k.dim() != 4 or k.shape[0] != 1 or k.shape[1] != kv_heads or k.shape[3] != head_dim or v.shape != k.shape:
                raise VoiceError(f"{path}: {k_name} has shape {tuple(k.shape)}, expected [1, {kv_heads}, T, {head_dim}]")
            keys.append(k[0].to(device=device, dtype=dtype))
            values.append(v[0].to(device=device, dtype=dtype))
        extra = [n for n in names if n.startswith(f"{name}.key.") and int(n.rsplit(".", 1)[1]) >= layers]
        if extra:
            raise VoiceError(f"{path}: {name} has more layers than the model ({sorted(extra)[:3]})")
        hs_name = f"{name}.last_hidden_state"
        if hs_name not in names:
            raise VoiceError(f"{path}: {hs_name} missing")
        hs = get(hs_name)
        if hs.dim() != 3 or hs.shape[-1] != hidden:
            raise VoiceError(f"{path}: {hs_name} has shape {tuple(hs.shape)}, expected [1, T, {hidden}]")
        return PromptPart(keys=tuple(keys), values=tuple(values), last_hidden=hs[0, -1].to(device=device, dtype=dtype))

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return VoicePrompt(
                lm=part(f, "lm", text_layers),
                tts_lm=part(f, "tts_lm", tts_layers),
                neg_tts_lm=part(f, "neg_tts_lm", tts_layers),
            )
    except VoiceError:
        raise
    except Exception as e:  # a corrupt or foreign file
        raise VoiceError(f"{path}: {e}") from e
