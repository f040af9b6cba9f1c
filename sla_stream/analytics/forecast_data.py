"""Decision-point rows from a history of incident events: the engine and the desk, in time order.

One sweep over every incident's events in `occurred_at` order (with each incident's dues firing
at their own instants, as in a replay) keeps the engine state of each incident and a `DeskBook`
of the desk. At each decision point of an incident (its first event, or a number of hours after
it opened while it is still unresolved) the row takes `features_at` of that moment: only what
was known then. Labels are attached afterwards by the caller; nothing here reads them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sla_stream.core import engine
from sla_stream.core.clock import utc
from sla_stream.core.incident import IncidentState
from sla_stream.core.models import IncidentEvent, Outcome
from sla_stream.core.risk_desk import DeskBook
from sla_stream.core.risk_features import OPENED_FACTS, Features, features_at
from sla_stream.core.terms import ContractRecord

FIRST_EVENT = "first_event"
# Decision points: name -> hours after opening (None: the incident's first event after opening).
DECISION_POINTS: dict[str, float | None] = {
    FIRST_EVENT: None,
    "4h": 4.0,
    "24h": 24.0,
    "48h": 48.0,
    "96h": 96.0,
}
LEAVES_BACKLOG = frozenset({"resolved", "closed", "cancelled"})
_EVENT, _DUE, _DECIDE = 0, 1, 2  # at one instant: events first, then dues, then decisions


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One incident at one decision point: when, what was known, and when its outcome was."""

    incident_id: str
    point: str
    at: datetime
    opened_at: datetime
    outcome_known_at: datetime | None  # its final event (closed/cancelled), if it has one
    features: Features


@dataclass(frozen=True, slots=True)
class Incident:
    incident_id: str
    events: tuple[IncidentEvent, ...]  # in the engine's order

    @property
    def opened(self) -> IncidentEvent:
        return next(e for e in self.events if e.type == "opened")

    def first_event_at(self) -> datetime:
        """The first event after opening (the ticketing system's first save), else opening."""
        opened = self.opened
        later = [e.occurred_at for e in self.events if e is not opened]
        return utc(min(later)) if later else utc(opened.occurred_at)

    def outcome_known_at(self) -> datetime | None:
        final = [e.occurred_at for e in self.events if e.type in ("closed", "cancelled")]
        return utc(max(final)) if final else None


def group_incidents(events: Iterable[IncidentEvent]) -> list[Incident]:
    """Events grouped per incident (incidents without an `opened` event are left out)."""
    by_id: dict[str, list[IncidentEvent]] = {}
    for event in events:
        by_id.setdefault(event.incident_id, []).append(event)
    out = []
    for incident_id, evs in by_id.items():
        evs.sort(key=lambda e: (utc(e.occurred_at), engine.TYPE_ORDER[e.type], e.event_id))
        if any(e.type == "opened" for e in evs):
            out.append(Incident(incident_id, tuple(evs)))
    return out


def decision_rows(
    incidents: list[Incident],
    contracts: Mapping[str, ContractRecord],
    points: Mapping[str, float | None] = DECISION_POINTS,
) -> list[DecisionRow]:
    """Every (incident, decision point) row the sweep reaches, in decision-time order."""
    return _Sweep(incidents, contracts).run(points)


def rows_and_verdicts(
    incidents: list[Incident],
    contracts: Mapping[str, ContractRecord],
    points: Mapping[str, float | None] = DECISION_POINTS,
) -> tuple[list[DecisionRow], dict[str, bool]]:
    """The rows, and the engine's own verdict per incident: whether its resolution clock
    breached (as `sla.outcomes` and a replay's outcomes.jsonl say it)."""
    sweep = _Sweep(incidents, contracts)
    rows = sweep.run(points)
    return rows, {i: not met for i, (_, met) in sweep.verdicts.items()}


class _Sweep:
    def __init__(self, incidents: list[Incident], contracts: Mapping[str, ContractRecord]):
        self.incidents = {i.incident_id: i for i in incidents}
        self.contracts = contracts
        self.states: dict[str, IncidentState] = {}
        self.book = DeskBook()
        self.heap: list[tuple[datetime, int, int, str, object]] = []
        self.seq = 0
        self.rows: list[DecisionRow] = []
        self.verdicts: dict[str, tuple[str, bool]] = {}  # incident -> live resolution outcome

    def push(self, at: datetime, kind: int, incident_id: str, payload: object) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, kind, self.seq, incident_id, payload))

    def run(self, points: Mapping[str, float | None]) -> list[DecisionRow]:
        for inc in self.incidents.values():
            for event in inc.events:
                self.push(utc(event.occurred_at), _EVENT, inc.incident_id, event)
            opened_at = utc(inc.opened.occurred_at)
            for name, hours in points.items():
                at = inc.first_event_at() if hours is None else opened_at + timedelta(hours=hours)
                self.push(at, _DECIDE, inc.incident_id, name)
        while self.heap:
            at, kind, _, incident_id, payload = heapq.heappop(self.heap)
            if kind == _EVENT:
                assert isinstance(payload, IncidentEvent)
                self.on_event(incident_id, payload)
            elif kind == _DUE:
                self.on_due(incident_id, at)
            else:
                self.decide(incident_id, str(payload), at, points[str(payload)] is None)
        return self.rows

    def contract(self, incident_id: str) -> ContractRecord | None:
        return self.contracts.get(self.incidents[incident_id].opened.contract_id or "")

    def on_event(self, incident_id: str, event: IncidentEvent) -> None:
        before = self.states.get(incident_id)
        step = engine.apply(before, event, self.contract(incident_id))
        self.after_step(incident_id, step)
        at, team = utc(event.occurred_at), step.state.team
        if event.type == "opened":
            self.book.opened(incident_id, team, at)
        elif event.type in LEAVES_BACKLOG:
            opened_at = step.state.opened_at or at
            self.book.left(incident_id, at, (at - opened_at).total_seconds() / 3600)
        elif event.type == "reopened":
            self.book.returned(incident_id, team)
        else:
            self.book.moved(incident_id, team)

    def on_due(self, incident_id: str, at: datetime) -> None:
        state = self.states[incident_id]
        if state.next_due_at is not None and state.next_due_at <= at:
            self.after_step(incident_id, engine.advance(state, at, self.contract(incident_id)))

    def after_step(self, incident_id: str, step: engine.Result) -> None:
        self.states[incident_id] = step.state
        self.settle(step.outcomes)
        if step.next_due_at is not None:
            self.push(step.next_due_at, _DUE, incident_id, None)

    def settle(self, outcomes: Iterable[Outcome]) -> None:
        for o in outcomes:
            if o.metric != "resolution":
                continue
            if o.withdraws is not None:
                if self.verdicts.get(o.incident_id, ("",))[0] == o.withdraws:
                    del self.verdicts[o.incident_id]
                continue
            self.verdicts[o.incident_id] = (o.outcome_id, o.met)
            self.book.clock_settled(o.team, utc(o.settled_at), o.met, o.completed_at)

    def decide(self, incident_id: str, point: str, at: datetime, always: bool) -> None:
        state = self.states.get(incident_id)
        contract = self.contract(incident_id)
        if state is None or contract is None:
            return
        step = engine.advance(state, at, contract)
        self.after_step(incident_id, step)
        state = step.state
        if not always and not _unresolved(state):
            return  # resolved by then: no decision to make
        terms = contract.version(state.contract_version or 1)
        if terms is None or state.opened_at is None:
            return
        inc = self.incidents[incident_id]
        facts = {k: inc.opened.attributes.get(k) for k in OPENED_FACTS}
        feats = features_at(state, at, terms, self.book.state(state.team, at), facts)
        self.rows.append(
            DecisionRow(incident_id, point, at, state.opened_at, inc.outcome_known_at(), feats)
        )


def _unresolved(state: IncidentState) -> bool:
    """Open at its last state: not final, and its resolution clock (if any) still counting."""
    if state.final is not None:
        return False
    clocks = [c for c in state.clocks if c.metric == "resolution"]
    return all(c.phase in ("running", "paused") for c in clocks)
