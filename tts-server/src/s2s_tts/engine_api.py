"""The interface between the server (protocol, sockets) and an engine (the model, or the test double).

An engine owns its compute (a thread of its own, so the server's event loop never waits on a model step) and
hands each stream's output to the server through a `StreamOutput`, which is safe to call from that thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal, Protocol

Priority = Literal["confirmed", "speculative"]

ErrorCode = Literal[
    "bad_message",
    "unknown_voice",
    "bad_option",
    "text_after_end",
    "text_too_long",
    "unspeakable",
    "engine_error",
]


class StreamError(Exception):
    """A failure of one stream, with the protocol's error code. Other streams go on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StreamOptions:
    voice: str
    cfg: float
    steps: int
    priority: Priority = "confirmed"


@dataclass(frozen=True)
class Done:
    cancelled: bool
    frames: int
    audio_ms: int


Event = bytes | Done | StreamError


class StreamOutput:
    """One stream's output, delivered in order to the server's event loop.

    The engine calls `audio`, `finish` and `fail` from its own thread; the server reads `events` on the loop.
    After `finish` or `fail`, nothing more is delivered.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._closed = False

    def audio(self, pcm16le: bytes) -> None:
        if not self._closed:
            self._loop.call_soon_threadsafe(self.events.put_nowait, pcm16le)

    def finish(self, done: Done) -> None:
        if not self._closed:
            self._closed = True
            self._loop.call_soon_threadsafe(self.events.put_nowait, done)

    def fail(self, error: StreamError) -> None:
        if not self._closed:
            self._closed = True
            self._loop.call_soon_threadsafe(self.events.put_nowait, error)


class EngineStream(Protocol):
    """What the server holds for one open stream. Every method returns at once (the work happens on the engine's
    thread); a mistake of the client's (text after end) raises StreamError."""

    @property
    def id(self) -> str: ...

    @property
    def queued(self) -> bool:
        """True while the stream waits for a free slot."""
        ...

    def push_text(self, text: str) -> None: ...

    def end(self) -> None: ...

    def promote(self) -> None: ...

    def cancel(self) -> None:
        """Stop within one model step; frees the stream's slot and memory. The output then finishes cancelled."""
        ...


class Engine(Protocol):
    name: str
    sample_rate: int
    frame_samples: int
    voices: list[str]
    default_voice: str
    max_streams: int
    default_cfg: float
    default_steps: int

    def open(self, options: StreamOptions, output: StreamOutput) -> EngineStream:
        """Opens a stream (raises StreamError for an unknown voice or a bad option)."""
        ...

    def stream_counts(self) -> tuple[int, int]:
        """(active, waiting)."""
        ...

    def close(self) -> None:
        """Stops the engine's thread; open streams fail with engine_error."""
        ...
