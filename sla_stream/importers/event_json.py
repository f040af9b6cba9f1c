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
        # `+`, not OPT_APPEND_NEWLINE: the copy drops the 4 KiB buffer orjson's output keeps,
        # which matters for an import that holds every line to sort them by time.
        return orjson.dumps(fields, default=self._instant, option=_PASS_INSTANTS) + b"\n"

    def _instant(self, value: object) -> str:
        if not isinstance(value, datetime):
            raise TypeError(f"not JSON: {type(value).__name__}")
        key = (value, value.tzinfo, value.fold)
        text = self._instants.get(key)
        if text is None:
            text = self._instants[key] = _INSTANT.dump_python(value, mode="json")
        return text


_PASS_INSTANTS = orjson.OPT_PASSTHROUGH_DATETIME
