"""Bytes to an `IncidentEvent`: the one decoder of incident events.

The worker (the events topic), the HTTP ingest, `sla-stream send` and `sla-stream replay` all
decode with `decode_event`, so what one of them refuses the others refuse too, for the same
reason: `null_value` (a tombstone), `empty`, `oversize`, `not_utf8`, `not_json`, `too_deep`,
`invalid` (with the first failing field). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from sla_stream.core.errors import InvalidEvent
from sla_stream.core.models import MAX_DETAIL_CHARS, IncidentEvent

# Levels of JSON nesting an event may have, the event object included. orjson parses up to
# 1,024 levels but writes only 254, and an incident's attributes are a few levels at most.
MAX_NESTING = 32


def check_nesting(value: Any, limit: int = MAX_NESTING) -> None:
    """Raise `InvalidEvent` (reason `too_deep`) when `value` nests deeper than `limit` levels.

    The field named is the event's top-level field holding the deepest part, when there is one.
    """
    if not isinstance(value, dict | list):
        return
    top = value.items() if isinstance(value, dict) else enumerate(value)
    for name, child in top:
        if _deeper_than(child, limit - 1):
            field = name if isinstance(value, dict) else None
            raise InvalidEvent(
                f"nested deeper than {limit} levels (objects and arrays)",
                reason="too_deep",
                field=field,
            )


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` levels (a scalar 0, `[]` 1, `[[]]` 2)."""
    if not isinstance(value, dict | list):
        return limit < 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def decode_event(raw: bytes | None, max_bytes: int | None = None) -> IncidentEvent:
    """Parse once, validate once; raise `InvalidEvent` with a reason for the dead-letter topic.

    Reasons: `null_value` (a tombstone), `empty`, `oversize`, `not_utf8`, `not_json`,
    `too_deep`, `invalid` (with the first failing field). The HTTP ingest refuses with the same.
    """
    if raw is None:
        raise InvalidEvent("a null value (a tombstone) is not an event", reason="null_value")
    if not raw:
        raise InvalidEvent("empty message", reason="empty")
    if max_bytes is not None and len(raw) > max_bytes:
        raise InvalidEvent(f"{len(raw)} bytes exceeds the limit of {max_bytes}", reason="oversize")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise not_json(raw, exc) from exc
    if not isinstance(data, dict):
        raise InvalidEvent("an event must be a JSON object", reason="invalid")
    check_nesting(data)
    try:
        return IncidentEvent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(event)'}: {e['msg']}" for e in exc.errors()
        )
        if len(message) > MAX_DETAIL_CHARS:  # many errors, or long field names
            message = f"{message[:MAX_DETAIL_CHARS]}... ({len(exc.errors())} errors)"
        raise InvalidEvent(message, reason="invalid", field=field) from exc


def not_json(raw: bytes, exc: orjson.JSONDecodeError) -> InvalidEvent:
    """Tell bytes that are not UTF-8 from text that is not JSON (checked only on failure)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return InvalidEvent(
            f"not UTF-8: byte {bad.start} is {raw[bad.start : bad.start + 1]!r}",
            reason="not_utf8",
        )
    return InvalidEvent(f"not JSON: {exc}", reason="not_json")
