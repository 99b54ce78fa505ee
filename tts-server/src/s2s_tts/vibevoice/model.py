"""VibeVoice-Realtime-0.5B as modules: transformers' Qwen2 decoder layers split into a lower text stack (with the
token embedding) and an upper TTS stack, the input-type embedding (text vs speech), the connector (speech latent ->
hidden), the diffusion head, the end-of-speech classifier and the acoustic decoder (latent -> 3,200 samples).
Everything here works on batches of rows; which rows (streams) a call serves is the caches' business."""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer, Qwen2RMSNorm, Qwen2RotaryEmbedding
from transformers.models.vibevoice.modeling_vibevoice import (
    VibeVoiceDiffusionHead,
    VibeVoiceDiffusionHeadSinusoidalEmbedding,
    VibeVoiceMultiModalProjector,
)
from transformers.models.vibevoice_acoustic_tokenizer.modeling_vibevoice_acoustic_tokenizer import (
    VibeVoiceAcousticTokenizerDecoderModel,
)

from .config import ModelConfig, acoustic_decoder_config, head_config, qwen2_config
from .decoder_cache import SlotPaddingCache
from .kv_cache import SlotKVCache

TEXT_TYPE = 1  # upstream's tts_input_types: 1 marks text positions, 0 speech positions
SPEECH_TYPE = 0


class EosClassifier(nn.Module):
    """End of speech from the TTS stack's last hidden state: sigmoid(logit) > 0.5 ends the utterance."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(hidden))).squeeze(-1)


class RealtimeModel(nn.Module):
    # Buffers (register_buffer below), declared so that they read as tensors, not Tensor | Module.
    speech_scaling_factor: torch.Tensor
    speech_bias_factor: torch.Tensor

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        lm_cfg = qwen2_config(cfg, cfg.text_layers)
        tts_cfg = qwen2_config(cfg, cfg.tts_layers)
        hidden = cfg.lm.hidden_size
        self.embed_tokens = nn.Embedding(cfg.lm.vocab_size, hidden)
        self.lm_layers = nn.ModuleList([Qwen2DecoderLayer(lm_cfg, i) for i in range(cfg.text_layers)])
        self.tts_layers = nn.ModuleList([Qwen2DecoderLayer(tts_cfg, i) for i in range(cfg.tts_layers)])
        self.tts_norm = Qwen2RMSNorm(hidden, eps=cfg.lm.rms_norm_eps)
        self.rotary = Qwen2RotaryEmbedding(config=tts_cfg)
        self.input_types = nn.Embedding(2, hidden)
        self.connector = VibeVoiceMultiModalProjector(cfg.acoustic.vae_dim, hidden)
        self.head = VibeVoiceDiffusionHead(head_config(cfg))
        self.eos = EosClassifier(hidden)
        self.decoder = VibeVoiceAcousticTokenizerDecoderModel(acoustic_decoder_config(cfg))
        self.register_buffer("speech_scaling_factor", torch.tensor(1.0))
        self.register_buffer("speech_bias_factor", torch.tensor(0.0))

    # -- dtype / device -----------------------------------------------------------------------------------------
    def place(self, device: torch.device, dtype: torch.dtype) -> RealtimeModel:
        """Moves and casts, then recomputes the float32 tables a cast would round: the head's sinusoid frequencies
        (1.8% error in bf16; upstream computes them in float32 each call) and the rotary inverse frequencies."""
        self.to(device=device, dtype=dtype)
        emb = self.head.timestep_embedding
        emb.freq = VibeVoiceDiffusionHeadSinusoidalEmbedding.compute_default_freq(emb.config).to(device)
        inv_freq, _ = self.rotary.compute_default_rope_parameters(self.rotary.config)
        self.rotary.inv_freq = inv_freq.to(device)
        self.rotary.original_inv_freq = inv_freq.clone().to(device)
        return self

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_tokens.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.embed_tokens.weight.device

    # -- the two stacks -----------------------------------------------------------------------------------------
    def _run(
        self,
        layers: nn.ModuleList,
        hidden: torch.Tensor,
        cache: SlotKVCache,
        rows: list[int],
        n_real: list[int] | None = None,
    ) -> torch.Tensor:
        position_ids, mask = cache.plan(rows, hidden.shape[1], n_real)
        position_embeddings = self.rotary(hidden, position_ids)
        for layer in layers:
            hidden = layer(
                hidden,
                attention_mask=mask,
                position_ids=position_ids,
                past_key_values=cache,
                position_embeddings=position_embeddings,
            )
        return hidden

    def text_lm(self, tokens: torch.Tensor, cache: SlotKVCache, rows: list[int], n_real: list[int]) -> torch.Tensor:
        """The lower stack on a text window: [b, n] token ids -> [b, n, H] (no final norm, as upstream)."""
        return self._run(self.lm_layers, self.embed_tokens(tokens), cache, rows, n_real)

    def tts_lm(
        self,
        inputs: torch.Tensor,
        input_type: int,
        cache: SlotKVCache,
        rows: list[int],
        n_real: list[int] | None = None,
    ) -> torch.Tensor:
        """The upper stack on [b, n, H] inputs (text LM states or connector embeddings) of one input type."""
        hidden = inputs + self.input_types.weight[input_type]
        return self.tts_norm(self._run(self.tts_layers, hidden, cache, rows, n_real))

    # -- speech ---------------------------------------------------------------------------------------------------
    def decode(self, latents: torch.Tensor, cache: SlotPaddingCache, slots: list[int]) -> torch.Tensor:
        """[b, vae_dim] sampled latents -> [b, hop] audio, streaming on the slots' decoder rows."""
        scaled = latents / self.speech_scaling_factor - self.speech_bias_factor
        cache.select(slots)
        out = self.decoder(scaled.unsqueeze(-1), padding_cache=cache)
        return out.audio[:, 0, :]
