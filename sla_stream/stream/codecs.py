"""Decode raw bytes from the topics into models, deciding what is a dead letter and why."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from pydantic import ValidationError

from sla_stream.core.errors import InvalidEvent
from sla_stream.core.models import IncidentEvent
from sla_stream.core.terms import ContractRecord


def decode_event(raw: bytes | None, max_bytes: int) -> IncidentEvent:
    """Parse once, validate once; raise `InvalidEvent` with a reason for the dead-letter topic.

    Reasons: `empty`, `oversize`, `not_json`, `invalid` (with the first failing field).
    """
    if not raw:
        raise InvalidEvent("empty message", reason="empty")
    if len(raw) > max_bytes:
        raise InvalidEvent(f"{len(raw)} bytes exceeds the limit of {max_bytes}", reason="oversize")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not JSON: {exc}", reason="not_json") from exc
    if not isinstance(data, dict):
        raise InvalidEvent("an event must be a JSON object", reason="invalid")
    try:
        return IncidentEvent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(event)'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidEvent(message, reason="invalid", field=field) from exc


def encode_tick(now: datetime) -> bytes:
    return orjson.dumps({"at": now.astimezone(UTC).isoformat()})


def decode_tick(raw: bytes) -> datetime:
    return datetime.fromisoformat(orjson.loads(raw)["at"])


class ContractCache:
    """Parsed contract records, re-parsed only when the stored bytes change."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[bytes, ContractRecord]] = {}

    def get(self, contract_id: str, raw: bytes | None) -> ContractRecord | None:
        if raw is None:
            return None
        cached = self._parsed.get(contract_id)
        if cached is not None and cached[0] == raw:
            return cached[1]
        record = ContractRecord.model_validate_json(raw)
        self._parsed[contract_id] = (raw, record)
        return record
