"""The realtime model's configuration: the published `config.json` (upstream's `VibeVoiceStreamingConfig` layout)
read into plain dataclasses, and translated into the transformers 5 configs of the modules we take from it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import Qwen2Config
from transformers.models.vibevoice_acoustic_tokenizer.configuration_vibevoice_acoustic_tokenizer import (
    VibeVoiceAcousticTokenizerDecoderConfig,
)

from . import attention


class ConfigError(ValueError):
    """The model folder's config.json is missing a field or asks for something this engine does not implement."""


@dataclass(frozen=True)
class LanguageModelConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int  # all layers: text layers + TTS layers
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int
    rms_norm_eps: float
    rope_theta: float
    hidden_act: str


@dataclass(frozen=True)
class AcousticDecoderConfig:
    vae_dim: int
    n_filters: int
    ratios: tuple[int, ...]  # upsampling order, as upstream's decoder applies them (8, 5, 5, 4, 2, 2)
    depths: tuple[int, ...]  # blocks per stage in decoder order (stem first)
    layernorm_eps: float
    channels: int

    @property
    def hop_length(self) -> int:
        hop = 1
        for r in self.ratios:
            hop *= r
        return hop


@dataclass(frozen=True)
class DiffusionHeadConfig:
    hidden_size: int
    head_layers: int
    head_ffn_ratio: float
    rms_norm_eps: float
    latent_size: int
    prediction_type: str
    ddpm_num_steps: int
    ddpm_beta_schedule: str


@dataclass(frozen=True)
class ModelConfig:
    lm: LanguageModelConfig
    acoustic: AcousticDecoderConfig
    head: DiffusionHeadConfig
    tts_layers: int

    @property
    def text_layers(self) -> int:
        return self.lm.num_hidden_layers - self.tts_layers


def _need(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d or d[key] is None:
        raise ConfigError(f"config.json: {where}.{key} is missing")
    return d[key]


def _expect(d: dict[str, Any], key: str, allowed: tuple[Any, ...], where: str) -> None:
    if key in d and d[key] is not None and d[key] not in allowed:
        raise ConfigError(f"config.json: {where}.{key}={d[key]!r} is not supported (only {allowed})")


def _depths(value: Any) -> list[int]:
    if isinstance(value, str):
        return [int(x) for x in value.split("-")]
    return [int(x) for x in value]


def parse_config(raw: dict[str, Any]) -> ModelConfig:
    dec = _need(raw, "decoder_config", "")
    if dec.get("model_type", "qwen2") != "qwen2":
        raise ConfigError(f"config.json: decoder_config.model_type={dec.get('model_type')!r} (only qwen2)")
    if dec.get("rope_scaling"):
        raise ConfigError("config.json: decoder_config.rope_scaling is not supported")
    hidden = int(_need(dec, "hidden_size", "decoder_config"))
    heads = int(_need(dec, "num_attention_heads", "decoder_config"))
    rope_theta = dec.get("rope_theta")
    if rope_theta is None and isinstance(dec.get("rope_parameters"), dict):
        rope_theta = dec["rope_parameters"].get("rope_theta")
    lm = LanguageModelConfig(
        vocab_size=int(_need(dec, "vocab_size", "decoder_config")),
        hidden_size=hidden,
        intermediate_size=int(_need(dec, "intermediate_size", "decoder_config")),
        num_hidden_layers=int(_need(dec, "num_hidden_layers", "decoder_config")),
        num_attention_heads=heads,
        num_key_value_heads=int(dec.get("num_key_value_heads") or heads),
        head_dim=int(dec.get("head_dim") or hidden // heads),
        max_position_embeddings=int(_need(dec, "max_position_embeddings", "decoder_config")),
        rms_norm_eps=float(dec.get("rms_norm_eps", 1e-6)),
        rope_theta=float(rope_theta if rope_theta is not None else 10000.0),
        hidden_act=str(dec.get("hidden_act", "silu")),
    )
    ac = _need(raw, "acoustic_tokenizer_config", "")
    where = "acoustic_tokenizer_config"
    _expect(ac, "causal", (True,), where)
    _expect(ac, "mixer_layer", ("depthwise_conv",), where)
    _expect(ac, "conv_norm", ("none",), where)
    _expect(ac, "layernorm", ("RMSNorm",), where)
    _expect(ac, "disable_last_norm", (True,), where)
    _expect(ac, "layernorm_elementwise_affine", (True,), where)
    _expect(ac, "conv_bias", (True,), where)
    _expect(ac, "pad_mode", ("constant",), where)
    enc_ratios = [int(x) for x in ac.get("encoder_ratios") or [8, 5, 5, 4, 2, 2]]
    dec_ratios = [int(x) for x in (ac.get("decoder_ratios") or enc_ratios)]
    enc_depths = _depths(ac.get("encoder_depths") or "3-3-3-3-3-3-8")
    dec_depths = _depths(ac["decoder_depths"]) if ac.get("decoder_depths") else list(reversed(enc_depths))
    if len(dec_depths) != len(dec_ratios) + 1:
        raise ConfigError(f"config.json: {len(dec_depths)} decoder depths for {len(dec_ratios)} ratios")
    acoustic = AcousticDecoderConfig(
        vae_dim=int(ac.get("vae_dim", 64)),
        n_filters=int(ac.get("decoder_n_filters", 32)),
        ratios=tuple(dec_ratios),
        depths=tuple(dec_depths),
        layernorm_eps=float(ac.get("layernorm_eps", 1e-5)),
        channels=int(ac.get("channels", 1)),
    )
    hd = _need(raw, "diffusion_head_config", "")
    head = DiffusionHeadConfig(
        hidden_size=int(_need(hd, "hidden_size", "diffusion_head_config")),
        head_layers=int(hd.get("head_layers", 4)),
        head_ffn_ratio=float(hd.get("head_ffn_ratio", 3.0)),
        rms_norm_eps=float(hd.get("rms_norm_eps", 1e-5)),
        latent_size=int(hd.get("latent_size", 64)),
        prediction_type=str(hd.get("prediction_type", "v_prediction")),
        ddpm_num_steps=int(hd.get("ddpm_num_steps", 1000)),
        ddpm_beta_schedule=str(hd.get("ddpm_beta_schedule", "cosine")),
    )
    if head.prediction_type not in ("v_prediction", "epsilon"):
        raise ConfigError(f"config.json: diffusion_head_config.prediction_type={head.prediction_type!r}")
    if head.hidden_size != lm.hidden_size:
        raise ConfigError("config.json: diffusion head and language model hidden sizes differ")
    if head.latent_size != acoustic.vae_dim:
        raise ConfigError("config.json: diffusion head latent size and acoustic vae_dim differ")
    tts_layers = int(raw.get("tts_backbone_num_hidden_layers", 20))
    if not 0 < tts_layers < lm.num_hidden_layers:
        raise ConfigError(f"config.json: tts_backbone_num_hidden_layers={tts_layers} of {lm.num_hidden_layers}")
    return ModelConfig(lm=lm, acoustic=acoustic, head=head, tts_layers=tts_layers)


def load_config(model_dir: str | Path) -> ModelConfig:
    path = Path(model_dir) / "config.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"{path} not found") from e
    return parse_config(raw)


def qwen2_config(cfg: ModelConfig, num_layers: int, attn_implementation: str = attention.NAME) -> Qwen2Config:
    """A transformers Qwen2 config for one of the two stacks (text or TTS layers); attention is SDPA with the
    kernel's grouped-query support (attention.py), or any transformers implementation by name."""
    lm = cfg.lm
    q = Qwen2Config(
        vocab_size=lm.vocab_size,
        hidden_size=lm.hidden_size,
        intermediate_size=lm.intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=lm.num_attention_heads,
        num_key_value_heads=lm.num_key_value_heads,
        hidden_act=lm.hidden_act,
        max_position_embeddings=lm.max_position_embeddings,
        rms_norm_eps=lm.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": lm.rope_theta},
        use_sliding_window=False,
    )
    # Qwen2Config's typed signature has no head_dim (the attention reads it from the config when set).
    q.head_dim = lm.head_dim
    q._attn_implementation = attn_implementation
    return q


def acoustic_decoder_config(cfg: ModelConfig) -> VibeVoiceAcousticTokenizerDecoderConfig:
    """transformers names the decoder's upsampling by the encoder's downsampling ratios (it reverses them)."""
    ac = cfg.acoustic
    return VibeVoiceAcousticTokenizerDecoderConfig(
        channels=ac.channels,
        hidden_size=ac.vae_dim,
        kernel_size=7,
        rms_norm_eps=ac.layernorm_eps,
        num_filters=ac.n_filters,
        downsampling_ratios=list(reversed(ac.ratios)),
        depths=list(ac.depths),
        hidden_act="gelu",
        ffn_expansion=4,
    )


@dataclass(frozen=True)
class HeadModuleConfig:
    """The attributes transformers' `VibeVoiceDiffusionHead` reads from its config."""

    hidden_size: int
    latent_size: int
    num_hidden_layers: int
    intermediate_size: int
    rms_norm_eps: float
    hidden_act: str = "silu"
    mlp_bias: bool = False
    frequency_embedding_size: int = 256
    diffusion_max_period: int = 10000


def head_config(cfg: ModelConfig) -> HeadModuleConfig:
    h = cfg.head
    return HeadModuleConfig(
        hidden_size=h.hidden_size,
        latent_size=h.latent_size,
        num_hidden_layers=h.head_layers,
        intermediate_size=int(h.hidden_size * h.head_ffn_ratio),
        rms_norm_eps=h.rms_norm_eps,
    )
