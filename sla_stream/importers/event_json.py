"""Events' fields to JSON lines, byte for byte as `IncidentEvent.to_json` writes them.

An import writes a hundred thousand events: building each model only to dump it again cost
more than reading the log. The fields come in the model's order with None left out (see
`servicenow.event_fields`), so orjson writes what pydantic would, except for the instant, whose
text pydantic's serialiser gives, once per distinct instant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import TypeAdapter

from sla_stream.core.models import Instant

_INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


class EventJson:
    """`fields` to one JSON line (newline included); remembers the text of each instant."""

    def __init__(self) -> None:
        # By zone and fold too: instants equal across zones, or one wall time's two folds, are
        # written with different offsets.
        self._instants: dict[tuple[datetime, Any, int], str] = {}

    def __call__(self, fields: dict[str, Any]) -> bytes:
        """The line of `fields`, whose `occurred_at` it replaces by its text (they are spent)."""
        at = fields["occurred_at"]
        key = (at, at.tzinfo, at.fold)
        text = self._instants.get(key)
        if text is None:
            text = self._instants[key] = _instant_text(at)
        fields["occurred_at"] = text
        # `+`, not OPT_APPEND_NEWLINE: the copy drops the 4 KiB buffer orjson's output keeps,
        # which matters for an import that holds every line to sort them by time.
        return orjson.dumps(fields) + b"\n"


def _instant_text(at: datetime) -> str:
    """pydantic's text of an aware instant: `isoformat()`'s where they agree (whole seconds,
    a non-zero offset in whole minutes, a four-digit year); pydantic's own elsewhere."""
    offset = at.utcoffset()
    if at.microsecond == 0 and offset and not offset.seconds % 60 and at.year >= 1000:
        return at.isoformat()
    return _INSTANT.dump_python(at, mode="json")
