"""A test double of the TTS engine: real speech from espeak-ng behind the same `engine_api.Engine` and server.

The test profile runs it (`python -m s2s_tts --engine espeak-double`) so the whole-pipeline tests hear words a
speech recogniser can read back. It keeps the engine's streaming semantics, not its model:
- all streams advance together on one thread, one frame each per step (a "model step" of `frame_delay_s`);
- text is spoken in pieces of whole words as it arrives: the first piece once 5 words (the engine's first text
  window) or a clause mark are in, or at `end`; a partial last word waits for more text or `end`;
- when speech catches up with the text before `end`, the stream waits for more text;
- `cancel` stops the stream at its next step and frees its slot;
- beyond `max_streams` streams wait, confirmed before speculative, then in order of opening.
Audio: PCM16 LE mono 24 kHz in frames of 3,200 samples, like the real engine (a piece's tail is padded with
silence to a whole frame when the stream has nothing more to say yet).

Test hooks: text containing `[[fail]]` makes the stream's next step fail (`engine_error`); `[[crash]]` ends the
whole process (exit 3) right after the stream's first frame (the worker's restart tests); `[[stall]]` makes
the stream go silent from then on, neither audio nor `done`, until it is cancelled (a hung engine, for the
worker's stall watchdog). Timing, from the
environment (read once, when this module loads): S2S_TTS_DOUBLE_FRAME_MS (the step pause, default 20),
S2S_TTS_DOUBLE_LOAD_MS (a "model load" before the server listens, default 0), S2S_TTS_DOUBLE_FIRST_CHUNK_MS
(extra time before each stream's first frame, default 0).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import threading
import time

import numpy as np

from s2s_tts.engine_api import Done, Priority, StreamError, StreamOptions, StreamOutput

SAMPLE_RATE = 24_000
FRAME_SAMPLES = 3_200
VOICES = [
    "en-Carter_man",
    "en-Davis_man",
    "en-Emma_woman",
    "en-Frank_man",
    "en-Grace_woman",
    "en-Mike_man",
    "in-Samuel_man",
]
DEFAULT_VOICE = "en-Carter_man"
# espeak-ng voice variants, so each preset sounds a little different.
ESPEAK_VARIANT = {
    "en-Emma_woman": "en+f3",
    "en-Grace_woman": "en+f4",
    "en-Davis_man": "en+m3",
    "en-Frank_man": "en+m5",
    "en-Mike_man": "en+m7",
}
FIRST_WINDOW_WORDS = 5
CLAUSE_END = re.compile(r"[.,;:!?]$")
SPEAKABLE = re.compile(r"\w")
FAIL_MARK = "[[fail]]"
CRASH_MARK = "[[crash]]"
STALL_MARK = "[[stall]]"
# The pause of one "model step" per frame (default: a frame of 133 ms made in 20 ms, faster than real time as the
# real engine on a GPU). Read once here; tests pass their own.
DEFAULT_FRAME_DELAY_S = float(os.environ.get("S2S_TTS_DOUBLE_FRAME_MS", "20")) / 1000
DEFAULT_LOAD_S = float(os.environ.get("S2S_TTS_DOUBLE_LOAD_MS", "0")) / 1000
DEFAULT_FIRST_CHUNK_S = float(os.environ.get("S2S_TTS_DOUBLE_FIRST_CHUNK_MS", "0")) / 1000
# When a step had nothing to send yet (a first chunk held back), the loop looks again after this long.
IDLE_POLL_S = 0.005


def speak(text: str, voice: str) -> np.ndarray:
    """espeak-ng speech of `text` as int16 samples at 24 kHz."""
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-v", ESPEAK_VARIANT.get(voice, "en")],
        input=text.encode(),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    # espeak-ng writes its WAV to a pipe with placeholder sizes: read the rate, then everything after "data".
    rate = int.from_bytes(wav[24:28], "little")
    start = wav.find(b"data", 12)
    if wav[:4] != b"RIFF" or start < 0:
        raise RuntimeError("espeak-ng gave no WAV")
    samples = np.frombuffer(wav[start + 8 : start + 8 + (len(wav) - start - 8) // 2 * 2], dtype="<i2")
    if samples.size == 0 or rate == SAMPLE_RATE:
        return samples.astype(np.int16)
    count = round(samples.size * SAMPLE_RATE / rate)
    at = np.arange(count) * (rate / SAMPLE_RATE)
    return np.interp(at, np.arange(samples.size), samples.astype(np.float32)).round().astype(np.int16)


def ready_cut(text: str) -> int | None:
    """Where a piece of whole words ends in `text`, if enough is in to speak (a window of words, or a clause mark);
    the partial last word (no whitespace after it yet) stays behind."""
    complete = text[: len(text) - len(re.split(r"\s", text)[-1])]
    words = complete.split()
    if len(words) >= FIRST_WINDOW_WORDS or (words and CLAUSE_END.search(words[-1])):
        return len(complete)
    return None


class _Stream:
    def __init__(
        self, engine: EspeakDoubleEngine, stream_id: str, seq: int, options: StreamOptions, output: StreamOutput
    ):
        self._engine = engine
        self.id = stream_id
        self.seq = seq
        self.options = options
        self.priority: Priority = options.priority
        self.output = output
        # Guarded by the engine's lock:
        self.text = ""
        self.ended = False
        self.cancelled = False
        self.is_queued = True
        # The engine thread's own:
        self.audio = np.zeros(0, dtype=np.int16)
        self.frames = 0
        self.samples = 0
        self.spoke = False
        self.failing = False
        self.crash = False
        self.stalled = False
        # Not before this time (monotonic) for the first frame.
        self.first_frame_at = 0.0

    @property
    def queued(self) -> bool:
        with self._engine.lock:
            return self.is_queued

    def push_text(self, text: str) -> None:
        with self._engine.lock:
            if self.ended:
                raise StreamError("text_after_end", "text came after end")
            self.text += text
            if FAIL_MARK in self.text:
                self.failing = True
            self._engine.lock.notify()

    def end(self) -> None:
        with self._engine.lock:
            self.ended = True
            self._engine.lock.notify()

    def promote(self) -> None:
        with self._engine.lock:
            self.priority = "confirmed"
            self._engine.lock.notify()

    def cancel(self) -> None:
        with self._engine.lock:
            self.cancelled = True
            self._engine.lock.notify()

    def next_piece(self) -> str | None:
        """The next text to speak, taken from the buffer (under the lock), or None to wait for more."""
        text = self.text
        if self.ended:
            self.text = ""
            return text if text.strip() else None
        cut = ready_cut(text)
        if cut is None:
            return None
        self.text = text[cut:]
        return text[:cut]

    def done_event(self, cancelled: bool) -> Done:
        return Done(cancelled=cancelled, frames=self.frames, audio_ms=round(self.samples * 1000 / SAMPLE_RATE))


class EspeakDoubleEngine:
    name = "espeak-double"
    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES
    voices = VOICES
    default_voice = DEFAULT_VOICE
    default_cfg = 1.5
    default_steps = 5

    def __init__(
        self,
        max_streams: int = 8,
        frame_delay_s: float = DEFAULT_FRAME_DELAY_S,
        load_s: float = DEFAULT_LOAD_S,
        first_chunk_s: float = DEFAULT_FIRST_CHUNK_S,
    ) -> None:
        # The "model load": the server listens only after the engine is made.
        if shutil.which("espeak-ng") is None:
            raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        time.sleep(load_s)
        self.max_streams = max_streams
        self.frame_delay_s = frame_delay_s
        self.first_chunk_s = first_chunk_s
        self.lock = threading.Condition()
        self._active: list[_Stream] = []
        self._waiting: list[_Stream] = []
        self._ids = itertools.count(1)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="espeak-double", daemon=True)
        self._thread.start()

    def open(self, options: StreamOptions, output: StreamOutput) -> _Stream:
        if options.voice not in self.voices:
            raise StreamError("unknown_voice", f"unknown voice {options.voice!r}")
        with self.lock:
            if self._closed:
                raise StreamError("engine_error", "the engine has stopped")
            seq = next(self._ids)
            stream = _Stream(self, f"s{seq}", seq, options, output)
            self._waiting.append(stream)
            self._admit()
            self.lock.notify()
            return stream

    def stream_counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self._active), len(self._waiting)

    def close(self) -> None:
        with self.lock:
            self._closed = True
            streams = self._active + self._waiting
            self._active, self._waiting = [], []
            self.lock.notify()
        self._thread.join(timeout=10)
        for stream in streams:
            stream.output.fail(StreamError("engine_error", "the engine stopped"))

    def _admit(self) -> None:
        """Waiting streams into free slots: confirmed before speculative, then in order of opening (lock held)."""
        for stream in [s for s in self._waiting if s.cancelled]:
            self._waiting.remove(stream)
            stream.output.finish(stream.done_event(cancelled=True))
        self._waiting.sort(key=lambda s: (s.priority != "confirmed", s.seq))
        while self._waiting and len(self._active) < self.max_streams:
            stream = self._waiting.pop(0)
            stream.is_queued = False
            self._active.append(stream)

    def _run(self) -> None:
        while True:
            with self.lock:
                while True:
                    if self._closed:
                        return
                    self._admit()
                    if any(self._has_work(s) for s in self._active):
                        break
                    self.lock.wait()
                batch = list(self._active)
            stepped = False
            for stream in batch:
                try:
                    stepped = self._step(stream) or stepped
                except Exception as error:  # this stream alone fails; the others go on
                    self._remove(stream)
                    stream.output.fail(StreamError("engine_error", f"espeak-double: {error}"))
            if stepped and self.frame_delay_s > 0:
                time.sleep(self.frame_delay_s)
            elif not stepped:
                time.sleep(IDLE_POLL_S)

    def _has_work(self, stream: _Stream) -> bool:
        if stream.cancelled or stream.failing or stream.audio.size > 0 or stream.ended:
            return True
        return ready_cut(stream.text) is not None

    def _remove(self, stream: _Stream) -> None:
        with self.lock:
            if stream in self._active:
                self._active.remove(stream)
            self.lock.notify()

    def _step(self, stream: _Stream) -> bool:
        """One step of one stream: a frame out, or the next piece spoken, or its end. True if a frame went out."""
        with self.lock:
            cancelled, failing = stream.cancelled, stream.failing
            piece = stream.next_piece() if stream.audio.size < FRAME_SAMPLES and not cancelled else None
            finished = stream.ended and not stream.text and piece is None
        if cancelled:
            self._remove(stream)
            stream.output.finish(stream.done_event(cancelled=True))
            return False
        if failing:
            raise RuntimeError("a model step failed (the [[fail]] test hook)")
        if piece is not None and STALL_MARK in piece:
            stream.stalled = True
        if stream.stalled:
            return False
        if piece is not None:
            stream.crash = stream.crash or CRASH_MARK in piece
            spoken = piece.replace(CRASH_MARK, " ")
            if SPEAKABLE.search(spoken):
                if not stream.spoke:
                    stream.first_frame_at = time.monotonic() + self.first_chunk_s
                stream.spoke = True
                stream.audio = np.concatenate([stream.audio, speak(spoken, stream.options.voice)])
        if stream.frames == 0 and time.monotonic() < stream.first_frame_at:
            return False
        if stream.audio.size >= FRAME_SAMPLES or (stream.audio.size > 0 and (finished or piece is None)):
            # A whole frame, or the tail padded to one when nothing more is there to say yet.
            frame = stream.audio[:FRAME_SAMPLES]
            stream.audio = stream.audio[FRAME_SAMPLES:]
            if frame.size < FRAME_SAMPLES:
                frame = np.concatenate([frame, np.zeros(FRAME_SAMPLES - frame.size, dtype=np.int16)])
            stream.output.audio(frame.astype("<i2").tobytes())
            stream.frames += 1
            stream.samples += FRAME_SAMPLES
            if stream.frames == 1 and stream.crash:
                os._exit(3)
            return True
        if finished and stream.audio.size == 0:
            self._remove(stream)
            if stream.spoke:
                stream.output.finish(stream.done_event(cancelled=False))
            else:
                stream.output.fail(StreamError("unspeakable", "the stream had no speakable text"))
        return False
