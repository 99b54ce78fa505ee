"""The server of docs/tts-protocol.md over a real socket, in front of the espeak-ng double (real speech)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

import numpy as np
import pytest

from doubles.espeak_double import FRAME_SAMPLES, EspeakDoubleEngine
from s2s_tts.server import DEFAULT_MAX_TEXT_CHARS
from ws_client import Json, Result, Stream, get_config, idle, running, wait_for

FRAME_BYTES = FRAME_SAMPLES * 2


def engine(max_streams: int = 8) -> EspeakDoubleEngine:
    # A short "model step", so a stream lasts long enough to overlap others and to be cancelled mid-way.
    return EspeakDoubleEngine(max_streams=max_streams, frame_delay_s=0.01)


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 60))


def test_config_names_the_engine_its_pid_voices_and_limits() -> None:
    async def scenario() -> None:
        async with running(engine(max_streams=3)) as address:
            config = await get_config(address)
            assert config == {
                "engine": "espeak-double",
                "pid": os.getpid(),
                "sample_rate": 24_000,
                "frame_samples": 3_200,
                "voices": EspeakDoubleEngine.voices,
                "default_voice": "en-Carter_man",
                "max_streams": 3,
                "defaults": {"cfg": 1.5, "steps": 5},
                "max_text_chars": DEFAULT_MAX_TEXT_CHARS,
                "streams": {"active": 0, "waiting": 0},
            }

    run(scenario())


def test_an_unknown_path_is_404() -> None:
    async def scenario() -> None:
        async with running(engine()) as address:
            import urllib.error
            import urllib.request

            with pytest.raises(urllib.error.HTTPError) as error:
                await asyncio.to_thread(urllib.request.urlopen, f"http://{address}/stream", None, 5)
            assert error.value.code == 404

    run(scenario())


def test_open_text_end_gives_speech_frames_then_done_and_close_1000() -> None:
    async def scenario() -> None:
        async with running(engine()) as address, Stream.connect(address) as stream:
            opened = await stream.open(voice="en-Emma_woman", cfg=2, steps=7)
            assert opened == {"type": "opened", "stream": opened["stream"], "queued": False}
            await stream.send(type="text", text="Hello there, this is a test of the speech server.")
            await stream.send(type="end")
            result = await stream.until_closed()
            assert result.close_code == 1000
            assert result.last["type"] == "done"
            assert result.last["cancelled"] is False
            assert result.last["frames"] == len(result.frames) > 5
            assert result.last["audio_ms"] == round(len(result.frames) * FRAME_SAMPLES / 24)
            assert all(len(frame) == FRAME_BYTES for frame in result.frames)
            audio = np.frombuffer(b"".join(result.frames), dtype="<i2").astype(np.float64)
            assert np.sqrt(np.mean(audio**2)) > 300, "speech, not silence"
            await wait_for(lambda: idle(address), what="the stream to be freed")

    run(scenario())


def test_audio_of_streamed_text_arrives_before_end_and_the_stream_waits_for_more_text() -> None:
    async def scenario() -> None:
        async with running(engine()) as address, Stream.connect(address) as stream:
            await stream.open()
            # Four whole words and a partial fifth: less than a window, so nothing is spoken yet.
            await stream.send(type="text", text="one two three four fi")
            with pytest.raises(TimeoutError):
                await stream.next_event(timeout=0.4)
            await stream.send(type="text", text="ve and more ")
            first = await stream.next_frame()
            assert len(first) == FRAME_BYTES
            # Speech catches up with the text: the stream waits (no done) instead of finishing.
            while True:
                try:
                    event = await stream.next_event(timeout=0.6)
                except TimeoutError:
                    break
                assert isinstance(event, bytes), f"the stream finished before end: {event}"
            spoken = len(stream.result.frames)
            await stream.send(type="text", text="words after a pause")
            await stream.send(type="end")
            result = await stream.until_closed()
            assert result.last["type"] == "done"
            assert len(result.frames) > spoken, "the text after the pause was spoken too"

    run(scenario())


def test_cancel_mid_stream_answers_done_cancelled_and_frees_the_slot() -> None:
    async def scenario() -> None:
        async with running(engine()) as address, Stream.connect(address) as stream:
            await stream.open()
            await stream.send(type="text", text="This is a long answer that would take many frames to speak. " * 3)
            await stream.send(type="end")
            await stream.next_frame()
            await stream.send(type="cancel")
            await stream.send(type="text", text="ignored after cancel")
            result = await stream.until_closed()
            assert result.close_code == 1000
            assert result.last == {
                "type": "done",
                "cancelled": True,
                "frames": result.last["frames"],
                "audio_ms": result.last["audio_ms"],
            }
            assert result.last["frames"] < 40
            await wait_for(lambda: idle(address), what="the cancelled stream to be freed")

    run(scenario())


def test_a_client_that_vanishes_mid_stream_frees_its_stream() -> None:
    async def scenario() -> None:
        async with running(engine()) as address:
            async with Stream.connect(address) as stream:
                await stream.open()
                await stream.send(type="text", text="A long answer that the client will not wait for. " * 4)
                await stream.next_frame()
                assert (await get_config(address))["streams"]["active"] == 1
            # The connection is gone without cancel or end.
            await wait_for(lambda: idle(address), what="the abandoned stream to be freed")
            # And the server goes on serving.
            async with Stream.connect(address) as again:
                await again.open()
                await again.send(type="text", text="Still here.")
                await again.send(type="end")
                assert (await again.until_closed()).last["type"] == "done"

    run(scenario())


BAD = [
    pytest.param(["not json"], "bad_message", id="not-json"),
    pytest.param(['["open"]'], "bad_message", id="not-an-object"),
    pytest.param(['{"type":"speak"}'], "bad_message", id="unknown-type"),
    pytest.param(['{"type":"text","text":"hi"}'], "bad_message", id="text-before-open"),
    pytest.param(['{"type":"open"}', '{"type":"open"}'], "bad_message", id="open-twice"),
    pytest.param(['{"type":"open","cfg":"high"}'], "bad_message", id="cfg-not-a-number"),
    pytest.param(['{"type":"open","steps":true}'], "bad_message", id="steps-a-bool"),
    pytest.param(['{"type":"open","priority":"urgent"}'], "bad_message", id="unknown-priority"),
    pytest.param(['{"type":"open"}', '{"type":"text","text":5}'], "bad_message", id="text-not-a-string"),
    pytest.param([b"\x00\x01"], "bad_message", id="binary-frame"),
    pytest.param(['{"type":"open","cfg":99}'], "bad_option", id="cfg-out-of-range"),
    pytest.param(['{"type":"open","steps":0}'], "bad_option", id="steps-out-of-range"),
    pytest.param(['{"type":"open","voice":"nobody"}'], "unknown_voice", id="unknown-voice"),
    pytest.param(
        ['{"type":"open"}', '{"type":"end"}', '{"type":"text","text":"late"}'], "text_after_end", id="after-end"
    ),
    pytest.param(
        ['{"type":"open"}', '{"type":"text","text":"?! ..."}', '{"type":"end"}'], "unspeakable", id="unspeakable"
    ),
    pytest.param(['{"type":"open"}', '{"type":"end"}'], "unspeakable", id="no-text-at-all"),
    pytest.param(
        ['{"type":"open"}', '{"type":"text","text":"' + "a" * (DEFAULT_MAX_TEXT_CHARS + 1) + '"}'],
        "text_too_long",
        id="text-too-long",
    ),
    pytest.param(
        ['{"type":"open"}', '{"type":"text","text":"one [[fail]] two three four five "}'],
        "engine_error",
        id="engine-step-fails",
    ),
]


@pytest.mark.parametrize(("frames", "code"), BAD)
def test_every_error_is_named_closes_the_stream_and_leaves_nothing_behind(frames: list[str | bytes], code: str) -> None:
    async def scenario() -> None:
        async with running(engine()) as address:
            async with Stream.connect(address) as stream:
                for frame in frames:
                    await stream.ws.send(frame)
                result = await stream.until_closed()
            errors = [m for m in result.messages if m["type"] == "error"]
            assert errors == [{"type": "error", "code": code, "message": errors[0]["message"]}]
            assert errors[0]["message"]
            assert result.last["type"] == "error"
            assert result.close_code == (1011 if code == "engine_error" else 1008)
            await wait_for(lambda: idle(address), what="the failed stream to be freed")

    run(scenario())


def test_a_failing_stream_does_not_touch_the_others() -> None:
    async def scenario() -> None:
        async with running(engine()) as address, Stream.connect(address) as good, Stream.connect(address) as bad:
            await good.open()
            await bad.open()
            await good.send(type="text", text="The good stream keeps talking while the other one fails. ")
            await bad.send(type="text", text="This one [[fail]] fails right now. ")
            await good.send(type="end")
            bad_result, good_result = await asyncio.gather(bad.until_closed(), good.until_closed())
            assert bad_result.last["code"] == "engine_error"
            assert good_result.last["type"] == "done"
            assert len(good_result.frames) > 5

    run(scenario())


def test_three_streams_are_spoken_at_once_nothing_is_busy_or_queued() -> None:
    async def scenario() -> None:
        async with running(engine()) as address:

            async def one(text: str) -> tuple[Json, Result]:
                async with Stream.connect(address) as stream:
                    opened = await stream.open()
                    await stream.send(type="text", text=text)
                    await stream.send(type="end")
                    return opened, await stream.until_closed()

            results = await asyncio.gather(
                *(one(f"Stream number {n} says a sentence of some length.") for n in (1, 2, 3))
            )
            assert all(opened["queued"] is False for opened, _ in results)
            assert all(result.last["type"] == "done" and result.close_code == 1000 for _, result in results)
            # Every stream spoke its first frame before any of them finished: none waited for another's utterance.
            assert max(r.frame_times[0] for _, r in results) < min(r.frame_times[-1] for _, r in results)

    run(scenario())


async def _when_the_slot_frees(first: Stream, spec: Stream, conf: Stream) -> tuple[Result, Result]:
    """Two waiting streams get their text, the stream holding the only slot is cancelled: both results."""
    for stream in (spec, conf):
        await stream.send(type="text", text="Some words to say once my turn comes.")
        await stream.send(type="end")
    await first.send(type="cancel")
    await first.until_closed()
    spec_result, conf_result = await asyncio.gather(spec.until_closed(), conf.until_closed())
    return spec_result, conf_result


def test_beyond_max_streams_streams_wait_confirmed_before_speculative() -> None:
    async def scenario() -> None:
        async with (
            running(engine(max_streams=1)) as address,
            Stream.connect(address) as first,
            Stream.connect(address) as spec,
            Stream.connect(address) as conf,
        ):
            assert (await first.open())["queued"] is False
            assert (await spec.open(priority="speculative"))["queued"] is True
            assert (await conf.open())["queued"] is True
            assert (await get_config(address))["streams"] == {"active": 1, "waiting": 2}
            spec_result, conf_result = await _when_the_slot_frees(first, spec, conf)
            # The confirmed stream, opened later, went first; the speculative one started when it finished.
            assert conf_result.last["type"] == spec_result.last["type"] == "done"
            assert spec_result.frame_times[0] > conf_result.frame_times[-1]

    run(scenario())


def test_a_promoted_stream_goes_before_a_later_confirmed_one() -> None:
    async def scenario() -> None:
        async with (
            running(engine(max_streams=1)) as address,
            Stream.connect(address) as first,
            Stream.connect(address) as spec,
            Stream.connect(address) as conf,
        ):
            await first.open()
            await spec.open(priority="speculative")
            await conf.open()
            await spec.send(type="promote")
            spec_result, conf_result = await _when_the_slot_frees(first, spec, conf)
            assert conf_result.frame_times[0] > spec_result.frame_times[-1]

    run(scenario())
