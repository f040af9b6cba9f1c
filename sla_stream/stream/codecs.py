"""Ticks and contract records as the worker reads them off their topics.

Incident events are decoded by `sla_stream.core.event_codec`, the one decoder the worker, the
HTTP ingest, `sla-stream send` and `replay` share."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from sla_stream.core.terms import ContractRecord


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
