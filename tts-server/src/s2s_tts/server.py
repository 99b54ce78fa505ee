"""The WebSocket server of docs/tts-protocol.md: one stream per connection, in front of an `Engine`.

The server only speaks the protocol: it validates messages, hands text to the engine (which computes on its own
thread and returns at once) and forwards the engine's audio and end of stream. Whatever goes wrong in one stream
is answered on that connection alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import os
import socket
from dataclasses import dataclass

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from s2s_tts.engine_api import Done, Engine, EngineStream, StreamError, StreamOptions, StreamOutput
from s2s_tts.protocol import Cancel, End, Open, Promote, Text, parse_message

log = logging.getLogger("s2s_tts")

STREAM_PATH = "/v1/stream"
CONFIG_PATH = "/config"
# An answer is a few sentences; this bounds what one stream can make the engine hold.
DEFAULT_MAX_TEXT_CHARS = 20_000
# Close codes: a client's mistake, an engine fault (RFC 6455 7.4.1).
CLOSE_CLIENT_ERROR = 1008
CLOSE_ENGINE_ERROR = 1011


@dataclass(frozen=True)
class ServerOptions:
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS


def config_body(engine: Engine, options: ServerOptions) -> dict[str, object]:
    active, waiting = engine.stream_counts()
    return {
        "engine": engine.name,
        "pid": os.getpid(),
        "sample_rate": engine.sample_rate,
        "frame_samples": engine.frame_samples,
        "voices": list(engine.voices),
        "default_voice": engine.default_voice,
        "max_streams": engine.max_streams,
        "defaults": {"cfg": engine.default_cfg, "steps": engine.default_steps},
        "max_text_chars": options.max_text_chars,
        "streams": {"active": active, "waiting": waiting},
    }


def _json_response(status: http.HTTPStatus, body: object) -> Response:
    data = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return Response(status.value, status.phrase, headers, data)


class TtsServer:
    """Serves one engine. `start` listens on a socket bound by the caller (bound before the engine loaded, so a
    port taken is found at once; listening only now, so a listening port means ready)."""

    def __init__(self, engine: Engine, options: ServerOptions | None = None) -> None:
        self.engine = engine
        self.options = options or ServerOptions()
        self._server: Server | None = None
        self._next_connection = 0

    async def start(self, sock: socket.socket) -> None:
        self._server = await serve(
            self._handle,
            sock=sock,
            process_request=self._process_request,
            # The engine's events are small and in order; the socket's own buffer is the backpressure.
            max_size=1 << 20,
            logger=logging.getLogger("s2s_tts.websockets"),
        )

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stops listening and closes every connection (1001 going away); their streams are cancelled."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == CONFIG_PATH:
            return _json_response(http.HTTPStatus.OK, config_body(self.engine, self.options))
        if path == STREAM_PATH:
            return None
        return _json_response(http.HTTPStatus.NOT_FOUND, {"error": "not_found", "paths": [CONFIG_PATH, STREAM_PATH]})

    async def _handle(self, ws: ServerConnection) -> None:
        self._next_connection += 1
        await _StreamConnection(ws, self.engine, self.options, f"c{self._next_connection}").run()


class _StreamConnection:
    """One connection, one stream: reads the client's messages and forwards the engine's output."""

    def __init__(self, ws: ServerConnection, engine: Engine, options: ServerOptions, name: str) -> None:
        self.ws = ws
        self.engine = engine
        self.options = options
        self.name = name
        self.stream: EngineStream | None = None
        self.output: StreamOutput | None = None
        self.ended = False
        self.cancelled = False
        self.text_chars = 0
        # Set once the stream's last message (done or error) has been sent or the connection is gone.
        self.finished = asyncio.Event()

    async def run(self) -> None:
        forward: asyncio.Task[None] | None = None
        try:
            async for frame in self.ws:
                if self.finished.is_set():
                    break
                try:
                    await self._on_message(frame)
                except StreamError as error:
                    await self._fail(error, from_engine=False)
                    break
                except Exception as error:
                    # An engine's bug while taking a message: this stream fails, the server goes on.
                    log.exception("%s: the engine failed on a message", self.name)
                    await self._fail(StreamError("engine_error", f"the engine failed: {error}"), from_engine=False)
                    break
                if forward is None and self.output is not None:
                    forward = asyncio.create_task(self._forward(self.output))
        except ConnectionClosed:
            pass
        finally:
            # The messages end only with the connection: a stream not finished by then lost its client (or the
            # server is shutting down), and closing the socket cancels the stream.
            if not self.finished.is_set():
                self.finished.set()
                if self.stream is not None:
                    log.info("%s %s: connection closed, stream cancelled", self.name, self.stream.id)
                    self.stream.cancel()
            if forward is not None:
                forward.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await forward

    async def _on_message(self, frame: str | bytes) -> None:
        message = parse_message(frame)
        if isinstance(message, Open):
            stream = self._open(message)
            # Sent before the forwarder starts, so `opened` always comes before the stream's audio.
            await self.ws.send(json.dumps({"type": "opened", "stream": stream.id, "queued": stream.queued}))
            return
        if self.stream is None:
            raise StreamError("bad_message", f"the first message must be open, got {type(message).__name__.lower()}")
        if self.cancelled:
            return  # done (cancelled) is on its way; later messages change nothing
        if isinstance(message, Text):
            if self.ended:
                raise StreamError("text_after_end", "text came after end")
            self.text_chars += len(message.text)
            if self.text_chars > self.options.max_text_chars:
                raise StreamError(
                    "text_too_long", f"the stream's text is past its limit of {self.options.max_text_chars} characters"
                )
            self.stream.push_text(message.text)
        elif isinstance(message, Promote):
            self.stream.promote()
        elif isinstance(message, End):
            if not self.ended:
                self.ended = True
                self.stream.end()
        elif isinstance(message, Cancel):
            self.cancelled = True
            self.stream.cancel()

    def _open(self, message: Open) -> EngineStream:
        if self.stream is not None:
            raise StreamError("bad_message", "open came twice: one stream per connection")
        engine = self.engine
        options = StreamOptions(
            voice=message.voice if message.voice is not None else engine.default_voice,
            cfg=message.cfg if message.cfg is not None else engine.default_cfg,
            steps=message.steps if message.steps is not None else engine.default_steps,
            priority=message.priority,
        )
        if options.voice not in engine.voices:
            raise StreamError("unknown_voice", f"unknown voice {options.voice!r}; GET {CONFIG_PATH} lists them")
        output = StreamOutput(asyncio.get_running_loop())
        stream = engine.open(options, output)
        self.stream, self.output = stream, output
        log.info(
            "%s %s: opened voice=%s cfg=%s steps=%s priority=%s queued=%s",
            self.name,
            stream.id,
            options.voice,
            options.cfg,
            options.steps,
            options.priority,
            stream.queued,
        )
        return stream

    async def _forward(self, output: StreamOutput) -> None:
        """The engine's events to the client, in order, until done or error."""
        try:
            while True:
                event = await output.events.get()
                if isinstance(event, bytes):
                    await self.ws.send(event)
                elif isinstance(event, Done):
                    await self._finish(event)
                    return
                else:
                    await self._fail(event, from_engine=True)
                    return
        except ConnectionClosed:
            return

    async def _finish(self, done: Done) -> None:
        if self.finished.is_set():
            return
        self.finished.set()
        stream_id = self.stream.id if self.stream else "-"
        log.info(
            "%s %s: done cancelled=%s frames=%d audio_ms=%d",
            self.name,
            stream_id,
            done.cancelled,
            done.frames,
            done.audio_ms,
        )
        with contextlib.suppress(ConnectionClosed):
            message = {"type": "done", "cancelled": done.cancelled, "frames": done.frames, "audio_ms": done.audio_ms}
            await self.ws.send(json.dumps(message))
            await self.ws.close(1000)

    async def _fail(self, error: StreamError, *, from_engine: bool) -> None:
        """A named error for this stream alone. For a client's mistake its engine stream is cancelled, so its slot
        frees; an error from the engine means the engine has already let the stream go."""
        if self.finished.is_set():
            return
        self.finished.set()
        stream_id = self.stream.id if self.stream else "-"
        log.info("%s %s: error %s: %s", self.name, stream_id, error.code, error.message)
        if self.stream is not None and not from_engine:
            self.stream.cancel()
        code = CLOSE_ENGINE_ERROR if error.code == "engine_error" else CLOSE_CLIENT_ERROR
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps({"type": "error", "code": error.code, "message": error.message}))
            await self.ws.close(code, error.code)
