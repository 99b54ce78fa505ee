"""Upstream's pickled voice presets (`demo/voices/streaming_model/*.pt`), read and written without transformers 4.

A preset is a torch pickle (protocol 2) of a dict `{lm, tts_lm, neg_lm, neg_tts_lm}` of transformers-4
`BaseModelOutputWithPast` objects, each holding the prompt's `last_hidden_state` and a `DynamicCache` whose state is
`{_seen_tokens, key_cache: [...], value_cache: [...]}`. Unpickling one normally needs transformers 4 and runs
whatever the pickle names. `read_preset` uses a restricted unpickler instead: the two transformers classes map to
plain stand-ins, the few names a tensor needs are allowed, anything else is refused. `write_preset` writes the same
structure under the same transformers module and class names (the tiny test model's preset, so the converter and
upstream's own loader both read what we write).
"""

from __future__ import annotations

import copyreg
import pickle
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

PARTS = ("lm", "tts_lm", "neg_lm", "neg_tts_lm")

OUTPUT_CLASS = ("transformers.modeling_outputs", "BaseModelOutputWithPast")
CACHE_CLASS = ("transformers.cache_utils", "DynamicCache")


class PresetError(ValueError):
    """A pickled preset that does not have the structure of upstream's presets."""


class UnsafePickleError(PresetError):
    """A pickled preset that names something other than the few classes and functions a preset is made of."""


class PresetOutputStandIn:
    """Stands in for transformers' `BaseModelOutputWithPast` while unpickling.

    transformers 4 pickles a ModelOutput as `cls(*field_values)`, then its items, then its `__dict__`: this class
    records the fields and nothing else.
    """

    FIELDS = ("last_hidden_state", "past_key_values", "hidden_states", "attentions")

    def __init__(self, *args: Any) -> None:
        if len(args) > len(self.FIELDS):
            raise PresetError(f"BaseModelOutputWithPast built with {len(args)} fields (at most 4)")
        self.fields: dict[str, Any] = dict(zip(self.FIELDS, args, strict=False))

    def __setitem__(self, key: str, value: Any) -> None:
        self.fields[str(key)] = value

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.fields.update({str(k): v for k, v in state.items() if k in self.FIELDS})


class PresetCacheStandIn:
    """Stands in for transformers-4 `DynamicCache` while unpickling (keeps its state dict)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise PresetError("DynamicCache state is not a dict")
        self.state = dict(state)


# What a preset pickle may name: (module, name) -> what unpickling gets. A tensor needs the rebuild function and an
# OrderedDict (its backward hooks, empty); torch resolves the storage classes itself before asking find_class.
_ALLOWED: dict[tuple[str, str], Any] = {
    OUTPUT_CLASS: PresetOutputStandIn,
    CACHE_CLASS: PresetCacheStandIn,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("collections", "OrderedDict"): OrderedDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in _ALLOWED)
            raise UnsafePickleError(
                f"the pickle names {module}.{name}, which a voice preset never holds; refusing to load it "
                f"(allowed: {allowed})"
            ) from None


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


# torch.load subclasses `pickle_module.Unpickler` (its find_class resolves storage classes, then asks ours).
_restricted_pickle = types.ModuleType("s2s_tts_restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
_restricted_pickle.load = _restricted_load  # type: ignore[attr-defined]


def read_preset(path: Path) -> dict[str, torch.Tensor]:
    """Reads an upstream `.pt` preset into flat tensors: `{part}.last_hidden_state`, `{part}.key.{layer}`,
    `{part}.value.{layer}` (contiguous, on the CPU, dtype kept). Structure beyond that is checked by the caller."""
    try:
        raw = torch.load(path, map_location="cpu", pickle_module=_restricted_pickle, weights_only=False)
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise PresetError(f"{path}: not a readable voice preset ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict) or set(raw) != set(PARTS):
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise PresetError(f"{path}: a preset is a dict with keys {list(PARTS)}, got {keys}")
    tensors: dict[str, torch.Tensor] = {}
    for part in PARTS:
        output = raw[part]
        if not isinstance(output, PresetOutputStandIn):
            raise PresetError(f"{path}: {part} is {type(output).__name__}, not a BaseModelOutputWithPast")
        hidden = output.fields.get("last_hidden_state")
        cache = output.fields.get("past_key_values")
        if not isinstance(hidden, torch.Tensor):
            raise PresetError(f"{path}: {part}.last_hidden_state is missing")
        if not isinstance(cache, PresetCacheStandIn):
            raise PresetError(f"{path}: {part}.past_key_values is not a DynamicCache")
        key_cache = cache.state.get("key_cache")
        value_cache = cache.state.get("value_cache")
        if not isinstance(key_cache, list) or not isinstance(value_cache, list):
            raise PresetError(
                f"{path}: {part}'s DynamicCache has no key_cache/value_cache lists (state: {sorted(cache.state)}); "
                "only the transformers-4 DynamicCache of the published presets is supported"
            )
        tensors[f"{part}.last_hidden_state"] = hidden.contiguous()
        for kind, layers in (("key", key_cache), ("value", value_cache)):
            for layer, tensor in enumerate(layers):
                if not isinstance(tensor, torch.Tensor):
                    raise PresetError(f"{path}: {part}.{kind}.{layer} is not a tensor")
                tensors[f"{part}.{kind}.{layer}"] = tensor.contiguous()
    return tensors


# ---------------------------------------------------------------------------------------------------------------
# Writing: the same pickle structure under transformers-4's names, without transformers.


class _OutputWriter:
    """Pickles as transformers-4 `BaseModelOutputWithPast(last_hidden_state, past_key_values, None, None)`."""

    def __init__(self, hidden: torch.Tensor, cache: _CacheWriter) -> None:
        self.hidden = hidden
        self.cache = cache

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        items = {"last_hidden_state": self.hidden, "past_key_values": self.cache}
        state = {**items, "hidden_states": None, "attentions": None}
        return (_OutputWriter, (self.hidden, self.cache, None, None), state, None, iter(items.items()))


class _CacheWriter:
    """Pickles as a transformers-4 `DynamicCache` (made with `__new__`, then its state dict)."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        self.keys = keys
        self.values = values

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        seen = int(self.keys[0].shape[2]) if self.keys else 0
        state = {"_seen_tokens": seen, "key_cache": list(self.keys), "value_cache": list(self.values)}
        # copyreg.__newobj__ is what protocol 2+ pickles a `cls.__new__(cls)` with (not in typeshed's stubs).
        return (copyreg.__newobj__, (_CacheWriter,), state)  # type: ignore[attr-defined]


_WRITER_NAMES = {_OutputWriter: OUTPUT_CLASS, _CacheWriter: CACHE_CLASS}


class _PresetPickler(pickle._Pickler):  # the pure-Python pickler: its save_global can be overridden
    # typeshed's stub of _Pickler leaves out its internals (save_global, write, memoize): hence the ignores.
    def save_global(self, obj: Any, name: str | None = None) -> None:
        target = _WRITER_NAMES.get(obj)
        if target is None:
            super().save_global(obj, name)  # type: ignore[misc]
            return
        module, qualname = target
        self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())  # type: ignore[attr-defined]
        self.memoize(obj)  # type: ignore[attr-defined]


_writer_pickle = types.ModuleType("s2s_tts_preset_pickle")
_writer_pickle.Pickler = _PresetPickler  # type: ignore[attr-defined]


def write_preset(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Writes flat voice tensors (as `read_preset` returns them) as an upstream-format `.pt` preset."""
    preset: dict[str, _OutputWriter] = {}
    for part in PARTS:
        keys: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        while f"{part}.key.{len(keys)}" in tensors:
            keys.append(tensors[f"{part}.key.{len(keys)}"])
            values.append(tensors[f"{part}.value.{len(values)}"])
        preset[part] = _OutputWriter(tensors[f"{part}.last_hidden_state"], _CacheWriter(keys, values))
    torch.save(preset, path, pickle_module=_writer_pickle, pickle_protocol=2)
