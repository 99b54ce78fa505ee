"""Test doubles for the engine's collaborators."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch

from s2s_tts.engine_api import Done, StreamError


class CollectingOutput:
    """Records what the engine delivers to one stream (in place of engine_api.StreamOutput)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done: Done | None = None
        self.error: StreamError | None = None
        self.closed = threading.Event()

    def audio(self, pcm16le: bytes) -> None:
        assert self.done is None and self.error is None, "audio after the end"
        self.chunks.append(pcm16le)

    def finish(self, done: Done) -> None:
        self.done = done
        self.closed.set()

    def fail(self, error: StreamError) -> None:
        self.error = error
        self.closed.set()


class FrameNoise:
    """Diffusion noise that depends only on the frame index: a stream gets the same noise whatever it is batched
    with (the default source draws one batch from one generator, so batch-mates would change it)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def draw(
        self, streams: Sequence[str], frames: Sequence[int], steps: int, dim: int, device: torch.device
    ) -> torch.Tensor:
        rows = []
        for frame in frames:
            g = torch.Generator().manual_seed(self.seed * 100_003 + frame)
            rows.append(torch.randn(steps + 1, dim, generator=g))
        return torch.stack(rows).to(device)
