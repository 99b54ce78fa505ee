"""The acoustic decoder's streaming state for many streams: one tensor per causal convolution with a row per
stream slot. transformers' decoder calls `update(hidden_states, cache_key, conv_module)` on whatever cache object
it is given; this one serves the rows of the current call by one gather and one scatter per layer, however many
streams there are (upstream's cache does Python work per stream per layer), and starts a joining stream from zeros
(the causal left padding) without touching the others. New states are held until `commit`, so a decode that fails
part way leaves every row as it was."""

from __future__ import annotations

import torch
from torch import nn


class SlotPaddingCache:
    def __init__(self, decoder: nn.Module, slots: int, device: torch.device, dtype: torch.dtype) -> None:
        self.slots = slots
        self.states: dict[str, torch.Tensor] = {}
        for module in decoder.modules():
            key = getattr(module, "cache_key", None)
            left_pad = getattr(module, "left_pad", None)
            if isinstance(key, str) and isinstance(left_pad, int):
                channels = int(module.in_channels)  # type: ignore[arg-type]
                self.states[key] = torch.zeros(slots, channels, left_pad, device=device, dtype=dtype)
        self._rows: torch.Tensor | None = None
        self._pending: dict[str, torch.Tensor] = {}

    def bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.states.values())

    def reset_slot(self, slot: int) -> None:
        for state in self.states.values():
            state[slot].zero_()

    def select(self, slots: list[int]) -> None:
        device = next(iter(self.states.values())).device
        self._rows = torch.tensor(slots, device=device, dtype=torch.long)
        self._pending = {}

    def update(self, hidden_states: torch.Tensor, cache_key: str, conv_module: nn.Module) -> torch.Tensor:
        if self._rows is None:
            raise RuntimeError("SlotPaddingCache.update without select()")
        state = self.states[cache_key]
        left_pad = state.shape[-1]
        if left_pad == 0:
            return hidden_states
        padded = torch.cat([state.index_select(0, self._rows), hidden_states], dim=-1)
        self._pending[cache_key] = padded[:, :, -left_pad:]
        return padded

    def commit(self) -> None:
        if self._rows is None:
            return
        for key, new in self._pending.items():
            self.states[key].index_copy_(0, self._rows, new)
        self._rows = None
        self._pending = {}

    def abandon(self) -> None:
        self._rows = None
        self._pending = {}
