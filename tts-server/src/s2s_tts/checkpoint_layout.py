"""The published checkpoint's tensor names and shapes, derived from its `config.json` (upstream's layout).

microsoft/VibeVoice-Realtime-0.5B's `model.safetensors` holds the `VibeVoiceStreamingForConditionalGenerationInference`
state dict without the acoustic tokenizer's encoder (unused at inference): the text LM (`model.language_model`, the
lower Qwen2 layers, no final norm), the TTS LM (`model.tts_language_model`, the upper layers with a final norm and an
embedding table it does not use), the input-type embeddings, the acoustic decoder, the connector, the diffusion head,
the two speech scaling buffers, and the end-of-speech classifier. This module only names them; loading is the
engine's.
"""

from __future__ import annotations

from typing import Any

Shape = tuple[int, ...]


def _qwen2_layers(
    prefix: str, layers: int, hidden: int, heads: int, kv_heads: int, head_dim: int, mlp: int
) -> dict[str, Shape]:
    out: dict[str, Shape] = {}
    for i in range(layers):
        p = f"{prefix}.layers.{i}"
        out[f"{p}.self_attn.q_proj.weight"] = (heads * head_dim, hidden)
        out[f"{p}.self_attn.q_proj.bias"] = (heads * head_dim,)
        out[f"{p}.self_attn.k_proj.weight"] = (kv_heads * head_dim, hidden)
        out[f"{p}.self_attn.k_proj.bias"] = (kv_heads * head_dim,)
        out[f"{p}.self_attn.v_proj.weight"] = (kv_heads * head_dim, hidden)
        out[f"{p}.self_attn.v_proj.bias"] = (kv_heads * head_dim,)
        out[f"{p}.self_attn.o_proj.weight"] = (hidden, heads * head_dim)
        out[f"{p}.mlp.gate_proj.weight"] = (mlp, hidden)
        out[f"{p}.mlp.up_proj.weight"] = (mlp, hidden)
        out[f"{p}.mlp.down_proj.weight"] = (hidden, mlp)
        out[f"{p}.input_layernorm.weight"] = (hidden,)
        out[f"{p}.post_attention_layernorm.weight"] = (hidden,)
    return out


def decoder_depths(acoustic: dict[str, Any]) -> list[int]:
    """The acoustic decoder's stage depths: `decoder_depths` if set, else the encoder's reversed (as upstream)."""
    explicit = acoustic.get("decoder_depths")
    if explicit:
        return [int(d) for d in str(explicit).split("-")]
    return [int(d) for d in reversed(str(acoustic.get("encoder_depths", "3-3-3-3-3-3-8")).split("-"))]


def decoder_ratios(acoustic: dict[str, Any]) -> list[int]:
    ratios = acoustic.get("decoder_ratios") or acoustic.get("encoder_ratios") or [8, 5, 5, 4, 2, 2]
    return [int(r) for r in ratios]


def _acoustic_decoder(acoustic: dict[str, Any]) -> dict[str, Shape]:
    prefix = "model.acoustic_tokenizer.decoder"
    vae = int(acoustic.get("vae_dim", 64))
    filters = int(acoustic.get("decoder_n_filters", 32))
    depths = decoder_depths(acoustic)
    ratios = decoder_ratios(acoustic)
    if len(depths) != len(ratios) + 1:
        raise ValueError(f"acoustic decoder: {len(depths)} stages need {len(depths) - 1} ratios, got {ratios}")
    if acoustic.get("mixer_layer", "depthwise_conv") != "depthwise_conv" or not acoustic.get("disable_last_norm", True):
        raise ValueError("acoustic decoder: only the published layout (depthwise_conv mixer, no last norm) is named")
    kernel = 7
    channels = [filters * 2 ** (len(depths) - 1 - i) for i in range(len(depths))]
    out: dict[str, Shape] = {
        f"{prefix}.upsample_layers.0.0.conv.conv.weight": (channels[0], vae, kernel),
        f"{prefix}.upsample_layers.0.0.conv.conv.bias": (channels[0],),
    }
    for i, ratio in enumerate(ratios):
        out[f"{prefix}.upsample_layers.{i + 1}.0.convtr.convtr.weight"] = (channels[i], channels[i + 1], 2 * ratio)
        out[f"{prefix}.upsample_layers.{i + 1}.0.convtr.convtr.bias"] = (channels[i + 1],)
    for i, depth in enumerate(depths):
        c = channels[i]
        for j in range(depth):
            p = f"{prefix}.stages.{i}.{j}"
            out[f"{p}.gamma"] = (c,)
            out[f"{p}.ffn_gamma"] = (c,)
            out[f"{p}.norm.weight"] = (c,)
            out[f"{p}.ffn_norm.weight"] = (c,)
            out[f"{p}.mixer.conv.conv.conv.weight"] = (c, 1, kernel)
            out[f"{p}.mixer.conv.conv.conv.bias"] = (c,)
            out[f"{p}.ffn.linear1.weight"] = (4 * c, c)
            out[f"{p}.ffn.linear1.bias"] = (4 * c,)
            out[f"{p}.ffn.linear2.weight"] = (c, 4 * c)
            out[f"{p}.ffn.linear2.bias"] = (c,)
    out[f"{prefix}.head.conv.conv.weight"] = (int(acoustic.get("channels", 1)), channels[-1], kernel)
    out[f"{prefix}.head.conv.conv.bias"] = (int(acoustic.get("channels", 1)),)
    return out


def _diffusion_head(head: dict[str, Any], latent: int) -> dict[str, Shape]:
    prefix = "model.prediction_head"
    hidden = int(head["hidden_size"])
    ffn = int(hidden * float(head.get("head_ffn_ratio", 3.0)))
    out: dict[str, Shape] = {
        f"{prefix}.noisy_images_proj.weight": (hidden, latent),
        f"{prefix}.cond_proj.weight": (hidden, hidden),
        f"{prefix}.t_embedder.mlp.0.weight": (hidden, 256),
        f"{prefix}.t_embedder.mlp.2.weight": (hidden, hidden),
    }
    for i in range(int(head.get("head_layers", 4))):
        p = f"{prefix}.layers.{i}"
        out[f"{p}.ffn.gate_proj.weight"] = (ffn, hidden)
        out[f"{p}.ffn.up_proj.weight"] = (ffn, hidden)
        out[f"{p}.ffn.down_proj.weight"] = (hidden, ffn)
        out[f"{p}.norm.weight"] = (hidden,)
        out[f"{p}.adaLN_modulation.1.weight"] = (3 * hidden, hidden)
    out[f"{prefix}.final_layer.linear.weight"] = (latent, hidden)
    out[f"{prefix}.final_layer.adaLN_modulation.1.weight"] = (2 * hidden, hidden)
    return out


def checkpoint_shapes(config: dict[str, Any]) -> dict[str, Shape]:
    """Every tensor of the published `model.safetensors` for this `config.json`, with its shape."""
    if config.get("model_type") != "vibevoice_streaming":
        raise ValueError(f"model_type {config.get('model_type')!r}, expected 'vibevoice_streaming'")
    decoder = config["decoder_config"]
    hidden = int(decoder["hidden_size"])
    heads = int(decoder["num_attention_heads"])
    kv_heads = int(decoder.get("num_key_value_heads") or heads)
    head_dim = int(decoder.get("head_dim") or hidden // heads)
    mlp = int(decoder["intermediate_size"])
    vocab = int(decoder["vocab_size"])
    tts_layers = int(config.get("tts_backbone_num_hidden_layers", 20))
    lm_layers = int(decoder["num_hidden_layers"]) - tts_layers
    if lm_layers < 1 or tts_layers < 1:
        raise ValueError(f"{decoder['num_hidden_layers']} layers cannot hold {tts_layers} TTS layers and a text LM")
    acoustic = config.get("acoustic_tokenizer_config") or {}
    latent = int(acoustic.get("vae_dim", config.get("acoustic_vae_dim", 64)))

    out: dict[str, Shape] = {
        "model.speech_scaling_factor": (),
        "model.speech_bias_factor": (),
        "model.language_model.embed_tokens.weight": (vocab, hidden),
    }
    out.update(_qwen2_layers("model.language_model", lm_layers, hidden, heads, kv_heads, head_dim, mlp))
    out["model.tts_language_model.embed_tokens.weight"] = (vocab, hidden)
    out.update(_qwen2_layers("model.tts_language_model", tts_layers, hidden, heads, kv_heads, head_dim, mlp))
    out["model.tts_language_model.norm.weight"] = (hidden,)
    out["model.tts_input_types.weight"] = (2, hidden)
    out.update(_acoustic_decoder(acoustic))
    out["model.acoustic_connector.fc1.weight"] = (hidden, latent)
    out["model.acoustic_connector.fc1.bias"] = (hidden,)
    out["model.acoustic_connector.norm.weight"] = (hidden,)
    out["model.acoustic_connector.fc2.weight"] = (hidden, hidden)
    out["model.acoustic_connector.fc2.bias"] = (hidden,)
    out.update(_diffusion_head(config["diffusion_head_config"], latent))
    out["tts_eos_classifier.fc1.weight"] = (hidden, hidden)
    out["tts_eos_classifier.fc1.bias"] = (hidden,)
    out["tts_eos_classifier.fc2.weight"] = (1, hidden)
    out["tts_eos_classifier.fc2.bias"] = (1,)
    return out
