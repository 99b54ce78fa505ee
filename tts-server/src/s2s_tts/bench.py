"""The engine's bench: `python -m s2s_tts.bench [--size real|tiny] [--device cpu|cuda] [--dtype float32|bfloat16]`.

Builds the model from a config dict with random weights (the real architecture by default: hidden 896, 4 + 20
layers, vocab 151,936, the real decoder and head), runs the real engine on it and prints one JSON object per line:
- `tts_step`: time per engine step (one 133 ms speech frame for every stream, text windows included as they fall
  due) at 1, 2, 4, 8 streams: median, and the ratio to one stream (the figure that carries over to a GPU);
- `tts_batching`: the TTS stack's speech step for B streams whose caches differ in length, as one call with
  per-row positions (what the engine does) against one call per stream;
- `tts_first_audio`: first text window -> first audio (one step with a window, on an idle engine);
- `tts_streamed_vs_clause`: first audio when the text is pushed word by word as an LLM writes it, against waiting
  for the first clause and sending it as one request, on the same engine (its own thread, as the server runs it).
Random weights time the work; they do not speak."""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from typing import Any

import torch

from .engine_api import Done, StreamError, StreamOptions
from .tiny_model import real_config, tiny_config, tiny_tokenizer
from .vibevoice.engine import EngineOptions, VibeVoiceEngine
from .vibevoice.model import SPEECH_TYPE
from .vibevoice.random_model import random_model, random_voice

LONG_TEXT = (
    "Sure, I can help with that. The weather today looks sunny and warm, with a light breeze from the west, "
    "and it should stay that way until the evening, when a few clouds may come in from the sea. "
) * 6
FRAME_MS = 3200 / 24000  # one speech frame, in seconds
CLAUSE_TEXT = (
    "The weather today looks sunny and warm, with a light breeze from the west. It stays that way until evening."
)


class _Sink:
    """Counts a stream's audio and remembers when the first frame came."""

    def __init__(self) -> None:
        self.frames = 0
        self.first_at: float | None = None
        self.ended = threading.Event()
        self.first = threading.Event()
        self.error: StreamError | None = None

    def audio(self, pcm16le: bytes) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
            self.first.set()
        self.frames += 1

    def finish(self, done: Done) -> None:
        self.ended.set()

    def fail(self, error: StreamError) -> None:
        self.error = error
        self.ended.set()


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def _bench_steps(
    make: Any, opts: StreamOptions, counts: list[int], frames: int, base: dict[str, Any]
) -> VibeVoiceEngine:
    """One engine per stream count (same model), stepped in turn: a machine whose load changes over the run
    (shared CPUs) slows every count alike, so the ratios hold even when the absolute times wander."""
    engines = {b: make(b) for b in counts}
    sinks: dict[int, list[_Sink]] = {}
    handles = {}
    for b, eng in engines.items():
        sinks[b] = [_Sink() for _ in range(b)]
        handles[b] = [eng.open(opts, s) for s in sinks[b]]
        for h in handles[b]:
            h.push_text(LONG_TEXT)
            h.end()
    times: dict[int, list[float]] = {b: [] for b in counts}
    for i in range(frames + 2):  # two warm-up rounds (prompt loads, first windows)
        for b, eng in engines.items():
            t0 = time.perf_counter()
            eng.step()
            if i >= 2:
                times[b].append((time.perf_counter() - t0) * 1000)
    for b, eng in engines.items():
        for h in handles[b]:
            h.cancel()
        eng.step()
        assert all(s.error is None for s in sinks[b]), [s.error for s in sinks[b]]
    one = statistics.median(times[counts[0]])
    one_min = min(times[counts[0]])
    for b in counts:
        med = statistics.median(times[b])
        _emit(
            {
                **base,
                "bench": "tts_step",
                "streams": b,
                "frames": frames,
                "median_ms": round(med, 1),
                "min_ms": round(min(times[b]), 1),
                "mean_ms": round(statistics.fmean(times[b]), 1),
                "ratio_to_1": round(med / one, 2),
                "min_ratio_to_1": round(min(times[b]) / one_min, 2),
                "ms_per_stream": round(med / b, 1),
                "realtime_factor": round(med / (1000 * FRAME_MS), 2),
            }
        )
    for b in counts[:-1]:
        engines[b].close()
    return engines[counts[-1]]


def _bench_batching(eng: VibeVoiceEngine, b: int, reps: int, base: dict[str, Any]) -> None:
    """B streams, caches of B different lengths: one TTS-stack call on all 2B rows with per-row positions (the
    engine's way) against one call per stream (what grouping by length comes to when every length differs)."""
    m = eng.model
    cache = eng.tts_cache
    for s in range(b):
        cache.lengths[2 * s] = cache.lengths[2 * s + 1] = 150 + 37 * s
    x = torch.randn(2 * b, 1, m.cfg.lm.hidden_size, device=m.device, dtype=m.dtype)
    rows = list(range(2 * b))

    def one_call() -> None:
        m.tts_lm(x, SPEECH_TYPE, cache, rows)
        cache.abandon()

    def per_stream() -> None:
        for s in range(b):
            m.tts_lm(x[2 * s : 2 * s + 2], SPEECH_TYPE, cache, [2 * s, 2 * s + 1])
            cache.abandon()

    def timed(fn: Any) -> float:
        fn()
        out = []
        for _ in range(reps):
            if m.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if m.device.type == "cuda":
                torch.cuda.synchronize()
            out.append((time.perf_counter() - t0) * 1000)
        return statistics.median(out)

    with torch.inference_mode():
        batched, single = timed(one_call), timed(per_stream)
    for s in range(b):
        cache.lengths[2 * s] = cache.lengths[2 * s + 1] = 0
    _emit(
        {
            **base,
            "bench": "tts_batching",
            "streams": b,
            "per_row_positions_ms": round(batched, 1),
            "per_stream_calls_ms": round(single, 1),
        }
    )


def _bench_first_audio(eng: VibeVoiceEngine, opts: StreamOptions, reps: int, base: dict[str, Any]) -> None:
    """The step that runs a stream's first text window and gives its first frame, on an otherwise idle engine.
    The voice prompt is loaded in the step before (on a server that overlaps the LLM's first tokens)."""
    first_words = CLAUSE_TEXT.split(".")[0] + ". The"  # more than one window of committed tokens
    times = []
    for _ in range(reps + 1):  # the first run warms up
        sink = _Sink()
        h = eng.open(opts, sink)
        eng.step()
        h.push_text(first_words)
        t0 = time.perf_counter()
        eng.step()
        assert sink.first_at is not None
        times.append((sink.first_at - t0) * 1000)
        h.cancel()
        eng.step()
    _emit(
        {
            **base,
            "bench": "tts_first_audio",
            "first_window_to_audio_ms": round(statistics.median(times[1:]), 1),
            "runs": reps,
        }
    )


def _bench_streamed_vs_clause(
    eng: VibeVoiceEngine, opts: StreamOptions, word_ms: float, reps: int, base: dict[str, Any]
) -> None:
    words = CLAUSE_TEXT.split(" ")
    clause_words = next(i for i, w in enumerate(words) if w.endswith(".")) + 1

    def llm(push: Any, until: int) -> float:
        start = time.perf_counter()
        for i, w in enumerate(words[:until]):
            delay = start + i * word_ms / 1000 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            push(w, i)
        return start

    def streamed() -> float:
        """The stream opens with the answer and takes each word as the LLM writes it."""
        sink = _Sink()
        h = eng.open(opts, sink)
        start = llm(lambda w, i: h.push_text(w if i == 0 else " " + w), len(words))
        h.end()
        sink.first.wait(600)
        h.cancel()
        sink.ended.wait(600)
        return ((sink.first_at or float("nan")) - start) * 1000

    def per_clause() -> float:
        """One request per clause: the first clause is sent, whole, once its last word is in."""
        sink = _Sink()
        clause: list[str] = []
        start = llm(lambda w, i: clause.append(w), clause_words)
        h = eng.open(opts, sink)
        h.push_text(" ".join(clause))
        h.end()
        sink.first.wait(600)
        h.cancel()
        sink.ended.wait(600)
        return ((sink.first_at or float("nan")) - start) * 1000

    a = [streamed() for _ in range(reps)]
    b = [per_clause() for _ in range(reps)]
    _emit(
        {
            **base,
            "bench": "tts_streamed_vs_clause",
            "word_interval_ms": word_ms,
            "clause_words": clause_words,
            "runs": reps,
            "streamed_first_audio_ms": round(statistics.median(a), 1),
            "clause_request_first_audio_ms": round(statistics.median(b), 1),
            "clause_ready_ms": round((clause_words - 1) * word_ms, 1),
        }
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m s2s_tts.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=["real", "tiny"], default="real")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--steps", type=int, default=5, help="diffusion steps (the demo's default 5)")
    ap.add_argument("--cfg", type=float, default=1.5)
    ap.add_argument("--streams", default="1,2,4,8", help="stream counts for the per-step figures")
    ap.add_argument("--frames", type=int, default=0, help="timed steps per stream count (default: 6 real, 30 tiny)")
    ap.add_argument("--word-ms", type=float, default=60.0, help="the simulated LLM's interval between words")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    device = torch.device(args.device)
    counts = [int(x) for x in args.streams.split(",")]
    frames = args.frames or (6 if args.size == "real" else 30)
    raw = real_config() if args.size == "real" else tiny_config()
    t0 = time.perf_counter()
    model = random_model(raw, seed=0, device=device, dtype=dtype)
    init_s = time.perf_counter() - t0
    # prompt lengths of the official en-Mike_man preset (49 text, 148 TTS positions)
    voice = random_voice(model, lm_len=49, tts_len=148, seed=1)
    tok = tiny_tokenizer()
    base = {"size": args.size, "device": str(device), "dtype": args.dtype, "steps": args.steps, "cfg": args.cfg}
    _emit(
        {
            **base,
            "bench": "tts_setup",
            "params": sum(p.numel() for p in model.parameters()),
            "init_s": round(init_s, 1),
            "threads": torch.get_num_threads(),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        }
    )
    opts = StreamOptions(voice="bench", cfg=args.cfg, steps=args.steps)

    def make(max_streams: int) -> VibeVoiceEngine:
        return VibeVoiceEngine.from_parts(
            model,
            tok,
            {"bench": voice},
            max_streams=max_streams,
            options=EngineOptions(eos=False, max_tail_frames=10_000, start_thread=False, seed=0),
        )

    with torch.inference_mode():
        eng = make(max(counts))
        _bench_first_audio(eng, opts, 3, base)
        eng.close()
        eng = _bench_steps(make, opts, counts, frames, base)
    _bench_batching(eng, max(counts), 5, base)
    eng.close()
    threaded = VibeVoiceEngine.from_parts(
        model, tok, {"bench": voice}, max_streams=2, options=EngineOptions(eos=False, max_tail_frames=1, seed=0)
    )
    try:
        _bench_streamed_vs_clause(threaded, opts, args.word_ms, 3, base)
    finally:
        threaded.close()


if __name__ == "__main__":
    main()
