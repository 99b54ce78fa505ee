"""The server against a tiny scripted engine: faults of the engine stay in their stream."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from doubles.scripted_engine import ScriptedEngine
from ws_client import Stream, idle, running, wait_for


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 30))


def test_frames_follow_the_text_in_order_and_done_counts_them() -> None:
    async def scenario() -> None:
        async with running(ScriptedEngine()) as address, Stream.connect(address) as stream:
            await stream.open(voice="b")
            await stream.send(type="text", text="a bb ccc")
            await stream.send(type="end")
            result = await stream.until_closed()
            assert [frame[0] for frame in result.frames] == [1, 2, 3]
            assert result.last == {"type": "done", "cancelled": False, "frames": 3, "audio_ms": 0}

    run(scenario())


def test_a_model_step_that_fails_ends_that_stream_with_1011_and_the_other_goes_on() -> None:
    async def scenario() -> None:
        async with running(ScriptedEngine()) as address, Stream.connect(address) as a, Stream.connect(address) as b:
            await a.open()
            await b.open()
            await a.send(type="text", text="one boom")
            await b.send(type="text", text="still fine")
            failed = await a.until_closed()
            assert failed.last["code"] == "engine_error"
            assert failed.close_code == 1011
            assert len(failed.frames) == 1
            await b.send(type="end")
            assert (await b.until_closed()).last["type"] == "done"
            await wait_for(lambda: idle(address), what="both streams freed")

    run(scenario())


def test_an_engine_bug_while_taking_text_is_an_engine_error_and_the_server_serves_on() -> None:
    async def scenario() -> None:
        async with running(ScriptedEngine()) as address:
            async with Stream.connect(address) as stream:
                await stream.open()
                await stream.send(type="text", text="a bug")
                result = await stream.until_closed()
                assert result.last["code"] == "engine_error"
                assert result.close_code == 1011
            await wait_for(lambda: idle(address), what="the stream freed")
            async with Stream.connect(address) as again:
                await again.open()
                await again.send(type="text", text="ok")
                await again.send(type="end")
                assert (await again.until_closed()).last["type"] == "done"

    run(scenario())


def test_the_engine_stopping_fails_its_open_streams_with_engine_error() -> None:
    async def scenario() -> None:
        engine = ScriptedEngine()
        async with running(engine) as address, Stream.connect(address) as stream:
            await stream.open()
            await stream.send(type="text", text="word")
            await stream.next_frame()
            await asyncio.to_thread(engine.close)
            result = await stream.until_closed()
            assert result.last["code"] == "engine_error"
            assert result.close_code == 1011

    run(scenario())
