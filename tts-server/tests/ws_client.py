"""A small client of docs/tts-protocol.md for the server tests, and a server running in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from s2s_tts.__main__ import bind
from s2s_tts.engine_api import Engine
from s2s_tts.server import ServerOptions, TtsServer

# A protocol message as JSON decodes it.
Json = dict[str, Any]


@contextlib.asynccontextmanager
async def running(engine: Engine, **options: int) -> AsyncIterator[str]:
    """The server on a free loopback port; yields its host:port. The engine is closed after."""
    server = TtsServer(engine, ServerOptions(**options))
    await server.start(bind("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.close()
        await asyncio.to_thread(engine.close)


async def get_config(address: str) -> Json:
    def fetch() -> Json:
        with urllib.request.urlopen(f"http://{address}/config", timeout=5) as response:
            assert response.headers["Content-Type"] == "application/json"
            return json.loads(response.read())

    return await asyncio.to_thread(fetch)


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def idle(address: str) -> bool:
    streams = (await get_config(address))["streams"]
    return streams == {"active": 0, "waiting": 0}


@dataclass
class Result:
    """What a stream's connection received: JSON messages, audio frames (with arrival times), the close code."""

    messages: list[Json] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    frame_times: list[float] = field(default_factory=list)
    close_code: int | None = None
    closed_at: float = 0.0

    @property
    def last(self) -> Json:
        return self.messages[-1]


class Stream:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.result = Result()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, address: str) -> AsyncIterator[Stream]:
        async with connect(f"ws://{address}/v1/stream") as ws:
            yield cls(ws)

    async def send(self, **message: object) -> None:
        await self.ws.send(json.dumps(message))

    async def open(self, **options: object) -> Json:
        await self.send(type="open", **options)
        return await self.next_message()

    async def next_event(self, timeout: float = 10.0) -> bytes | Json:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(frame, bytes):
            self.result.frames.append(frame)
            self.result.frame_times.append(time.monotonic())
            return frame
        message = json.loads(frame)
        self.result.messages.append(message)
        return message

    async def next_message(self, timeout: float = 10.0) -> Json:
        while isinstance(event := await self.next_event(timeout), bytes):
            pass
        return event

    async def next_frame(self, timeout: float = 10.0) -> bytes:
        event = await self.next_event(timeout)
        assert isinstance(event, bytes), f"expected audio, got {event}"
        return event

    async def until_closed(self, timeout: float = 20.0) -> Result:
        """Everything up to the server's close."""

        async def drain() -> None:
            with contextlib.suppress(ConnectionClosed):
                await self._drain()

        await asyncio.wait_for(drain(), timeout)
        self.result.close_code = self.ws.close_code
        self.result.closed_at = time.monotonic()
        return self.result

    async def _drain(self) -> None:
        async for frame in self.ws:
            if isinstance(frame, bytes):
                self.result.frames.append(frame)
                self.result.frame_times.append(time.monotonic())
            else:
                self.result.messages.append(json.loads(frame))
