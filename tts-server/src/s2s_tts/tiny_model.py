"""A tiny random-weight VibeVoice-Realtime model folder in the published layout, for CPU tests and the test profile.

`python -m s2s_tts.tiny_model OUT_DIR [--seed N]` writes:
- `config.json`: upstream's `vibevoice_streaming` config structure and field names at tiny sizes (hidden 64, 2 text
  + 2 TTS layers, a small vocabulary, a small acoustic decoder keeping the 3,200x upsampling of 24 kHz audio);
- `preprocessor_config.json` as published;
- `model.safetensors`: upstream's exact tensor names (`checkpoint_layout`), seeded random weights, the two speech
  buffers set to scaling 1 and bias 0 (upstream leaves them NaN until a checkpoint sets them);
- `tokenizer/`: a tiny byte-level BPE tokenizer in the Qwen2 files' format with Qwen2.5's special tokens (the
  negative prompt's `<|image_pad|>` among them);
- `presets/<name>.pt`: voice presets in upstream's pickle format (tiny prompt caches), and `voices/<name>.safetensors`
  converted from them by the converter, as the builder does for the real ones.
The same seed writes the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from s2s_tts.checkpoint_layout import checkpoint_shapes
from s2s_tts.upstream_preset import write_preset
from s2s_tts.voices import VoiceShape, convert_preset

VOICE_NAMES = ("en-Tiny_man", "en-Tiny_woman")
# Qwen2.5's special tokens, in its order (ids follow the tiny BPE vocabulary). `<|image_pad|>` starts upstream's
# negative prompt; `<|vision_*|>` are the speech markers upstream's text tokenizer registers.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Qwen2's pre-tokenizer split (contractions, letters, single digits, punctuation runs, newlines, spaces).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
BPE_MERGES_TARGET = 200
VOCAB_SIZE = 512  # the embedding rows; larger than the tokenizer, as Qwen2.5's 151,936 rows are
# A fixed English text the tiny BPE learns its merges from (any text would do; fixed keeps the merges fixed).
_CORPUS = (
    "Hello there, how are you today? I am fine, thank you. The weather is nice and the sun is out. "
    "Speech starts as soon as the first words of the answer arrive, and the voice keeps speaking while the text "
    "streams in. One, two, three, four, five, six, seven, eight, nine, ten. It's a small model for tests; "
    "it says nothing that means anything, but it runs the real engine end to end on a CPU. "
    "What time is it? It is half past four in the afternoon. Let's meet at the station at 10:30 tomorrow."
)


def tiny_config() -> dict[str, Any]:
    """Upstream's config.json structure and field names, at tiny sizes."""
    return {
        "acoustic_vae_dim": 16,
        "architectures": ["VibeVoiceStreamingForConditionalGenerationInference"],
        "model_type": "vibevoice_streaming",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.3",
        "tts_backbone_num_hidden_layers": 2,
        "acoustic_tokenizer_config": {
            "causal": True,
            "channels": 1,
            "conv_bias": True,
            "conv_norm": "none",
            "corpus_normalize": 0.0,
            "decoder_depths": None,
            "decoder_n_filters": 2,
            "decoder_ratios": [8, 5, 5, 4, 2, 2],
            "disable_last_norm": True,
            "encoder_depths": "1-1-1-1-1-1-2",
            "encoder_n_filters": 2,
            "encoder_ratios": [8, 5, 5, 4, 2, 2],
            "fix_std": 0.5,
            "layer_scale_init_value": 1e-6,
            "layernorm": "RMSNorm",
            "layernorm_elementwise_affine": True,
            "layernorm_eps": 1e-5,
            "mixer_layer": "depthwise_conv",
            "model_type": "vibevoice_acoustic_tokenizer",
            "pad_mode": "constant",
            "std_dist_type": "gaussian",
            "vae_dim": 16,
            "weight_init_value": 0.01,
        },
        "decoder_config": {
            "attention_dropout": 0.0,
            "hidden_act": "silu",
            "hidden_size": 64,
            "initializer_range": 0.02,
            "intermediate_size": 128,
            "max_position_embeddings": 1024,
            "max_window_layers": 4,
            "model_type": "qwen2",
            "num_attention_heads": 4,
            "num_hidden_layers": 4,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-6,
            "rope_scaling": None,
            "rope_theta": 1000000.0,
            "sliding_window": None,
            "tie_word_embeddings": False,
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": VOCAB_SIZE,
        },
        "diffusion_head_config": {
            "ddpm_batch_mul": 4,
            "ddpm_beta_schedule": "cosine",
            "ddpm_num_inference_steps": 20,
            "ddpm_num_steps": 1000,
            "diffusion_type": "ddpm",
            "head_ffn_ratio": 3.0,
            "head_layers": 2,
            "hidden_size": 64,
            "latent_size": 16,
            "model_type": "vibevoice_diffusion_head",
            "prediction_type": "v_prediction",
            "rms_norm_eps": 1e-5,
            "speech_vae_dim": 16,
        },
    }


def real_config() -> dict[str, Any]:
    """The published VibeVoice-Realtime-0.5B's sizes (hidden 896, 4 + 20 layers, vocab 151,936) in the same
    structure: the bench builds the real architecture from it, with random weights."""
    config = tiny_config()
    config.update(acoustic_vae_dim=64, tts_backbone_num_hidden_layers=20)
    config["decoder_config"].update(
        hidden_size=896,
        intermediate_size=4864,
        max_position_embeddings=8192,
        max_window_layers=24,
        num_attention_heads=14,
        num_hidden_layers=24,
        vocab_size=151936,
    )
    config["acoustic_tokenizer_config"].update(
        decoder_n_filters=32, encoder_depths="3-3-3-3-3-3-8", encoder_n_filters=32, vae_dim=64
    )
    config["diffusion_head_config"].update(hidden_size=896, head_layers=4, latent_size=64, speech_vae_dim=64)
    return config


PREPROCESSOR_CONFIG = {
    "processor_class": "VibeVoiceStreamingProcessor",
    "speech_tok_compress_ratio": 3200,
    "db_normalize": True,
    "language_model_pretrained_name": "Qwen/Qwen2.5-0.5B",
    "audio_processor": {
        "feature_extractor_type": "VibeVoiceTokenizerProcessor",
        "sampling_rate": 24000,
        "normalize_audio": True,
        "target_dB_FS": -25,
        "eps": 1e-6,
    },
}


def _random_tensor(name: str, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Seeded values of a scale that keeps activations near unit size through the network."""
    if name == "model.speech_scaling_factor":
        return torch.tensor(1.0)
    if name == "model.speech_bias_factor":
        return torch.tensor(0.0)
    noise = torch.randn(shape, generator=g, device=g.device)
    leaf = name.rsplit(".", 2)
    if name.endswith(("norm.weight", "layernorm.weight")):
        return 1.0 + 0.1 * noise
    if leaf[-1] in ("gamma", "ffn_gamma"):
        return 0.3 + 0.05 * noise  # upstream initialises the decoder's layer scales at 1e-6; make the blocks count
    if leaf[-1] == "bias":
        return 0.02 * noise
    if "embed_tokens" in name or "tts_input_types" in name:
        return noise
    if "convtr" in name:  # (in, out, kernel) with stride kernel/2: each output sums 2 * in products
        return noise / math.sqrt(2 * shape[0])
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
    return noise / math.sqrt(fan_in)


def iter_random_weights(
    config: dict[str, Any], seed: int, dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "cpu"
) -> Iterator[tuple[str, torch.Tensor]]:
    """Seeded random weights under the published tensor names, one at a time in sorted order (so the draw order
    is fixed): the tiny model's file and the bench's in-memory model (`vibevoice.random_model`) both come from here.
    The draws are made on `device` (one seed gives other numbers on a GPU)."""
    g = torch.Generator(device=torch.device(device)).manual_seed(seed)
    shapes = checkpoint_shapes(config)
    for name in sorted(shapes):
        yield name, _random_tensor(name, shapes[name], g).to(dtype)


def random_weights(config: dict[str, Any], seed: int, dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    """All of `iter_random_weights` (on the CPU) as one state dict."""
    return dict(iter_random_weights(config, seed, dtype))


def tiny_tokenizer() -> Tokenizer:
    """A tiny byte-level BPE with Qwen2's pre-tokenizer split and Qwen2.5's special tokens (the same merges each
    time: the corpus is fixed)."""
    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=False),
        ]
    )
    # The decoder takes the pre-tokenizer's options (tokenizer.json records them); its stub lists none.
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=False)  # type: ignore[call-arg]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + BPE_MERGES_TARGET,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=alphabet,
        special_tokens=[],
    )
    tokenizer.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return tokenizer


def write_tokenizer(out_dir: Path) -> int:
    """Writes the tiny tokenizer in the Qwen2 files' format; returns its size (tokens)."""
    tokenizer = tiny_tokenizer()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    tokenizer.model.save(str(out_dir))  # vocab.json, merges.txt
    added = {
        str(tokenizer.token_to_id(tok)): {
            "content": tok,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for tok in SPECIAL_TOKENS
    }
    tokenizer_config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [t for t in SPECIAL_TOKENS if t != "<|endoftext|>"],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    size: int = tokenizer.get_vocab_size(with_added_tokens=True)
    return size


def tiny_voice_tensors(shape: VoiceShape, seed: int, lm_positions: int, tts_positions: int) -> dict[str, torch.Tensor]:
    """Seeded prompt caches of `shape` in the converted voice format (bf16, as the published presets are)."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    parts = (
        ("lm", shape.lm_layers, lm_positions),
        ("tts_lm", shape.tts_lm_layers, tts_positions),
        ("neg_lm", shape.lm_layers, 1),
        ("neg_tts_lm", shape.tts_lm_layers, 1),
    )
    for part, layers, length in parts:
        out[f"{part}.last_hidden_state"] = torch.randn(1, length, shape.hidden_size, generator=g).bfloat16()
        for i in range(layers):
            kv = (1, shape.kv_heads, length, shape.head_dim)
            out[f"{part}.key.{i}"] = torch.randn(kv, generator=g).bfloat16()
            out[f"{part}.value.{i}"] = torch.randn(kv, generator=g).bfloat16()
    return out


def write_tiny_model(out_dir: Path, seed: int = 0) -> Path:
    """Writes the complete tiny model folder; returns it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config = tiny_config()
    tokens = write_tokenizer(out_dir / "tokenizer")
    if tokens > VOCAB_SIZE:
        raise RuntimeError(f"the tiny tokenizer has {tokens} tokens, more than the {VOCAB_SIZE} embedding rows")
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out_dir / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2) + "\n")
    save_file(random_weights(config, seed), str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    shape = VoiceShape.from_model_config(config)
    for i, name in enumerate(VOICE_NAMES):
        preset = out_dir / "presets" / f"{name}.pt"
        preset.parent.mkdir(parents=True, exist_ok=True)
        write_preset(tiny_voice_tensors(shape, seed * 1000 + i + 1, 10 + 3 * i, 16 + 5 * i), preset)
        convert_preset(preset, out_dir / "voices", expect=shape)
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2s_tts.tiny_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = write_tiny_model(args.out_dir, args.seed)
    print(f"tiny model written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
