"""The batched streaming engine on a tiny random-weight model: streaming text input, batching, cancel, queueing,
failure isolation and bad input. The tests drive `step()` themselves (no thread) unless they test the thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from doubles.outputs import CollectingOutput, FrameNoise
from s2s_tts.engine_api import Done, StreamError, StreamOptions, StreamOutput
from s2s_tts.tiny_model import tiny_config, tiny_tokenizer
from s2s_tts.vibevoice.engine import SPEECH_WINDOW, TEXT_WINDOW, EngineOptions, VibeVoiceEngine
from s2s_tts.vibevoice.model import RealtimeModel
from s2s_tts.vibevoice.prompt import VoicePrompt
from s2s_tts.vibevoice.random_model import random_model, random_voice

FRAME_BYTES = 3200 * 2
MATCH_LSB = 164  # 0.5% of full scale (see test_four_streams_in_one_step_match_each_alone)
TAIL = SPEECH_WINDOW  # with EOS off, a stream finishes one window after its last text window


@pytest.fixture(scope="module")
def model() -> RealtimeModel:
    return random_model(tiny_config(), seed=0)


@pytest.fixture(scope="module")
def voices(model: RealtimeModel) -> dict[str, VoicePrompt]:
    return {"a": random_voice(model, 10, 16, seed=1), "b": random_voice(model, 13, 25, seed=2)}


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return tiny_tokenizer()


@pytest.fixture
def make(
    model: RealtimeModel, voices: dict[str, VoicePrompt], tok: Tokenizer
) -> Iterator[Callable[..., VibeVoiceEngine]]:
    engines: list[VibeVoiceEngine] = []

    def build(max_streams: int = 4, **kw: object) -> VibeVoiceEngine:
        opts = {"eos": False, "max_tail_frames": TAIL, "start_thread": False, "noise": FrameNoise(), **kw}
        eng = VibeVoiceEngine.from_parts(model, tok, voices, max_streams=max_streams, options=EngineOptions(**opts))  # type: ignore[arg-type]
        engines.append(eng)
        return eng

    yield build
    for e in engines:
        e.close()


def opts(voice: str = "a", cfg: float = 1.5, steps: int = 5, priority: str = "confirmed") -> StreamOptions:
    return StreamOptions(voice=voice, cfg=cfg, steps=steps, priority=priority)  # type: ignore[arg-type]


def drain(eng: VibeVoiceEngine, limit: int = 500) -> int:
    n = 0
    while eng.step():
        n += 1
        assert n < limit, "the engine never went idle"
    return n


def n_tokens(tok, text: str) -> int:  # type: ignore[no-untyped-def]
    return len(tok.encode(text.strip() + "\n", add_special_tokens=False).ids)


def windows_for(tok, text: str) -> int:  # type: ignore[no-untyped-def]
    return -(-n_tokens(tok, text) // TEXT_WINDOW)


def pcm(out: CollectingOutput) -> np.ndarray:
    return np.frombuffer(b"".join(out.chunks), dtype=np.int16)


FIRST = "Hello there, how are you today? I am"  # well over one window before the last word
REST = " fine, thank you very much for asking."


def test_speech_starts_after_the_first_window_waits_when_caught_up_and_finishes_after_end(make, tok) -> None:  # type: ignore[no-untyped-def]
    eng = make()
    out = CollectingOutput()
    h = eng.open(opts(), out)
    assert not h.queued
    h.push_text(FIRST)
    assert eng.step()
    assert len(out.chunks) == 1 and all(len(c) == FRAME_BYTES for c in out.chunks)  # first audio, before `end`
    drain(eng)
    # committed tokens (all words but the held-back last one) make whole windows; it waits for the rest
    committed = len(tok.encode(FIRST.rsplit(" ", 1)[0], add_special_tokens=False).ids)
    assert committed >= TEXT_WINDOW
    assert len(out.chunks) == (committed // TEXT_WINDOW) * SPEECH_WINDOW
    assert out.done is None and not eng.step()  # caught up: waits, does not finish
    h.push_text(REST)
    h.end()
    drain(eng)
    assert out.error is None and out.done is not None
    frames = windows_for(tok, FIRST + REST) * SPEECH_WINDOW
    assert out.done == Done(cancelled=False, frames=frames, audio_ms=round(frames * 3200 / 24))
    assert len(out.chunks) == frames
    assert eng.stream_counts() == (0, 0)


def test_short_text_speaks_at_end(make) -> None:  # type: ignore[no-untyped-def]
    eng = make()
    out = CollectingOutput()
    h = eng.open(opts(), out)
    h.push_text("Hi")
    assert not eng.step() or not out.chunks
    drain(eng)
    assert out.chunks == []
    h.end()
    drain(eng)
    assert out.done is not None and out.done.frames == SPEECH_WINDOW


def test_streamed_text_gives_the_same_audio_as_the_whole_text(make) -> None:  # type: ignore[no-untyped-def]
    whole = make()
    a = CollectingOutput()
    h = whole.open(opts(), a)
    h.push_text(FIRST + REST)
    h.end()
    drain(whole)
    streamed = make()
    b = CollectingOutput()
    h = streamed.open(opts(), b)
    text = FIRST + REST
    for i in range(0, len(text), 3):
        h.push_text(text[i : i + 3])
        streamed.step()
    h.end()
    drain(streamed)
    assert a.done == b.done
    np.testing.assert_array_equal(pcm(a), pcm(b))


def test_four_streams_in_one_step_match_each_alone(make) -> None:  # type: ignore[no-untyped-def]
    """Different voices (prompt lengths), texts, cfg, steps, and staggered starts: caches of different lengths in
    every batched call. Each stream's audio equals its audio alone, given the same noise."""
    specs = [
        (opts("a"), "One two three four five six seven eight nine ten eleven."),
        (opts("b", cfg=2.0), "Short answer, then a bit more text to say."),
        (opts("a", steps=3), "A third stream with its own words and its own pace today."),
        (opts("b"), "Fourth."),
    ]
    alone = []
    for o, text in specs:
        eng = make()
        out = CollectingOutput()
        h = eng.open(o, out)
        h.push_text(text)
        h.end()
        drain(eng)
        alone.append(out)
    eng = make(max_streams=4)
    outs = [CollectingOutput() for _ in specs]
    handles = []
    for i, ((o, text), out) in enumerate(zip(specs, outs, strict=True)):
        handles.append(eng.open(o, out))
        handles[-1].push_text(text)
        handles[-1].end()
        for _ in range(i):  # staggered: each joins while the others are mid-stream
            eng.step()
    batched_steps = drain(eng)
    assert batched_steps < sum(x.done.frames for x in alone if x.done is not None)
    assert len({pcm(o).tobytes() for o in alone}) == 4  # four different utterances
    for want, got in zip(alone, outs, strict=True):
        assert got.done == want.done
        assert np.abs(pcm(got)).max() > 100
        # Float rounding only: batch-size-dependent kernels differ by ~2e-4 of the signal after 30 autoregressive
        # frames. The tiny model speaks at several times full scale (measured: at most 60 LSB apart); a batching
        # mistake (a wrong row, cache or position) differs by thousands.
        np.testing.assert_allclose(pcm(got).astype(np.int32), pcm(want).astype(np.int32), atol=MATCH_LSB)


def test_cancel_mid_stream_frees_the_slot_and_memory(make) -> None:  # type: ignore[no-untyped-def]
    eng = make(max_streams=1)
    first, second = CollectingOutput(), CollectingOutput()
    h1 = eng.open(opts(), first)
    h1.push_text(FIRST * 20)  # long: its caches grow past the initial capacity
    for _ in range(8):
        eng.step()
    h2 = eng.open(opts(), second)
    assert h2.queued and eng.stream_counts() == (1, 1)
    while eng.tts_cache.capacity <= 256:
        assert eng.step()
    grown = eng.tts_cache.bytes()
    frames_before = len(first.chunks)
    h1.cancel()
    eng.step()  # the next step stops it
    assert first.done is not None and first.done.cancelled and first.done.frames == frames_before
    assert len(first.chunks) == frames_before
    # the slot went to the waiting stream; the cancelled stream's rows and state are gone
    assert not h2.queued and eng.stream_counts() == (1, 0)
    assert list(eng._active) == [h2.id] and eng._active[h2.id].slot == 0
    assert eng.tts_cache.bytes() < grown and eng.tts_cache.capacity == 256
    stream1 = h1._stream
    assert stream1.slot is None and not stream1.tokens and stream1.closed
    h2.cancel()
    eng.step()
    assert eng.stream_counts() == (0, 0) and eng._free == [0]
    assert eng.lm_cache.lengths == [0] and eng.tts_cache.lengths == [0, 0]
    h1.cancel()  # a second cancel is harmless
    assert first.done.cancelled


def test_cancel_while_queued_finishes_at_once(make) -> None:  # type: ignore[no-untyped-def]
    eng = make(max_streams=1)
    eng.open(opts(), CollectingOutput())
    out = CollectingOutput()
    h = eng.open(opts(), out)
    h.cancel()
    assert out.done == Done(cancelled=True, frames=0, audio_ms=0)
    assert eng.stream_counts() == (1, 0)


def test_queue_confirmed_before_speculative_then_in_order(make) -> None:  # type: ignore[no-untyped-def]
    eng = make(max_streams=1)
    outs = {name: CollectingOutput() for name in "ABCD"}
    handles = {
        "A": eng.open(opts(), outs["A"]),
        "B": eng.open(opts(priority="speculative"), outs["B"]),
        "C": eng.open(opts(priority="speculative"), outs["C"]),
        "D": eng.open(opts(), outs["D"]),
    }
    assert [handles[n].queued for n in "ABCD"] == [False, True, True, True]
    handles["C"].promote()
    order = []
    for name in "ABCD":
        handles[name].push_text("Hi there.")
        handles[name].end()
    while eng.step() or any(o.done is None for o in outs.values()):
        for name, h in handles.items():
            if not h.queued and name not in order:
                order.append(name)
    assert order == ["A", "C", "D", "B"]  # C promoted (opened before D); B stays speculative


def test_a_failing_stream_fails_alone(make) -> None:  # type: ignore[no-untyped-def]
    bad: dict[str, str] = {}

    def hook(phase: str, ids: list[str]) -> None:
        if bad.get(phase) in ids:
            raise RuntimeError(f"injected fault in {phase}")

    for phase in ("load", "text", "speech"):
        eng = make(fault_hook=hook)
        outs = [CollectingOutput() for _ in range(3)]
        hs = [eng.open(opts(), o) for o in outs]
        bad.clear()
        bad[phase] = hs[1].id
        for h in hs:
            h.push_text("Hello there, how are you today?")
            h.end()
        drain(eng)
        assert outs[1].error is not None and outs[1].error.code == "engine_error", phase
        assert phase in outs[1].error.message
        for o in (outs[0], outs[2]):
            assert o.error is None and o.done is not None and not o.done.cancelled, phase
        np.testing.assert_array_equal(pcm(outs[0]), pcm(outs[2]))  # same text, same voice, same noise
        assert eng.stream_counts() == (0, 0) and sorted(eng._free) == [0, 1, 2, 3]


def test_bad_input(make) -> None:  # type: ignore[no-untyped-def]
    eng = make(max_text_chars=50)
    with pytest.raises(StreamError) as e:
        eng.open(opts("nobody"), CollectingOutput())
    assert e.value.code == "unknown_voice"
    for bad in (opts(cfg=0.0), opts(cfg=11.0), opts(steps=0), opts(steps=101)):
        with pytest.raises(StreamError) as e:
            eng.open(bad, CollectingOutput())
        assert e.value.code == "bad_option"
    for text in ("", "   ", "?! ... --"):
        out = CollectingOutput()
        h = eng.open(opts(), out)
        h.push_text(text)
        h.end()
        drain(eng)
        assert out.error is not None and out.error.code == "unspeakable" and out.chunks == []
        with pytest.raises(StreamError) as e:
            h.push_text("more")
        assert e.value.code == "text_after_end"
    out = CollectingOutput()
    h = eng.open(opts(), out)
    h.push_text("x" * 40)
    with pytest.raises(StreamError) as e:
        h.push_text("y" * 20)
    assert e.value.code == "text_too_long"
    h.cancel()
    drain(eng)
    assert eng.stream_counts() == (0, 0)


def test_end_of_speech_classifier_ends_the_stream_once_the_text_is_spoken(make, model: RealtimeModel, tok) -> None:  # type: ignore[no-untyped-def]
    eng = make(eos=True)
    with torch.no_grad():
        saved = model.eos.fc2.bias.clone()
        model.eos.fc2.bias.fill_(50.0)  # always "end"
    try:
        out = CollectingOutput()
        h = eng.open(opts(), out)
        h.push_text(FIRST)
        drain(eng)
        assert out.done is None and len(out.chunks) > 0  # EOS before `end` does not cut the text short
        h.push_text(REST)
        h.end()
        drain(eng)
        assert out.done is not None
        assert out.done.frames == (windows_for(tok, FIRST + REST) - 1) * SPEECH_WINDOW + 1
    finally:
        with torch.no_grad():
            model.eos.fc2.bias.copy_(saved)


def test_engine_from_a_model_folder_with_its_thread(tiny_dir: Path) -> None:
    eng = VibeVoiceEngine(
        tiny_dir, "cpu", "float32", max_streams=2, options=EngineOptions(eos=False, max_tail_frames=TAIL)
    )
    try:
        assert eng.voices == ["en-Tiny_man", "en-Tiny_woman"] and eng.default_voice == "en-Tiny_man"
        assert (eng.sample_rate, eng.frame_samples, eng.max_streams) == (24000, 3200, 2)

        async def speak() -> list[object]:
            out = StreamOutput(asyncio.get_running_loop())
            h = eng.open(StreamOptions(voice="en-Tiny_woman", cfg=1.5, steps=2), out)
            for word in ["Hello", "there,", "how", "are", "you", "today?"]:
                h.push_text(word + " ")
                await asyncio.sleep(0.001)
            h.end()
            events: list[object] = []
            while not events or isinstance(events[-1], bytes):
                events.append(await asyncio.wait_for(out.events.get(), 60))
            return events

        events = asyncio.run(speak())
        done = events[-1]
        assert isinstance(done, Done) and not done.cancelled
        assert done.frames == len(events) - 1 and all(len(e) == FRAME_BYTES for e in events[:-1])  # type: ignore[arg-type]
    finally:
        eng.close()
    with pytest.raises(StreamError):
        eng.open(StreamOptions(voice="en-Tiny_woman", cfg=1.5, steps=2), CollectingOutput())


def test_bfloat16_engine_speaks(tiny_dir: Path) -> None:
    eng = VibeVoiceEngine(
        tiny_dir,
        "cpu",
        "bfloat16",
        max_streams=2,
        options=EngineOptions(eos=False, max_tail_frames=TAIL, start_thread=False, noise=FrameNoise()),
    )
    try:
        assert eng.model.dtype == torch.bfloat16
        outs = [CollectingOutput(), CollectingOutput()]
        for out, voice in zip(outs, ("en-Tiny_man", "en-Tiny_woman"), strict=True):
            h = eng.open(StreamOptions(voice=voice, cfg=1.5, steps=5), out)
            h.push_text("Hello there, how are you today?")
            h.end()
        drain(eng)
        for out in outs:
            assert out.error is None and out.done is not None and out.done.frames > 0
            assert np.abs(pcm(out)).max() > 0
    finally:
        eng.close()


class VanishedOutput(CollectingOutput):
    """A client whose side is gone: delivering audio raises (as StreamOutput does on a closed event loop)."""

    def audio(self, pcm16le: bytes) -> None:
        raise RuntimeError("Event loop is closed")


def test_a_vanished_client_stops_its_stream_only(make) -> None:  # type: ignore[no-untyped-def]
    eng = make()
    gone, fine = VanishedOutput(), CollectingOutput()
    for out in (gone, fine):
        h = eng.open(opts(), out)
        h.push_text("Hello there, how are you today?")
        h.end()
    drain(eng)
    assert gone.done is not None and gone.done.cancelled and gone.chunks == []
    assert fine.done is not None and not fine.done.cancelled and len(fine.chunks) == fine.done.frames
    assert eng.stream_counts() == (0, 0) and sorted(eng._free) == [0, 1, 2, 3]
