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
End-of-speech flags and audio leave the device once per step.

This module holds the public engine, its thread and the step's order; the stream state is in stream.py, the slots
and the callers' requests in stream_table.py, the batched model phases in batch.py."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from ..engine_api import Done, StreamError, StreamOptions
from .batch import BatchState
from .checkpoint import load_model
from .decoder_cache import SlotPaddingCache
from .kv_cache import SlotKVCache
from .model import RealtimeModel
from .prompt import VoicePrompt, load_voice_prompt
from .sampler import TorchNoise
from .stream import SPEECH_WINDOW, TEXT_WINDOW, EngineOptions, Output, Stream, can_speak
from .stream_table import StreamHandle, StreamTable
from .text import IncrementalText, load_tokenizer

__all__ = [
    "DEFAULT_MAX_STREAMS_CPU",
    "DEFAULT_MAX_STREAMS_CUDA",
    "MAX_CFG",
    "MAX_STEPS",
    "MIN_CFG",
    "MIN_STEPS",
    "SAMPLE_RATE",
    "SPEECH_WINDOW",
    "TEXT_WINDOW",
    "EngineOptions",
    "Output",
    "VibeVoiceEngine",
    "load_voices",
]

log = logging.getLogger(__name__)

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
        self.model = model.eval()
        self.tokenizer = tokenizer
        self._voices = voices
        self.voices = sorted(voices)
        self.default_voice = "en-Carter_man" if "en-Carter_man" in voices else self.voices[0]
        self.frame_samples = model.cfg.acoustic.hop_length
        if max_streams is None:
            max_streams = DEFAULT_MAX_STREAMS_CUDA if model.device.type == "cuda" else DEFAULT_MAX_STREAMS_CPU
        if max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        self.max_streams = max_streams
        self.opts = options
        self._batch = BatchState(model, max_streams, options.noise or TorchNoise(options.seed), options)
        self._table = StreamTable(max_streams)
        self.last_step_s = 0.0
        self._thread: threading.Thread | None = None
        if options.start_thread:
            self._thread = threading.Thread(target=self._loop, name="vibevoice-engine", daemon=True)
            self._thread.start()

    # -- the device state and the slots, as they were read before the split (tests, bench) ----------------------
    @property
    def lm_cache(self) -> SlotKVCache:
        return self._batch.lm_cache

    @property
    def tts_cache(self) -> SlotKVCache:
        return self._batch.tts_cache

    @property
    def dec_cache(self) -> SlotPaddingCache:
        return self._batch.dec_cache

    @property
    def cond(self) -> torch.Tensor:
        return self._batch.cond

    @property
    def max_positions(self) -> int:
        return self._batch.max_positions

    @property
    def _active(self) -> dict[str, Stream]:
        return self._table.active

    @property
    def _free(self) -> list[int]:
        return self._table.free

    # -- the server's side (any thread) -------------------------------------------------------------------------
    def open(self, options: StreamOptions, output: Output) -> StreamHandle:
        if options.voice not in self._voices:
            raise StreamError("unknown_voice", f"unknown voice {options.voice!r} (voices: {', '.join(self.voices)})")
        if not MIN_CFG < options.cfg <= MAX_CFG:
            raise StreamError("bad_option", f"cfg {options.cfg} out of range ({MIN_CFG}, {MAX_CFG}]")
        if not MIN_STEPS <= options.steps <= MAX_STEPS:
            raise StreamError("bad_option", f"steps {options.steps} out of range [{MIN_STEPS}, {MAX_STEPS}]")

        def build(seq: int) -> Stream:
            return Stream(
                id=f"s{seq}",
                options=options,
                output=output,
                voice=self._voices[options.voice],
                seq=seq,
                text=IncrementalText(self.tokenizer),
                priority=options.priority,
            )

        return StreamHandle(self._table, self._table.add(build), self.opts)

    def stream_counts(self) -> tuple[int, int]:
        return self._table.counts()

    def close(self) -> None:
        self._table.stop()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for s in self._table.drain():
            self._fail(s, StreamError("engine_error", "the engine was closed"))

    # -- the engine thread ----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                if self._table.stopped():
                    return
                try:
                    worked = self.step()
                except Exception:  # a fault outside any stream's part: log it, keep serving
                    log.exception("engine step failed")
                    worked = False
                if not worked:
                    self._table.wait_for_work(self.opts.idle_wait_s)

    def step(self) -> bool:
        """One engine step: intake, then one text window where due and one speech frame for every stream that can
        speak. Returns False when there was nothing to do."""
        with torch.inference_mode():
            return self._step()

    def _step(self) -> bool:
        t0 = time.perf_counter()
        intake = self._table.take_intake()
        worked = self._intake(intake)
        running = [s for s, *_ in intake if not s.closed and s.progress.loaded]
        windows, speakers = self._due(running)
        if windows:
            worked = True
            _ok, _ = self._guarded("text", windows, self._batch.text_phase)
            speakers = [s for s in speakers if not s.closed]
        if speakers:
            worked = True
            ok_speakers, results = self._guarded("speech", speakers, self._speech_phase)
            for s, (pcm, eos) in zip(ok_speakers, results, strict=True):
                self._after_frame(s, pcm, eos)
        if worked:
            self.last_step_s = time.perf_counter() - t0
        return worked

    def _intake(self, intake: Sequence[tuple[Stream, list[str], bool, bool]]) -> bool:
        """Cancels, voice loads, new text and ends; True when any of them happened."""
        worked = False
        for s, texts, end_now, cancel in intake:
            p = s.progress
            if cancel:
                self._release(s, Done(cancelled=True, frames=p.frames, audio_ms=self._ms(p.frames)))
                worked = True
                continue
            if not p.loaded:
                worked = True
                if not self._load(s):
                    continue
            for text in texts:
                s.tokens.extend(s.text.push(text))
            if end_now:
                s.tokens.extend(s.text.finish())
                p.ended = True
                worked = True
                if not s.text.speakable:
                    self._release(s, StreamError("unspeakable", "the stream had no speakable text"))
                    continue
        return worked

    def _due(self, running: list[Stream]) -> tuple[list[tuple[Stream, list[int]]], list[Stream]]:
        """The text windows due now, and every stream that speaks a frame in this step."""
        windows: list[tuple[Stream, list[int]]] = []
        speakers: list[Stream] = []
        for s in running:
            if not can_speak(s):
                continue
            p = s.progress
            if p.in_window >= SPEECH_WINDOW:
                n = min(TEXT_WINDOW, len(s.tokens))
                window = [s.tokens.popleft() for _ in range(n)]
                if self._batch.positions(s.slot) + n + 1 > self.max_positions:  # type: ignore[arg-type]
                    self._release(s, Done(cancelled=False, frames=p.frames, audio_ms=self._ms(p.frames)))
                    continue
                p.in_window = 0
                if window:
                    windows.append((s, window))
                else:
                    p.windows += 1  # an empty window (text all spoken): speech goes on, as upstream's loop does
            speakers.append(s)
        return windows, speakers

    def _ms(self, frames: int) -> int:
        return round(frames * self.frame_samples * 1000 / self.sample_rate)

    def _load(self, s: Stream) -> bool:
        """A stream that just got its slot: its caches start from a copy of its voice prompt."""
        try:
            if self.opts.fault_hook:
                self.opts.fault_hook("load", [s.id])
            slot = s.slot
            assert slot is not None
            self._batch.load_slot(slot, s.voice)
            s.progress.loaded = True
            return True
        except Exception as e:
            log.exception("stream %s: loading its voice prompt failed", s.id)
            self._release(s, StreamError("engine_error", f"loading the voice prompt failed: {e}"))
            return False

    def _speech_phase(self, streams: Sequence[Stream]) -> list[tuple[bytes, bool]]:
        # `self._diffuse` is looked up here, each step, so a test can record the latents by replacing it
        return self._batch.speech_phase(streams, self._diffuse)

    def _diffuse(self, streams: Sequence[Stream], idx: list[int], pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        return self._batch.diffuse(streams, idx, pos, neg)

    def _guarded(
        self, phase: str, items: Sequence[Any], fn: Callable[[Sequence[Any]], list[Any]]
    ) -> tuple[list[Any], list[Any]]:
        """Runs a batched phase; if it throws, retries each stream alone so only the culprit fails."""
        try:
            return list(items), fn(items)
        except Exception as e:
            self._batch.abandon()
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
                self._batch.abandon()
                self._fail_item(phase, item, e)
        return ok, results

    def _fail_item(self, phase: str, item: Any, e: Exception) -> None:
        s = item[0] if isinstance(item, tuple) else item
        log.error("stream %s failed in the %s phase: %s", s.id, phase, e)
        self._release(s, StreamError("engine_error", f"model step failed ({phase}): {e}"))

    def _after_frame(self, s: Stream, pcm: bytes, eos: bool) -> None:
        p = s.progress
        try:
            s.output.audio(pcm)
        except Exception:  # the client's side is gone (e.g. its event loop closed): the stream stops, others go on
            log.exception("stream %s: delivering audio failed", s.id)
            self._release(s, Done(cancelled=True, frames=p.frames, audio_ms=self._ms(p.frames)))
            return
        p.frames += 1
        p.in_window += 1
        spoken_all = p.ended and not s.tokens
        if spoken_all:
            p.tail += 1
        done = (spoken_all and ((self.opts.eos and eos) or p.tail >= self.opts.max_tail_frames)) or (
            # the model's position limit ends the stream, as upstream's max length does
            self._batch.positions(s.slot) + 1 >= self.max_positions  # type: ignore[arg-type]
        )
        if done:
            self._release(s, Done(cancelled=False, frames=p.frames, audio_ms=self._ms(p.frames)))

    def _release(self, s: Stream, outcome: Done | StreamError) -> None:
        """The stream leaves: its slot, cache rows and state go, and the next waiting stream gets the slot."""
        if not self._table.release(s, self._batch.clear_slot):
            return
        self._batch.shrink()
        try:
            if isinstance(outcome, Done):
                s.output.finish(outcome)
            else:
                s.output.fail(outcome)
        except Exception:
            log.exception("stream %s: delivering its end failed", s.id)

    def _fail(self, s: Stream, error: StreamError) -> None:
        if self._table.mark_closed(s):
            s.output.fail(error)
