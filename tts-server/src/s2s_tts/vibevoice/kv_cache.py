"""Key/value caches for many streams at once: one preallocated tensor per layer with a row per stream (slot),
each row with its own length (its position). A forward over any subset of rows writes its new keys/values at each
row's own position and attends over the rows' common prefix length with a mask, so streams whose caches differ in
length run in one batched call with no padding copies. Lengths advance only on `commit`, so a forward that fails
half way leaves nothing behind (its writes lie past the committed lengths and are overwritten later)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch


@dataclass
class _Plan:
    rows: list[int]
    rows_t: torch.Tensor
    row_slice: slice | None  # rows as a strided view, when they form an arithmetic progression
    write_pos: torch.Tensor  # [b, n] positions the new tokens take
    n_real: list[int]
    kv_len: int


def _as_slice(rows: list[int]) -> slice | None:
    if len(rows) == 1:
        return slice(rows[0], rows[0] + 1, 1)
    step = rows[1] - rows[0]
    if step <= 0:
        return None
    for a, b in itertools.pairwise(rows):
        if b - a != step:
            return None
    return slice(rows[0], rows[-1] + 1, step)


class SlotKVCache:
    """`update(key, value, layer_idx)` is what transformers' attention calls; `plan` picks the rows first."""

    def __init__(
        self,
        num_layers: int,
        rows: int,
        kv_heads: int,
        head_dim: int,
        max_positions: int,
        device: torch.device,
        dtype: torch.dtype,
        growth: int = 256,
    ) -> None:
        self.num_layers = num_layers
        self.num_rows = rows
        self.kv_heads = kv_heads
        self.head_dim = head_dim
        self.max_positions = max_positions
        self.device = device
        self.dtype = dtype
        self.growth = growth
        self.lengths = [0] * rows
        self.capacity = 0
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self._plan: _Plan | None = None
        self._resize(growth)

    # -- storage ------------------------------------------------------------------------------------------------
    def _resize(self, capacity: int) -> None:
        capacity = min(capacity, self.max_positions)
        shape = (self.num_rows, self.kv_heads, capacity, self.head_dim)
        keep = min(self.capacity, capacity)
        new_k, new_v = [], []
        for layer in range(self.num_layers):
            k = torch.zeros(shape, device=self.device, dtype=self.dtype)
            v = torch.zeros(shape, device=self.device, dtype=self.dtype)
            if keep > 0:
                k[:, :, :keep].copy_(self.keys[layer][:, :, :keep])
                v[:, :, :keep].copy_(self.values[layer][:, :, :keep])
            new_k.append(k)
            new_v.append(v)
        self.keys, self.values, self.capacity = new_k, new_v, capacity

    def ensure_capacity(self, needed: int) -> None:
        if needed > self.max_positions:
            raise ValueError(f"cache needs {needed} positions, the model has {self.max_positions}")
        if needed > self.capacity:
            # grow in doublings so a long stream reallocates a handful of times, not every step
            cap = self.capacity
            while cap < needed:
                cap = max(cap * 2, self.growth)
            self._resize(cap)

    def shrink_to_fit(self) -> None:
        """After streams leave: give back what the longest remaining row does not need (with headroom)."""
        longest = max(self.lengths, default=0)
        target = self.growth
        while target < 2 * longest:
            target *= 2
        if target < self.capacity:
            self._resize(target)

    def bytes(self) -> int:
        per = self.num_rows * self.kv_heads * self.capacity * self.head_dim * self.keys[0].element_size()
        return 2 * self.num_layers * per

    # -- rows -----------------------------------------------------------------------------------------------------
    def load_row(self, row: int, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        """Start a row from a prompt's cache: keys/values per layer, each [kv_heads, T, head_dim] (copied)."""
        length = keys[0].shape[-2]
        self.ensure_capacity(length + self.growth)
        for layer in range(self.num_layers):
            self.keys[layer][row, :, :length].copy_(keys[layer])
            self.values[layer][row, :, :length].copy_(values[layer])
        self.lengths[row] = length

    def clear_row(self, row: int) -> None:
        self.lengths[row] = 0

    # -- one forward ----------------------------------------------------------------------------------------------
    def plan(
        self, rows: list[int], n: int, n_real: list[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prepares a forward of `n` new tokens on `rows` (row i really adds n_real[i] <= n; the rest is padding whose
        outputs the caller drops). Returns (position_ids [b, n], attention mask [b, 1, n, kv_len] or None)."""
        n_real = n_real if n_real is not None else [n] * len(rows)
        starts = [self.lengths[r] for r in rows]
        kv_len = max(starts) + n
        self.ensure_capacity(kv_len)
        dev = self.device
        start_t = torch.tensor(starts, device=dev, dtype=torch.long)
        offs = torch.arange(n, device=dev, dtype=torch.long)
        pos = start_t[:, None] + offs[None, :]
        mask: torch.Tensor | None = None
        if n > 1 or min(starts) != max(starts):
            keys = torch.arange(kv_len, device=dev, dtype=torch.long)
            mask = (keys[None, None, None, :] <= pos[:, None, :, None]).contiguous()
        self._plan = _Plan(
            rows=rows,
            rows_t=torch.tensor(rows, device=dev, dtype=torch.long),
            row_slice=_as_slice(rows),
            write_pos=pos,
            n_real=n_real,
            kv_len=kv_len,
        )
        return pos, mask

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        p = self._plan
        if p is None:
            raise RuntimeError("SlotKVCache.update without a plan")
        k_store, v_store = self.keys[layer_idx], self.values[layer_idx]
        r = p.rows_t[:, None]
        # [b, kv, n, d] -> [b, n, kv, d] to match the advanced index (rows, :, positions, :)
        k_store[r, :, p.write_pos] = key_states.transpose(1, 2).to(self.dtype)
        v_store[r, :, p.write_pos] = value_states.transpose(1, 2).to(self.dtype)
        if p.row_slice is not None:
            return k_store[p.row_slice, :, : p.kv_len], v_store[p.row_slice, :, : p.kv_len]
        return k_store[p.rows_t, :, : p.kv_len], v_store[p.rows_t, :, : p.kv_len]

    def commit(self) -> None:
        p = self._plan
        if p is None:
            return
        for row, n in zip(p.rows, p.n_real, strict=True):
            self.lengths[row] += n
        self._plan = None

    def abandon(self) -> None:
        self._plan = None
