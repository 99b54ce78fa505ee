"""The engine's streams and slots: who holds a slot, who waits for one, and what callers asked of each stream.
One condition guards it all; the callers' threads and the engine thread meet here."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..engine_api import Done, StreamError
from .stream import EngineOptions, Stream, can_speak

Intake = tuple[Stream, list[str], bool, bool]  # stream, texts pushed, end now, cancel


class StreamTable:
    def __init__(self, max_streams: int) -> None:
        self.lock = threading.Condition()
        self.free = list(range(max_streams))
        self.active: dict[str, Stream] = {}  # holding a slot
        self.waiting: list[Stream] = []
        self._seq = 0
        self._stop = False

    # -- the callers' side (any thread) --------------------------------------------------------------------------
    def add(self, build: Callable[[int], Stream]) -> Stream:
        """A new stream (built from its sequence number) waits for a slot, or takes a free one now."""
        with self.lock:
            if self._stop:
                raise StreamError("engine_error", "the engine is closed")
            self._seq += 1
            stream = build(self._seq)
            self.waiting.append(stream)
            self._admit_locked()
            self.lock.notify_all()
        return stream

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.active), len(self.waiting)

    def push_text(self, s: Stream, text: str, max_chars: int) -> None:
        with self.lock:
            r = s.requests
            if r.end_requested:
                raise StreamError("text_after_end", "text after end")
            if s.closed:
                return
            r.chars += len(text)
            if r.chars > max_chars:
                raise StreamError("text_too_long", f"more than {max_chars} characters of text")
            r.inbox.append(text)
            self.lock.notify_all()

    def end(self, s: Stream) -> None:
        with self.lock:
            s.requests.end_requested = True
            self.lock.notify_all()

    def promote(self, s: Stream) -> None:
        with self.lock:
            s.priority = "confirmed"

    def cancel(self, s: Stream) -> None:
        with self.lock:
            if s.closed:
                return
            if s.queued:
                if s in self.waiting:
                    self.waiting.remove(s)
                s.closed = True
                s.output.finish(Done(cancelled=True, frames=0, audio_ms=0))
                return
            s.requests.cancel_requested = True
            self.lock.notify_all()

    def stop(self) -> None:
        with self.lock:
            self._stop = True
            self.lock.notify_all()

    def drain(self) -> list[Stream]:
        """Every stream still held or waiting (after stop): the caller fails them."""
        with self.lock:
            streams = list(self.active.values()) + self.waiting
            self.waiting = []
        return streams

    # -- the engine thread ----------------------------------------------------------------------------------------
    def stopped(self) -> bool:
        with self.lock:
            return self._stop

    def wait_for_work(self, timeout_s: float) -> None:
        with self.lock:
            if not self._stop and not self._has_work_locked():
                self.lock.wait(timeout_s)

    def take_intake(self) -> list[Intake]:
        """Every slot-holding stream with what its caller asked since the last intake (the inbox is taken)."""
        with self.lock:
            intake = []
            for s in self.active.values():
                r = s.requests
                intake.append((s, r.inbox, r.end_requested and not s.progress.ended, r.cancel_requested))
                r.inbox = []
        return intake

    def release(self, s: Stream, clear_slot: Callable[[int], None]) -> bool:
        """The stream leaves: `clear_slot` empties its slot's rows, the slot goes to the next waiting stream.
        False when the stream had already closed."""
        with self.lock:
            if s.closed:
                return False
            s.closed = True
            self.active.pop(s.id, None)
            slot = s.slot
            s.slot = None
            if slot is not None:
                clear_slot(slot)
                self.free.append(slot)
                self.free.sort()
            s.tokens.clear()
            s.requests.inbox = []
            self._admit_locked()
        return True

    def mark_closed(self, s: Stream) -> bool:
        """The stream closes without giving back a slot (the engine is closing). False when already closed."""
        with self.lock:
            if s.closed:
                return False
            s.closed = True
            self.active.pop(s.id, None)
        return True

    def _admit_locked(self) -> None:
        # confirmed before speculative, then in order of opening
        while self.free and self.waiting:
            nxt = min(self.waiting, key=lambda w: (w.priority != "confirmed", w.seq))
            self.waiting.remove(nxt)
            nxt.slot = self.free.pop(0)
            nxt.queued = False
            self.active[nxt.id] = nxt

    def _has_work_locked(self) -> bool:
        for s in self.active.values():
            r, p = s.requests, s.progress
            if r.inbox or r.cancel_requested or (r.end_requested and not p.ended) or not p.loaded:
                return True
            if can_speak(s):
                return True
        return False


class StreamHandle:
    """The server's view of one stream (engine_api.EngineStream)."""

    def __init__(self, table: StreamTable, stream: Stream, options: EngineOptions) -> None:
        self._table = table
        self._stream = stream
        self._options = options

    @property
    def id(self) -> str:
        return self._stream.id

    @property
    def queued(self) -> bool:
        return self._stream.queued

    def push_text(self, text: str) -> None:
        self._table.push_text(self._stream, text, self._options.max_text_chars)

    def end(self) -> None:
        self._table.end(self._stream)

    def promote(self) -> None:
        self._table.promote(self._stream)

    def cancel(self) -> None:
        self._table.cancel(self._stream)
