"""The batched model work of one engine step, on every stream's slot at once: loading a voice prompt into a slot,
the text-window phase, and the speech-frame phase (diffusion, decoder, TTS stack, end-of-speech).

Rows: the text stack has one per slot; the TTS stack two per slot, interleaved (2s positive, 2s+1 negative) so a
speech step over slots 0..B-1 reads rows 0..2B-1 as one view."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .decoder_cache import SlotPaddingCache
from .kv_cache import SlotKVCache
from .model import SPEECH_TYPE, TEXT_TYPE, RealtimeModel
from .prompt import VoicePrompt
from .sampler import NoiseSource, make_schedule, sample_latents
from .stream import EngineOptions, Stream

Diffuse = Callable[[Sequence[Stream], list[int], torch.Tensor, torch.Tensor], torch.Tensor]


class BatchState:
    """The per-slot device state (caches and conditions) and the phases that advance it."""

    def __init__(self, model: RealtimeModel, max_streams: int, noise: NoiseSource, options: EngineOptions) -> None:
        cfg, lm = model.cfg, model.cfg.lm
        device, dtype = model.device, model.dtype
        self.model = model
        self.noise = noise
        self.options = options  # read at each phase: its fault_hook
        self.max_positions = lm.max_position_embeddings
        self.lm_cache = SlotKVCache(
            cfg.text_layers, max_streams, lm.num_key_value_heads, lm.head_dim, lm.max_position_embeddings, device, dtype
        )
        self.tts_cache = SlotKVCache(
            cfg.tts_layers,
            2 * max_streams,
            lm.num_key_value_heads,
            lm.head_dim,
            lm.max_position_embeddings,
            device,
            dtype,
        )
        self.dec_cache = SlotPaddingCache(model.decoder, max_streams, device, dtype)
        self.cond = torch.zeros(2 * max_streams, lm.hidden_size, device=device, dtype=dtype)

    def positions(self, slot: int) -> int:
        """The positions the slot's positive TTS row holds."""
        return self.tts_cache.lengths[2 * slot]

    def load_slot(self, slot: int, v: VoicePrompt) -> None:
        """A stream that just got its slot: its caches start from a copy of its voice prompt."""
        self.lm_cache.load_row(slot, list(v.lm.keys), list(v.lm.values))
        self.tts_cache.load_row(2 * slot, list(v.tts_lm.keys), list(v.tts_lm.values))
        self.tts_cache.load_row(2 * slot + 1, list(v.neg_tts_lm.keys), list(v.neg_tts_lm.values))
        self.cond[2 * slot].copy_(v.tts_lm.last_hidden)
        self.cond[2 * slot + 1].copy_(v.neg_tts_lm.last_hidden)
        self.dec_cache.reset_slot(slot)

    def clear_slot(self, slot: int) -> None:
        self.lm_cache.clear_row(slot)
        self.tts_cache.clear_row(2 * slot)
        self.tts_cache.clear_row(2 * slot + 1)

    def shrink(self) -> None:
        """Gives back cache capacity the remaining streams do not need (reallocates only when it shrinks)."""
        self.lm_cache.shrink_to_fit()
        self.tts_cache.shrink_to_fit()

    def abandon(self) -> None:
        """Drops a failed phase's uncommitted writes."""
        self.lm_cache.abandon()
        self.tts_cache.abandon()
        self.dec_cache.abandon()

    def text_phase(self, items: Sequence[tuple[Stream, list[int]]]) -> list[None]:
        if self.options.fault_hook:
            self.options.fault_hook("text", [s.id for s, _ in items])
        m = self.model
        n = max(len(w) for _, w in items)
        n_real = [len(w) for _, w in items]
        tokens = torch.tensor([w + [0] * (n - len(w)) for _, w in items], device=m.device, dtype=torch.long)
        slots = [s.slot for s, _ in items]
        lm_hidden = m.text_lm(tokens, self.lm_cache, slots, n_real)  # type: ignore[arg-type]
        pos_rows = [2 * sl for sl in slots]  # type: ignore[operator]
        tts_hidden = m.tts_lm(lm_hidden, TEXT_TYPE, self.tts_cache, pos_rows, n_real)
        last = tts_hidden[torch.arange(len(items), device=m.device), torch.tensor(n_real, device=m.device) - 1]
        self.cond.index_copy_(0, torch.tensor(pos_rows, device=m.device), last)
        self.lm_cache.commit()
        self.tts_cache.commit()
        for s, w in items:
            s.progress.windows += 1
            del w
        return [None] * len(items)

    def speech_phase(self, streams: Sequence[Stream], diffuse: Diffuse) -> list[tuple[bytes, bool]]:
        """One speech frame for every stream: its 16-bit PCM and its end-of-speech flag. `diffuse` samples the
        latents of one step-count group (the engine passes its own, so a test can record them)."""
        if self.options.fault_hook:
            self.options.fault_hook("speech", [s.id for s in streams])
        m = self.model
        dev = m.device
        b = len(streams)
        slots: list[int] = [s.slot for s in streams]  # type: ignore[misc]
        rows = [r for sl in slots for r in (2 * sl, 2 * sl + 1)]
        rows_t = torch.tensor(rows, device=dev)
        cond = self.cond.index_select(0, rows_t)
        pos, neg = cond[0::2], cond[1::2]
        latent_dim = m.cfg.acoustic.vae_dim
        # the diffusion, grouped by step count (one 2B-row head call per solver step per group)
        groups: dict[int, list[int]] = {}
        for i, s in enumerate(streams):
            groups.setdefault(s.options.steps, []).append(i)
        if len(groups) == 1:
            latents = diffuse(streams, list(range(b)), pos, neg)
        else:
            latents = torch.empty(b, latent_dim, device=dev, dtype=m.dtype)
            for idx in groups.values():
                idx_t = torch.tensor(idx, device=dev)
                latents.index_copy_(0, idx_t, diffuse(streams, idx, pos[idx_t], neg[idx_t]))
        audio = m.decode(latents, self.dec_cache, slots)
        embeds = m.connector(latents).repeat_interleave(2, dim=0).unsqueeze(1)  # both TTS streams get the latent
        hidden = m.tts_lm(embeds, SPEECH_TYPE, self.tts_cache, rows)[:, 0]
        eos = torch.sigmoid(m.eos(hidden[0::2]).float()) > 0.5
        pcm = (audio.float().clamp(-1.0, 1.0) * 32767.0).to(torch.int16)
        packed = torch.cat([pcm, eos.to(torch.int16)[:, None]], dim=1)
        self.cond.index_copy_(0, rows_t, hidden)
        self.tts_cache.commit()
        self.dec_cache.commit()
        host = packed.cpu()  # the step's one device -> host transfer: audio and end-of-speech flags together
        return [(host[i, :-1].numpy().tobytes(), bool(host[i, -1])) for i in range(b)]

    def diffuse(self, streams: Sequence[Stream], idx: list[int], pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        m = self.model
        chosen = [streams[i] for i in idx]
        steps = chosen[0].options.steps
        schedule = make_schedule(steps, m.cfg.head.ddpm_num_steps, m.cfg.head.ddpm_beta_schedule)
        noise = self.noise.draw(
            [s.id for s in chosen], [s.progress.frames for s in chosen], steps, m.cfg.acoustic.vae_dim, m.device
        )
        cfgs = {s.options.cfg for s in chosen}
        scale: float | torch.Tensor
        if len(cfgs) == 1:
            scale = cfgs.pop()
        else:
            scale = torch.tensor([[s.options.cfg] for s in chosen], device=m.device, dtype=torch.float32)
        return sample_latents(m.head, pos, neg, scale, noise, schedule, m.cfg.head.prediction_type)
