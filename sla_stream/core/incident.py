"""One incident's state as the engine keeps it: its recorded events, clocks and ledger.

The rules that act on it are in `engine.py`; this module only holds and serialises it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict

from sla_stream.core.clock import Clock
from sla_stream.core.ledger import Ledger
from sla_stream.core.models import EventType, Severity

# Tie-break for events at one instant: the order a person would expect them to have happened.
TYPE_ORDER: dict[str, int] = {
    "opened": 0,
    "severity_changed": 1,
    "status_changed": 2,
    "responded": 3,
    "resolved": 4,
    "reopened": 5,
    "closed": 6,
    "cancelled": 7,
}


class Recorded(NamedTuple):
    """What the engine keeps of an event: enough to re-derive the incident from its events."""

    event_id: str
    type: EventType
    occurred_at: datetime
    severity: Severity | None = None
    status: str | None = None
    contract_id: str | None = None
    category: str | None = None
    team: str | None = None

    @property
    def key(self) -> tuple[datetime, int, str]:
        return (self.occurred_at, TYPE_ORDER[self.type], self.event_id)


class IncidentState(BaseModel):
    """Everything about one incident: its events, its clocks and what it has published.

    `clocks`, `severity`, `status`, `category`, `team` and `final` reflect the events folded up
    to `horizon_at` (dues strictly before it fired, and at it too when `horizon_inclusive`); they
    are meaningful only when `evaluated`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: str
    contract_id: str | None = None
    contract_version: int | None = None
    parked: bool = False
    next_due_at: datetime | None = None
    opened_at: datetime | None = None
    severity: Severity | None = None
    status: str | None = None
    category: str | None = None
    team: str | None = None
    final: Literal["closed", "cancelled"] | None = None
    events: tuple[Recorded, ...] = ()
    horizon_at: datetime | None = None
    horizon_inclusive: bool = False
    evaluated: bool = False
    pending_since: datetime | None = None  # earliest event recorded since the last evaluation
    clocks: tuple[Clock, ...] = ()
    ledger: Ledger = Ledger()

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_defaults=True))

    @classmethod
    def from_bytes(cls, data: bytes) -> IncidentState:
        return cls.model_validate_json(data)
