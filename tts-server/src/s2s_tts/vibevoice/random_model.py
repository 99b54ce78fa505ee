"""A random-weight model and voice in memory, for the bench and the tests: the weights and voice caches that
`s2s_tts.tiny_model` writes to a folder (the same draws: a model from `tiny_config()` and a seed equals the tiny
folder of that seed loaded), put straight into our modules, at any size (`real_config()` for the bench) and on any
device. Random weights give audio, not words; they time and test the engine, they do not speak."""

from __future__ import annotations

from typing import Any

import torch

from ..tiny_model import iter_random_weights, tiny_voice_tensors
from ..voices import voice_from_tensors
from .checkpoint import WeightFill
from .config import parse_config
from .model import RealtimeModel
from .prompt import VoicePrompt, prompt_from_voice, voice_shape


def random_model(
    config: dict[str, Any], seed: int = 0, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> RealtimeModel:
    """The model of `config` (upstream's config.json layout) with `tiny_model`'s seeded weights, drawn on `device`
    and filled through the checkpoint loader's strict key mapping (bf16 values, as the written file holds)."""
    dev = torch.device(device)
    with torch.device("meta"):
        model = RealtimeModel(parse_config(config))
    model = model.to_empty(device=dev)
    model.place(dev, dtype)
    fill = WeightFill(model)
    for key, tensor in iter_random_weights(config, seed, device=dev):
        if fill.wants(key):
            fill.put(key, tensor)
    fill.finish(f"random weights (seed {seed})")
    model.place(dev, dtype)  # the tables `place` recomputes are not among the weights
    return model.eval()


def random_voice(model: RealtimeModel, lm_len: int = 12, tts_len: int = 20, seed: int = 1) -> VoicePrompt:
    """`tiny_model`'s seeded voice caches, shaped for `model`, with prompts of `lm_len` text and `tts_len` TTS
    positions, on the model's device and dtype."""
    tensors = tiny_voice_tensors(voice_shape(model.cfg), seed, lm_len, tts_len)
    return prompt_from_voice(voice_from_tensors(tensors, f"random-{seed}"), model.device, model.dtype)
