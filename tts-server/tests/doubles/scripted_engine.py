"""A tiny scripted test double of `engine_api.Engine`, for the server's fault tests.

On its own thread, like a real engine: every word pushed becomes one frame of `frame_samples` samples whose value
is the word's length; `end` finishes the stream after its frames. Scripted faults: the word `boom` fails the stream
on the engine's thread (`engine_error`); the word `bug` makes `push_text` itself raise a plain RuntimeError (an
engine's bug, not a StreamError).
"""

from __future__ import annotations

import itertools
import queue
import threading

from s2s_tts.engine_api import Done, StreamError, StreamOptions, StreamOutput


class ScriptedStream:
    def __init__(self, engine: ScriptedEngine, stream_id: str, output: StreamOutput) -> None:
        self.engine = engine
        self.id = stream_id
        self.output = output
        self.queued = False
        self.ended = False
        self.frames = 0

    def push_text(self, text: str) -> None:
        if self.ended:
            raise StreamError("text_after_end", "text came after end")
        if "bug" in text.split():
            raise RuntimeError("scripted bug in push_text")
        self.engine.jobs.put((self, "text", text))

    def end(self) -> None:
        self.ended = True
        self.engine.jobs.put((self, "end", ""))

    def promote(self) -> None:
        pass

    def cancel(self) -> None:
        self.engine.jobs.put((self, "cancel", ""))


class ScriptedEngine:
    name = "scripted-double"
    sample_rate = 24_000
    frame_samples = 4
    default_voice = "a"
    max_streams = 4
    default_cfg = 1.5
    default_steps = 5

    def __init__(self) -> None:
        self.voices = ["a", "b"]
        self.jobs: queue.Queue[tuple[ScriptedStream, str, str] | None] = queue.Queue()
        self.open_streams: dict[str, ScriptedStream] = {}
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def open(self, options: StreamOptions, output: StreamOutput) -> ScriptedStream:
        stream = ScriptedStream(self, f"t{next(self._ids)}", output)
        self.open_streams[stream.id] = stream
        return stream

    def stream_counts(self) -> tuple[int, int]:
        return len(self.open_streams), 0

    def close(self) -> None:
        self.jobs.put(None)
        self._thread.join(timeout=5)
        for stream in list(self.open_streams.values()):
            stream.output.fail(StreamError("engine_error", "the engine stopped"))
        self.open_streams.clear()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            stream, kind, text = job
            if stream.id not in self.open_streams:
                continue
            if kind == "cancel":
                self._finish(stream, Done(cancelled=True, frames=stream.frames, audio_ms=0))
            elif kind == "end":
                self._finish(stream, Done(cancelled=False, frames=stream.frames, audio_ms=0))
            else:
                for word in text.split():
                    if word == "boom":
                        del self.open_streams[stream.id]
                        stream.output.fail(StreamError("engine_error", "scripted model step failure"))
                        break
                    stream.output.audio(len(word).to_bytes(2, "little") * self.frame_samples)
                    stream.frames += 1

    def _finish(self, stream: ScriptedStream, done: Done) -> None:
        del self.open_streams[stream.id]
        stream.output.finish(done)
