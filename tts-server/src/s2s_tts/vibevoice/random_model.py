"""Random-weight models, voices and a tokenizer for the bench and the tests: the real architecture (or a tiny one)
built from a config dict in upstream's `config.json` layout, initialised fast and reproducibly. Random weights
give audio, not words; they time and test the engine, they do not speak."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .config import ModelConfig, parse_config
from .model import RealtimeModel
from .prompt import PromptPart, VoicePrompt

# The published VibeVoice-Realtime-0.5B's sizes, in upstream's config.json layout (random weights only).
REAL_CONFIG: dict[str, Any] = {
    "model_type": "vibevoice_streaming",
    "tts_backbone_num_hidden_layers": 20,
    "decoder_config": {
        "model_type": "qwen2",
        "vocab_size": 151936,
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "hidden_act": "silu",
    },
    "acoustic_tokenizer_config": {
        "vae_dim": 64,
        "causal": True,
        "mixer_layer": "depthwise_conv",
        "conv_norm": "none",
        "layernorm": "RMSNorm",
        "layernorm_eps": 1e-5,
        "disable_last_norm": True,
        "conv_bias": True,
        "pad_mode": "constant",
        "encoder_n_filters": 32,
        "encoder_ratios": [8, 5, 5, 4, 2, 2],
        "encoder_depths": "3-3-3-3-3-3-8",
        "decoder_n_filters": 32,
        "decoder_ratios": [8, 5, 5, 4, 2, 2],
        "decoder_depths": None,
    },
    "diffusion_head_config": {
        "hidden_size": 896,
        "head_layers": 4,
        "head_ffn_ratio": 3.0,
        "rms_norm_eps": 1e-5,
        "latent_size": 64,
        "prediction_type": "v_prediction",
        "ddpm_num_steps": 1000,
        "ddpm_num_inference_steps": 20,
        "ddpm_beta_schedule": "cosine",
    },
}


def tiny_config_dict(vocab_size: int = 512) -> dict[str, Any]:
    """A small model that keeps the 3,200x decoder ratios (one frame is still 3,200 samples)."""
    raw = copy.deepcopy(REAL_CONFIG)
    raw["tts_backbone_num_hidden_layers"] = 2
    raw["decoder_config"].update(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
    )
    raw["acoustic_tokenizer_config"].update(
        vae_dim=16, encoder_n_filters=4, decoder_n_filters=4, encoder_depths="1-1-1-1-1-1-1"
    )
    raw["diffusion_head_config"].update(hidden_size=64, head_layers=2, latent_size=16)
    return raw


def random_model(
    raw: dict[str, Any] | ModelConfig,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> RealtimeModel:
    cfg = raw if isinstance(raw, ModelConfig) else parse_config(raw)
    with torch.device("meta"):
        model = RealtimeModel(cfg)
    dev = torch.device(device)
    model = model.to_empty(device=dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "bias":
                p.uniform_(-0.01, 0.01, generator=gen)
            elif p.dim() == 1:  # norm weights, layer scales
                if "gamma" in leaf:
                    p.fill_(0.1)
                else:
                    p.fill_(1.0)
            elif p.dim() == 3:  # convolutions: keep the signal's scale through the decoder
                fan_in = p.shape[1] * p.shape[2]
                bound = 1.0 / math.sqrt(fan_in)
                p.uniform_(-bound, bound, generator=gen)
            else:
                bound = 0.02 * math.sqrt(3.0)  # std 0.02, as upstream initialises its linear layers
                p.uniform_(-bound, bound, generator=gen)
        model.speech_scaling_factor.fill_(1.0)
        model.speech_bias_factor.fill_(0.0)
    model.place(dev, dtype)
    return model.eval()


def random_voice(model: RealtimeModel, lm_len: int = 12, tts_len: int = 20, seed: int = 1) -> VoicePrompt:
    """A voice prompt of random caches and hidden states, shaped as the model's."""
    cfg = model.cfg
    gen = torch.Generator().manual_seed(seed)
    kv, hd, h = cfg.lm.num_key_value_heads, cfg.lm.head_dim, cfg.lm.hidden_size

    def part(layers: int, length: int) -> PromptPart:
        def t() -> torch.Tensor:
            return torch.randn(kv, length, hd, generator=gen).to(model.device, model.dtype)

        return PromptPart(
            keys=tuple(t() for _ in range(layers)),
            values=tuple(t() for _ in range(layers)),
            last_hidden=torch.randn(h, generator=gen).to(model.device, model.dtype),
        )

    return VoicePrompt(
        lm=part(cfg.text_layers, lm_len), tts_lm=part(cfg.tts_layers, tts_len), neg_tts_lm=part(cfg.tts_layers, 1)
    )


_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_CORPUS = [
    "Hello, how are you today? I am fine, thank you very much for asking.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Speech starts as soon as the first words are in, and the voice goes on while the text arrives.",
    "Numbers are spoken as words: one, two, three, four, five, six, seven, eight, nine, ten.",
    "It's a lovely day; we'll see what they've done. Isn't it? Yes!\nNew lines, too.",
]


def byte_level_tokenizer(vocab_size: int = 512) -> Tokenizer:
    """A small byte-level BPE with the Qwen2 pre-tokenizer (same split rules as the real tokenizer)."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=["<|endoftext|>", "<|image_pad|>"],
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return tok
