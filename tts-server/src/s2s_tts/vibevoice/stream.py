"""One stream's state: what its caller asked for (shared, under the engine lock) and how far the engine thread has
taken it, plus the engine's options and the output a stream speaks into."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..engine_api import Done, Priority, StreamError, StreamOptions
from .prompt import VoicePrompt
from .sampler import NoiseSource
from .text import IncrementalText

TEXT_WINDOW = 5  # upstream's TTS_TEXT_WINDOW_SIZE
SPEECH_WINDOW = 6  # upstream's TTS_SPEECH_WINDOW_SIZE


class Output(Protocol):
    """What the engine calls on a stream's output (engine_api.StreamOutput, or a test's collector)."""

    def audio(self, pcm16le: bytes) -> None: ...

    def finish(self, done: Done) -> None: ...

    def fail(self, error: StreamError) -> None: ...


@dataclass
class EngineOptions:
    eos: bool = True  # stop at the end-of-speech classifier (tests with random weights turn it off)
    max_tail_frames: int = 90  # frames after the last text window (once ended) before finishing regardless of EOS
    max_text_chars: int = 20_000  # per stream (text_too_long)
    noise: NoiseSource | None = None  # the diffusion noise (default: torch.randn from one generator)
    seed: int | None = None  # for the default noise
    fault_hook: Callable[[str, list[str]], None] | None = None  # tests: raise in a phase for chosen stream ids
    idle_wait_s: float = 0.1
    start_thread: bool = True  # False: the caller drives `step()` (tests, bench)


@dataclass
class Requests:
    """What the caller's thread asked for since the last intake (read and written under the engine lock)."""

    inbox: list[str] = field(default_factory=list)
    end_requested: bool = False
    cancel_requested: bool = False
    chars: int = 0


@dataclass
class Progress:
    """How far the engine thread has taken the stream (the engine thread's own)."""

    loaded: bool = False
    ended: bool = False
    in_window: int = SPEECH_WINDOW  # latents done in the current window; SPEECH_WINDOW: a text window is due
    windows: int = 0
    tail: int = 0
    frames: int = 0


@dataclass(eq=False)
class Stream:
    id: str
    options: StreamOptions
    output: Output
    voice: VoicePrompt
    seq: int
    text: IncrementalText
    priority: Priority
    requests: Requests = field(default_factory=Requests)
    progress: Progress = field(default_factory=Progress)
    tokens: deque[int] = field(default_factory=deque)  # the engine thread's: tokenized, not yet in a window
    # the slot bookkeeping (under the engine lock)
    queued: bool = True
    closed: bool = False  # finished, failed or cancelled: nothing more is delivered
    slot: int | None = None


def can_speak(s: Stream) -> bool:
    """Whether the stream has a speech latent or a text window it can run now."""
    p = s.progress
    if p.in_window < SPEECH_WINDOW:
        return True
    if not s.text.speakable and not p.ended:
        return False
    return len(s.tokens) >= TEXT_WINDOW or p.ended
