"""The batched streaming engine: many streams, one model step for all of them.

Per stream (upstream's `generate` loop, made incremental): a text window of up to 5 tokens runs through the text
stack and the positive TTS stream; then up to 6 speech latents, each sampled by the diffusion head with guidance
against the negative TTS stream, decoded to 3,200 samples, fed back through the connector into both TTS streams,
and followed by an end-of-speech check; then the next window. Text arrives while the stream speaks: a window runs
when 5 tokens are in (or the text has ended); if speech catches up with the text first, the stream waits.

Per step, every stream that can go on goes on together: the text windows due in this step as one batched call of
each stack, then one speech latent for every running stream as one batched diffusion (positive and negative
conditions as one 2B-row head call per solver step), one decoder call and one TTS-stack call on 2B rows
(positive and negative). Caches of different lengths share each call through per-row positions in preallocated
per-layer tensors (see kv_cache.py): no padding copies, no regrouping, so the batch never splits by length.
End-of-speech flags and audio leave the device once per step."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tokenizers import Tokenizer

from ..engine_api import Done, Priority, StreamError, StreamOptions
from .checkpoint import load_model
from .model import SPEECH_TYPE, TEXT_TYPE, RealtimeModel
from .prompt import VoicePrompt, load_voice_prompt
from .sampler import NoiseSource, TorchNoise, make_schedule, sample_latents
from .text import IncrementalText, load_tokenizer

log = logging.getLogger(__name__)

TEXT_WINDOW = 5  # upstream's TTS_TEXT_WINDOW_SIZE
SPEECH_WINDOW = 6  # upstream's TTS_SPEECH_WINDOW_SIZE
SAMPLE_RATE = 24000
MIN_CFG, MAX_CFG = 0.0, 10.0  # cfg must be > 0 (as the demo), at most 10
MIN_STEPS, MAX_STEPS = 1, 100

# An L4 has 24 GB. The weights take about 1.8 GB in bf16; a stream's caches take about 22 KB per position (2 x 20 TTS
# layers + 4 text layers, 2 KV heads of 64), so a 2-minute answer (~1,400 positions, doubled capacity) needs ~60 MB:
# memory would allow hundreds. The bound is time: every stream must get one 133 ms frame per step. A step issues the
# same ~3,300 kernels whatever the batch; the per-stream work (decoder ~4.8 GFLOP per frame) is ~2.5 ms at 16
# streams on an L4. 16 keeps a step well inside 133 ms; the GPU bench (`python -m s2s_tts.bench --device cuda`)
# is what confirms it.
DEFAULT_MAX_STREAMS_CUDA = 16
DEFAULT_MAX_STREAMS_CPU = 4


class Output(Protocol):
    """What the engine calls on a stream's output (engine_api.StreamOutput, or a test's collector)."""

    def audio(self, pcm16le: bytes) -> None: ...

    def finish(self, done: Done) -> None: ...

    def fail(self, error: StreamError) -> None: ...


@dataclass
class EngineOptions:
    eos: bool = True  # stop at the end-of-speech classifier (tests with random weights turn it off)
    max_tail_frames: int = 90  # frames after the last text window (once ended) before finishing regardless of EOS
    max_text_chars: int = 20_000  # per stream (text_too_long)
    noise: NoiseSource | None = None  # the diffusion noise (default: torch.randn from one generator)
    seed: int | None = None  # for the default noise
    fault_hook: Callable[[str, list[str]], None] | None = None  # tests: raise in a phase for chosen stream ids
    idle_wait_s: float = 0.1
    start_thread: bool = True  # False: the caller drives `step()` (tests, bench)


@dataclass(eq=False)
class _Stream:
    id: str
    options: StreamOptions
    output: Output
    voice: VoicePrompt
    seq: int
    text: IncrementalText
    priority: Priority
    # shared with the caller's thread (under the engine lock)
    inbox: list[str] = field(default_factory=list)
    end_requested: bool = False
    cancel_requested: bool = False
    queued: bool = True
    chars: int = 0
    closed: bool = False  # finished, failed or cancelled: nothing more is delivered
    # the engine thread's own
    slot: int | None = None
    loaded: bool = False
    ended: bool = False
    tokens: deque[int] = field(default_factory=deque)
    in_window: int = SPEECH_WINDOW  # latents done in the current window; SPEECH_WINDOW: a text window is due
    windows: int = 0
    tail: int = 0
    frames: int = 0


class _Handle:
    """The server's view of one stream (engine_api.EngineStream)."""

    def __init__(self, engine: VibeVoiceEngine, stream: _Stream) -> None:
        self._engine = engine
        self._stream = stream

    @property
    def id(self) -> str:
        return self._stream.id

    @property
    def queued(self) -> bool:
        return self._stream.queued

    def push_text(self, text: str) -> None:
        self._engine._push_text(self._stream, text)

    def end(self) -> None:
        self._engine._end(self._stream)

    def promote(self) -> None:
        self._engine._promote(self._stream)

    def cancel(self) -> None:
        self._engine._cancel(self._stream)


def _torch_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in table:
        raise ValueError(f"dtype {dtype!r} (float32 or bfloat16)")
    return table[dtype]


def load_voices(model_dir: str | Path, model: RealtimeModel) -> dict[str, VoicePrompt]:
    return {
        path.stem: load_voice_prompt(path, model.cfg, model.device, model.dtype)
        for path in sorted((Path(model_dir) / "voices").glob("*.safetensors"))
    }


class VibeVoiceEngine:
    name = "vibevoice"
    sample_rate = SAMPLE_RATE
    default_cfg = 1.5
    default_steps = 5

    def __init__(
        self,
        model_dir: str | Path,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
        max_streams: int | None = None,
        options: EngineOptions | None = None,
    ) -> None:
        dev = torch.device(device)
        model = load_model(model_dir, dev, _torch_dtype(dtype))
        voices = load_voices(model_dir, model)
        if not voices:
            raise FileNotFoundError(f"{Path(model_dir) / 'voices'}: no *.safetensors voices")
        self._setup(model, load_tokenizer(model_dir), voices, max_streams, options or EngineOptions())

    @classmethod
    def from_parts(
        cls,
        model: RealtimeModel,
        tokenizer: Tokenizer,
        voices: dict[str, VoicePrompt],
        max_streams: int | None = None,
        options: EngineOptions | None = None,
    ) -> VibeVoiceEngine:
        engine = cls.__new__(cls)
        engine._setup(model, tokenizer, voices, max_streams, options or EngineOptions())
        return engine

    def _setup(
        self,
        model: RealtimeModel,
        tokenizer: Tokenizer,
        voices: dict[str, VoicePrompt],
        max_streams: int | None,
        options: EngineOptions,
    ) -> None:
        from .decoder_cache import SlotPaddingCache
        from .kv_cache import SlotKVCache

        self.model = model.eval()
        self.tokenizer = tokenizer
        self._voices = voices
        self.voices = sorted(voices)
        self.default_voice = "en-Carter_man" if "en-Carter_man" in voices else self.voices[0]
        cfg = model.cfg
        self.frame_samples = cfg.acoustic.hop_length
        device, dtype = model.device, model.dtype
        if max_streams is None:
            max_streams = DEFAULT_MAX_STREAMS_CUDA if device.type == "cuda" else DEFAULT_MAX_STREAMS_CPU
        if max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        self.max_streams = max_streams
        self.opts = options
        self._noise: NoiseSource = options.noise or TorchNoise(options.seed)
        lm = cfg.lm
        self.max_positions = lm.max_position_embeddings
        # rows: text stack one per slot; TTS stack two per slot, interleaved (2s positive, 2s+1 negative) so a
        # speech step over slots 0..B-1 reads rows 0..2B-1 as one view
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
        self._lock = threading.Condition()
        self._free = list(range(max_streams))
        self._active: dict[str, _Stream] = {}  # holding a slot
        self._waiting: list[_Stream] = []
        self._seq = 0
        self._stop = False
        self.last_step_s = 0.0
        self._thread: threading.Thread | None = None
        if options.start_thread:
            self._thread = threading.Thread(target=self._loop, name="vibevoice-engine", daemon=True)
            self._thread.start()

    # -- the server's side (any thread) -------------------------------------------------------------------------
    def open(self, options: StreamOptions, output: Output) -> _Handle:
        if options.voice not in self._voices:
            raise StreamError("unknown_voice", f"unknown voice {options.voice!r} (voices: {', '.join(self.voices)})")
        if not MIN_CFG < options.cfg <= MAX_CFG:
            raise StreamError("bad_option", f"cfg {options.cfg} out of range ({MIN_CFG}, {MAX_CFG}]")
        if not MIN_STEPS <= options.steps <= MAX_STEPS:
            raise StreamError("bad_option", f"steps {options.steps} out of range [{MIN_STEPS}, {MAX_STEPS}]")
        with self._lock:
            if self._stop:
                raise StreamError("engine_error", "the engine is closed")
            self._seq += 1
            stream = _Stream(
                id=f"s{self._seq}",
                options=options,
                output=output,
                voice=self._voices[options.voice],
                seq=self._seq,
                text=IncrementalText(self.tokenizer),
                priority=options.priority,
            )
            self._waiting.append(stream)
            self._admit_locked()
            self._lock.notify_all()
        return _Handle(self, stream)

    def stream_counts(self) -> tuple[int, int]:
        with self._lock:
            return len(self._active), len(self._waiting)

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            streams = list(self._active.values()) + self._waiting
            self._waiting = []
        for s in streams:
            self._fail(s, StreamError("engine_error", "the engine was closed"))

    def _push_text(self, s: _Stream, text: str) -> None:
        with self._lock:
            if s.end_requested:
                raise StreamError("text_after_end", "text after end")
            if s.closed:
                return
            s.chars += len(text)
            if s.chars > self.opts.max_text_chars:
                raise StreamError("text_too_long", f"more than {self.opts.max_text_chars} characters of text")
            s.inbox.append(text)
            self._lock.notify_all()

    def _end(self, s: _Stream) -> None:
        with self._lock:
            s.end_requested = True
            self._lock.notify_all()

    def _promote(self, s: _Stream) -> None:
        with self._lock:
            s.priority = "confirmed"

    def _cancel(self, s: _Stream) -> None:
        with self._lock:
            if s.closed:
                return
            if s.queued:
                if s in self._waiting:
                    self._waiting.remove(s)
                s.closed = True
                s.output.finish(Done(cancelled=True, frames=0, audio_ms=0))
                return
            s.cancel_requested = True
            self._lock.notify_all()

    def _admit_locked(self) -> None:
        # confirmed before speculative, then in order of opening
        while self._free and self._waiting:
            nxt = min(self._waiting, key=lambda w: (w.priority != "confirmed", w.seq))
            self._waiting.remove(nxt)
            nxt.slot = self._free.pop(0)
            nxt.queued = False
            self._active[nxt.id] = nxt

    # -- the engine thread ----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self._lock:
                    if self._stop:
                        return
                try:
                    worked = self.step()
                except Exception:  # a fault outside any stream's part: log it, keep serving
                    log.exception("engine step failed")
                    worked = False
                if not worked:
                    with self._lock:
                        if not self._stop and not self._has_work_locked():
                            self._lock.wait(self.opts.idle_wait_s)

    def _has_work_locked(self) -> bool:
        for s in self._active.values():
            if s.inbox or s.cancel_requested or (s.end_requested and not s.ended) or not s.loaded:
                return True
            if self._can_speak(s):
                return True
        return False

    def _can_speak(self, s: _Stream) -> bool:
        if s.in_window < SPEECH_WINDOW:
            return True
        if not s.text.speakable and not s.ended:
            return False
        return len(s.tokens) >= TEXT_WINDOW or s.ended

    def step(self) -> bool:
        """One engine step: intake, then one text window where due and one speech frame for every stream that can
        speak. Returns False when there was nothing to do."""
        with torch.inference_mode():
            return self._step()

    def _step(self) -> bool:
        t0 = time.perf_counter()
        worked = False
        with self._lock:
            streams = list(self._active.values())
            intake = []
            for s in streams:
                intake.append((s, s.inbox, s.end_requested and not s.ended, s.cancel_requested))
                s.inbox = []
        for s, texts, end_now, cancel in intake:
            if cancel:
                self._release(s, Done(cancelled=True, frames=s.frames, audio_ms=self._ms(s.frames)))
                worked = True
                continue
            if not s.loaded:
                worked = True
                if not self._load(s):
                    continue
            for text in texts:
                s.tokens.extend(s.text.push(text))
            if end_now:
                s.tokens.extend(s.text.finish())
                s.ended = True
                worked = True
                if not s.text.speakable:
                    self._release(s, StreamError("unspeakable", "the stream had no speakable text"))
                    continue
        running = [s for s in streams if not s.closed and s.loaded]
        # text windows due now
        windows: list[tuple[_Stream, list[int]]] = []
        speakers: list[_Stream] = []
        for s in running:
            if not self._can_speak(s):
                continue
            if s.in_window >= SPEECH_WINDOW:
                n = min(TEXT_WINDOW, len(s.tokens))
                window = [s.tokens.popleft() for _ in range(n)]
                if self.tts_cache.lengths[2 * s.slot] + n + 1 > self.max_positions:  # type: ignore[operator]
                    self._release(s, Done(cancelled=False, frames=s.frames, audio_ms=self._ms(s.frames)))
                    continue
                s.in_window = 0
                if window:
                    windows.append((s, window))
                else:
                    s.windows += 1  # an empty window (text all spoken): speech goes on, as upstream's loop does
            speakers.append(s)
        if windows:
            worked = True
            _ok, _ = self._guarded("text", windows, self._text_phase)
            speakers = [s for s in speakers if not s.closed]
        if speakers:
            worked = True
            ok_speakers, results = self._guarded("speech", speakers, self._speech_phase)
            for s, (pcm, eos) in zip(ok_speakers, results, strict=True):
                self._after_frame(s, pcm, eos)
        if worked:
            self.last_step_s = time.perf_counter() - t0
        return worked

    def _ms(self, frames: int) -> int:
        return round(frames * self.frame_samples * 1000 / self.sample_rate)

    def _load(self, s: _Stream) -> bool:
        """A stream that just got its slot: its caches start from a copy of its voice prompt."""
        try:
            if self.opts.fault_hook:
                self.opts.fault_hook("load", [s.id])
            slot = s.slot
            assert slot is not None
            v = s.voice
            self.lm_cache.load_row(slot, list(v.lm.keys), list(v.lm.values))
            self.tts_cache.load_row(2 * slot, list(v.tts_lm.keys), list(v.tts_lm.values))
            self.tts_cache.load_row(2 * slot + 1, list(v.neg_tts_lm.keys), list(v.neg_tts_lm.values))
            self.cond[2 * slot].copy_(v.tts_lm.last_hidden)
            self.cond[2 * slot + 1].copy_(v.neg_tts_lm.last_hidden)
            self.dec_cache.reset_slot(slot)
            s.loaded = True
            return True
        except Exception as e:
            log.exception("stream %s: loading its voice prompt failed", s.id)
            self._release(s, StreamError("engine_error", f"loading the voice prompt failed: {e}"))
            return False

    def _guarded(
        self, phase: str, items: Sequence[Any], fn: Callable[[Sequence[Any]], list[Any]]
    ) -> tuple[list[Any], list[Any]]:
        """Runs a batched phase; if it throws, retries each stream alone so only the culprit fails."""
        try:
            return list(items), fn(items)
        except Exception as e:
            self._abandon()
            if len(items) == 1:
                self._fail_item(phase, items[0], e)
                return [], []
            log.warning("batched %s phase failed (%s); retrying %d streams one by one", phase, e, len(items))
        ok: list[Any] = []
        results: list[Any] = []
        for item in items:
            try:
                results.extend(fn([item]))
                ok.append(item)
            except Exception as e:
                self._abandon()
                self._fail_item(phase, item, e)
        return ok, results

    def _fail_item(self, phase: str, item: Any, e: Exception) -> None:
        s = item[0] if isinstance(item, tuple) else item
        log.error("stream %s failed in the %s phase: %s", s.id, phase, e)
        self._release(s, StreamError("engine_error", f"model step failed ({phase}): {e}"))

    def _abandon(self) -> None:
        self.lm_cache.abandon()
        self.tts_cache.abandon()
        self.dec_cache.abandon()

    def _text_phase(self, items: Sequence[tuple[_Stream, list[int]]]) -> list[None]:
        if self.opts.fault_hook:
            self.opts.fault_hook("text", [s.id for s, _ in items])
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
            s.windows += 1
            del w
        return [None] * len(items)

    def _speech_phase(self, streams: Sequence[_Stream]) -> list[tuple[bytes, bool]]:
        if self.opts.fault_hook:
            self.opts.fault_hook("speech", [s.id for s in streams])
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
            latents = self._diffuse(streams, list(range(b)), pos, neg)
        else:
            latents = torch.empty(b, latent_dim, device=dev, dtype=m.dtype)
            for idx in groups.values():
                idx_t = torch.tensor(idx, device=dev)
                latents.index_copy_(0, idx_t, self._diffuse(streams, idx, pos[idx_t], neg[idx_t]))
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

    def _diffuse(
        self, streams: Sequence[_Stream], idx: list[int], pos: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:
        m = self.model
        chosen = [streams[i] for i in idx]
        steps = chosen[0].options.steps
        schedule = make_schedule(steps, m.cfg.head.ddpm_num_steps, m.cfg.head.ddpm_beta_schedule)
        noise = self._noise.draw(
            [s.id for s in chosen], [s.frames for s in chosen], steps, m.cfg.acoustic.vae_dim, m.device
        )
        cfgs = {s.options.cfg for s in chosen}
        scale: float | torch.Tensor
        if len(cfgs) == 1:
            scale = cfgs.pop()
        else:
            scale = torch.tensor([[s.options.cfg] for s in chosen], device=m.device, dtype=torch.float32)
        return sample_latents(m.head, pos, neg, scale, noise, schedule, m.cfg.head.prediction_type)

    def _after_frame(self, s: _Stream, pcm: bytes, eos: bool) -> None:
        try:
            s.output.audio(pcm)
        except Exception:  # the client's side is gone (e.g. its event loop closed): the stream stops, others go on
            log.exception("stream %s: delivering audio failed", s.id)
            self._release(s, Done(cancelled=True, frames=s.frames, audio_ms=self._ms(s.frames)))
            return
        s.frames += 1
        s.in_window += 1
        spoken_all = s.ended and not s.tokens
        if spoken_all:
            s.tail += 1
        done = (spoken_all and ((self.opts.eos and eos) or s.tail >= self.opts.max_tail_frames)) or (
            # the model's position limit ends the stream, as upstream's max length does
            self.tts_cache.lengths[2 * s.slot] + 1 >= self.max_positions  # type: ignore[operator]
        )
        if done:
            self._release(s, Done(cancelled=False, frames=s.frames, audio_ms=self._ms(s.frames)))

    def _release(self, s: _Stream, outcome: Done | StreamError) -> None:
        """The stream leaves: its slot, cache rows and state go, and the next waiting stream gets the slot."""
        with self._lock:
            if s.closed:
                return
            s.closed = True
            self._active.pop(s.id, None)
            slot = s.slot
            s.slot = None
            if slot is not None:
                self.lm_cache.clear_row(slot)
                self.tts_cache.clear_row(2 * slot)
                self.tts_cache.clear_row(2 * slot + 1)
                self._free.append(slot)
                self._free.sort()
            s.tokens.clear()
            s.inbox = []
            self._admit_locked()
        # give back cache capacity the remaining streams do not need (reallocates only when it shrinks)
        self.lm_cache.shrink_to_fit()
        self.tts_cache.shrink_to_fit()
        try:
            if isinstance(outcome, Done):
                s.output.finish(outcome)
            else:
                s.output.fail(outcome)
        except Exception:
            log.exception("stream %s: delivering its end failed", s.id)

    def _fail(self, s: _Stream, error: StreamError) -> None:
        with self._lock:
            if s.closed:
                return
            s.closed = True
            self._active.pop(s.id, None)
        s.output.fail(error)
