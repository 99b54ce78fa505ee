"""The client's messages of docs/tts-protocol.md, parsed and validated into typed values.

Every mistake becomes a StreamError with the protocol's code (`bad_message`, `bad_option`), so the server
answers it with a named error and never with a traceback.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from s2s_tts.engine_api import Priority, StreamError

# The worker's own limits for S2S_TTS_CFG and S2S_TTS_STEPS (handler/pipeline-config.ts).
CFG_RANGE = (0.1, 10.0)
STEPS_RANGE = (1, 50)
PRIORITIES: tuple[Priority, ...] = ("confirmed", "speculative")


@dataclass(frozen=True)
class Open:
    voice: str | None
    cfg: float | None
    steps: int | None
    priority: Priority


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Promote:
    pass


@dataclass(frozen=True)
class End:
    pass


@dataclass(frozen=True)
class Cancel:
    pass


Message = Open | Text | Promote | End | Cancel


def _bad(message: str) -> StreamError:
    return StreamError("bad_message", message)


def _optional(fields: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = fields.get(name)
    if value is None:
        return None
    # bool is an int in Python: never take true for a number.
    if isinstance(value, bool) or not isinstance(value, kind):
        raise _bad(f"open: {name} must be {what}, got {json.dumps(value)}")
    return value


def parse_message(frame: str | bytes) -> Message:
    """One client frame -> a message. Raises StreamError(bad_message | bad_option)."""
    if isinstance(frame, bytes):
        raise _bad("messages are JSON text frames; a binary frame came")
    try:
        fields = json.loads(frame)
    except ValueError as error:
        raise _bad(f"not JSON: {error}") from None
    if not isinstance(fields, dict):
        raise _bad("a message is a JSON object with a `type`")
    kind = fields.get("type")
    if kind == "open":
        return _parse_open(fields)
    if kind == "text":
        text = fields.get("text")
        if not isinstance(text, str):
            raise _bad("text: `text` must be a string")
        return Text(text)
    if kind == "promote":
        return Promote()
    if kind == "end":
        return End()
    if kind == "cancel":
        return Cancel()
    raise _bad(f"unknown message type {json.dumps(kind)} (open, text, promote, end, cancel)")


def _parse_open(fields: dict[str, Any]) -> Open:
    voice = _optional(fields, "voice", str, "a string")
    cfg = _optional(fields, "cfg", (int, float), "a number")
    steps = _optional(fields, "steps", int, "an integer")
    priority = fields.get("priority", "confirmed")
    if priority not in PRIORITIES:
        raise _bad(f"open: priority must be confirmed or speculative, got {json.dumps(priority)}")
    if cfg is not None and (not math.isfinite(cfg) or not CFG_RANGE[0] <= cfg <= CFG_RANGE[1]):
        raise StreamError("bad_option", f"cfg must be within {CFG_RANGE[0]}..{CFG_RANGE[1]}, got {cfg}")
    if steps is not None and not STEPS_RANGE[0] <= steps <= STEPS_RANGE[1]:
        raise StreamError("bad_option", f"steps must be within {STEPS_RANGE[0]}..{STEPS_RANGE[1]}, got {steps}")
    return Open(voice=voice, cfg=None if cfg is None else float(cfg), steps=steps, priority=priority)
