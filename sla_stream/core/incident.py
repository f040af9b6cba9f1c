"""One incident's state as the engine keeps it: its recorded events, clocks and ledger.

The rules that act on it, and the order of its events, are in `engine.py`; this module only
holds and serialises it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict

from sla_stream.core.clock import Clock, utc
from sla_stream.core.ledger import AlertBody, Ledger, LiveAlert, LiveOutcome, OutcomeBody
from sla_stream.core.models import EventType, IncidentEvent, Severity


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

    @classmethod
    def of(cls, event: IncidentEvent, contract_id: str | None) -> Recorded:
        return cls(
            event_id=event.event_id,
            type=event.type,
            occurred_at=utc(event.occurred_at),
            severity=event.severity,
            status=event.status,
            contract_id=contract_id,
            category=event.category,
            team=event.team,
        )


EventKey = Callable[[Recorded], Any]


def in_order(events: tuple[Recorded, ...], rec: Recorded, key: EventKey) -> tuple[Recorded, ...]:
    """`events` (in `key` order) with `rec` inserted after those of equal or lower key:
    appended, the usual case, without a bisection calling `key` at every step."""
    if not events or key(rec) >= key(events[-1]):
        return (*events, rec)
    merged = list(events)
    bisect.insort(merged, rec, key=key)
    return tuple(merged)


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
    final: EventType | None = None  # the final event's type, once one is folded
    events: tuple[Recorded, ...] = ()
    horizon_at: datetime | None = None
    horizon_inclusive: bool = False
    evaluated: bool = False
    pending_since: datetime | None = None  # earliest event recorded since the last evaluation
    clocks: tuple[Clock, ...] = ()
    ended: tuple[str, ...] = ()  # metrics without a clock whose stop has passed (engine rule 1)
    answered: bool = False  # a first response was folded (update cycles start at it)
    ledger: Ledger = Ledger()
    retired_lives: int = 0  # earlier lives of this id, retired after their retention

    def with_fields(self, update: dict[str, Any], *, in_place: bool = False) -> IncidentState:
        """A copy with `update` (trusted, like `model_copy`): one per engine step, without
        pydantic's generic copying of every attribute, which showed in the profile. With
        `in_place`, this state itself, updated: only for an owner that keeps no other reference
        to it (a replay's own states), as the model is frozen for everyone else."""
        if in_place:
            self.__dict__.update(update)
            self.__pydantic_fields_set__.update(update.keys())
            return self
        new = _new(IncidentState)
        _set(new, "__dict__", {**self.__dict__, **update})
        _set(new, "__pydantic_fields_set__", self.__pydantic_fields_set__ | update.keys())
        _set(new, "__pydantic_extra__", None)
        _set(new, "__pydantic_private__", None)
        return new

    def folded_before(self, rec: Recorded, key: EventKey) -> bool:
        """Whether `rec` comes after everything this evaluated state has folded, dues included,
        events ordered by `key`."""
        if not self.evaluated or self.parked or self.horizon_at is None:
            return False
        if rec.occurred_at > self.horizon_at:
            return True
        return (
            rec.occurred_at == self.horizon_at
            and not self.horizon_inclusive
            and (not self.events or key(rec) > key(self.events[-1]))
        )

    def retired(self) -> IncidentState | None:
        """What is kept of the record once its retention has passed (engine rule 11): an
        incident that opened leaves a marker with no events counting its lives, so a later
        incident of the same id gets ids of its own; one that never opened published nothing and
        leaves nothing (None)."""
        if self.opened_at is None:
            return None
        return _TEMPLATE.with_fields(
            {"incident_id": self.incident_id, "retired_lives": self.retired_lives + 1}
        )

    def to_bytes(self) -> bytes:
        """Compact JSON (orjson): fields at their defaults left out, tuples as arrays."""
        fields = {"v": FORMAT}
        for name, value in self.__dict__.items():
            if value != _DEFAULTS[name]:
                fields[name] = value
        return orjson.dumps(fields, default=tuple, option=orjson.OPT_UTC_Z)

    @classmethod
    def from_bytes(cls, data: bytes) -> IncidentState:
        """The state `to_bytes` wrote. Not validated field by field: it is the engine's own
        record (the worker's table), and checking every tuple cost five times the decoding."""
        fields = orjson.loads(data)
        if fields.pop("v", None) != FORMAT:
            raise ValueError(f"not an incident state of format {FORMAT}")
        for name in ("next_due_at", "opened_at", "horizon_at", "pending_since"):
            if name in fields:
                fields[name] = _at(fields[name])
        if "events" in fields:
            fields["events"] = tuple(
                Recorded(e[0], e[1], _at(e[2]), *e[3:]) for e in fields["events"]
            )
        if "clocks" in fields:
            fields["clocks"] = tuple(_clock(c) for c in fields["clocks"])
        if "ended" in fields:
            fields["ended"] = tuple(fields["ended"])
        if "ledger" in fields:
            fields["ledger"] = _ledger(fields["ledger"])
        return _TEMPLATE.with_fields(fields)


FORMAT = 1
_new, _set = object.__new__, object.__setattr__
_DEFAULTS = {name: f.default for name, f in IncidentState.model_fields.items()}
_TEMPLATE = IncidentState(incident_id="-")


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _clock(c: list[Any]) -> Clock:
    return Clock(
        c[0], c[1], c[2], c[3], _at(c[4]), tuple(c[5]), _at(c[6]), c[7], _at(c[8]), _at(c[9]),
        _at(c[10]), *c[11:12], *[_at(x) for x in c[12:13]],
    )  # fmt: skip


def _ledger(raw: list[Any]) -> Ledger:
    alerts, outcomes, revisions = raw
    return Ledger(
        tuple(LiveAlert(a, AlertBody(*b[:6], _at(b[6]), _at(b[7]), b[8], b[9])) for a, b in alerts),
        tuple(
            LiveOutcome(o, OutcomeBody(*b[:5], _at(b[5]), _at(b[6]), b[7], b[8]))
            for o, b in outcomes
        ),
        revisions,
    )
