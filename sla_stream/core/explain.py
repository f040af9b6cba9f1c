"""How each clock of an incident got its deadline: the terms it counts on and its segments.

`explain(state, contract, now)` re-derives the incident with the engine itself (its recorded
events applied one at a time, in the engine's order, then `advance` to `now`), notes every
clock after each event, and cuts the time from each clock's start to `now` (or to its stop)
into segments: counting, paused (with the status), outside hours, holiday and exception (a
calendar `dates` entry), and `stopped_until_reopen` between a stop and a reopen. A running
stretch is cut by the calendar it counted on (`calendar_segments`), so the business seconds of
the segments sum to the clock's elapsed exactly (integer microseconds). No rule is decided here:
phases, targets and pauses are what the engine's clocks say they were. Pure; `now` is given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sla_stream.core import clock as clk
from sla_stream.core import engine
from sla_stream.core.calendar_segments import stretches
from sla_stream.core.calendar_weeks import US
from sla_stream.core.clock import OPEN_PHASES, Clock, utc
from sla_stream.core.incident import IncidentState, Recorded
from sla_stream.core.models import METRICS, IncidentEvent
from sla_stream.core.terms import ContractRecord, ContractTerms

PAUSED = "paused"
STOPPED_UNTIL_REOPEN = "stopped_until_reopen"


@dataclass(frozen=True)
class Segment:
    """One stretch of a clock's life with one reason; `business_us` is what it counted."""

    kind: str  # counting, paused, outside_hours, holiday, exception, stopped_until_reopen
    start_at: datetime
    end_at: datetime
    business_us: int
    severity: str  # the severity whose target the clock counted against then
    calendar: str  # that target's calendar name
    status: str | None = None  # the incident's status (paused segments)
    note: str | None = None  # the holiday or `dates` entry that decided it

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start_at": self.start_at.isoformat(),
            "end_at": self.end_at.isoformat(),
            "business_s": self.business_us / US,
            "severity": self.severity,
            "calendar": self.calendar,
            "status": self.status,
            "note": self.note,
        }


@dataclass(frozen=True)
class ClockExplanation:
    """One clock: its state at `as_of`, the target and calendar behind it, and its segments."""

    metric: str
    severity: str
    phase: str  # running, paused, stopped or cancelled (the clock's phase)
    breached: bool
    allowance_s: float
    elapsed_s: float  # business seconds at `as_of` (or at the stop): the segments' sum
    started_at: datetime
    ended_at: datetime | None  # the stop or cancel instant
    deadline_at: datetime | None  # when the allowance runs out (None while paused)
    breached_at: datetime | None
    clause_id: str
    clause_title: str
    calendar: str
    timezone: str
    segments: tuple[Segment, ...]
    cycle: int | None = None  # an update cycle's number (the open or last one is explained)

    @property
    def remaining_s(self) -> float | None:
        """Business seconds of the allowance left (negative once breached); None once ended."""
        if self.phase not in OPEN_PHASES:
            return None
        return round(self.allowance_s - self.elapsed_s, 6)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "severity": self.severity,
            "phase": self.phase,
            "breached": self.breached,
            "allowance_s": self.allowance_s,
            "elapsed_s": self.elapsed_s,
            "remaining_s": self.remaining_s,
            "started_at": self.started_at.isoformat(),
            "ended_at": _iso(self.ended_at),
            "deadline_at": _iso(self.deadline_at),
            "breached_at": _iso(self.breached_at),
            "clause_id": self.clause_id,
            "clause_title": self.clause_title,
            "calendar": self.calendar,
            "timezone": self.timezone,
            "segments": [s.to_json() for s in self.segments],
            **({"cycle": self.cycle} if self.cycle is not None else {}),
        }


@dataclass(frozen=True)
class Explanation:
    """An incident's clocks as of `as_of`; no clocks while it waits (no `opened`, or parked)."""

    incident_id: str
    as_of: datetime
    contract_id: str | None
    contract_version: int | None
    customer_id: str | None
    severity: str | None
    status: str | None
    waiting: str | None  # why there is nothing to explain yet, else None
    clocks: tuple[ClockExplanation, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "as_of": self.as_of.isoformat(),
            "contract_id": self.contract_id,
            "contract_version": self.contract_version,
            "customer_id": self.customer_id,
            "severity": self.severity,
            "status": self.status,
            "waiting": self.waiting,
            "clocks": [c.to_json() for c in self.clocks],
        }


# A note of the engine's clocks after an event: (instant, incident status, clocks by key: the
# metric, or `update#N` for an update cycle, so each cycle is a clock of its own).
Note = tuple[datetime, str | None, dict[str, Clock]]


def explain(state: IncidentState, contract: ContractRecord | None, now: datetime) -> Explanation:
    """Explain `state`'s clocks under `contract` as of `now` (aware); events dated after `now`
    are left out, as if read at `now`."""
    now = utc(now)
    base = Explanation(
        state.incident_id, now, state.contract_id, state.contract_version, None, None, None, None
    )
    terms = engine.terms_for(state, contract)
    if terms is None:
        if state.opened_at is not None:
            why = "parked: no contract terms"
        elif state.retired_lives and not state.events:
            why = "retired: its record passed its retention"
        else:
            why = "no opened event yet"
        return replace(base, waiting=why)
    notes, final = _replay(state, contract, now)
    if final is None:
        return replace(base, waiting=f"not opened by {now.isoformat()}")
    ordered = sorted(final.clocks, key=lambda c: METRICS.index(c.metric))
    clocks = tuple(_explain_clock(c.key, notes, final.clocks, terms, now) for c in ordered)
    return Explanation(
        state.incident_id, now, state.contract_id, terms.version, terms.customer_id,
        final.severity, final.status, None, clocks,
    )  # fmt: skip


def _replay(
    state: IncidentState, contract: ContractRecord | None, now: datetime
) -> tuple[list[Note], IncidentState | None]:
    """The engine's clocks after each event up to `now`, and the state advanced to `now`."""
    step = IncidentState(incident_id=state.incident_id, contract_version=state.contract_version)
    notes: list[Note] = []
    for rec in sorted(state.events, key=engine.event_key):
        if rec.occurred_at > now:
            break
        result = engine.apply(step, _event(state.incident_id, rec), contract)
        step = result.state
        if result.ignored is None and step.evaluated and step.opened_at is not None:
            at = max(rec.occurred_at, step.opened_at)
            notes.append((at, step.status, {c.key: c for c in step.clocks}))
    if not notes:
        return notes, None
    return notes, engine.advance(step, now, contract).state


def _event(incident_id: str, rec: Recorded) -> IncidentEvent:
    return IncidentEvent(
        event_id=rec.event_id, incident_id=incident_id, type=rec.type,
        occurred_at=rec.occurred_at, contract_id=rec.contract_id, severity=rec.severity,
        status=rec.status, category=rec.category, team=rec.team,
    )  # fmt: skip


def _explain_clock(
    key: str,
    notes: list[Note],
    final: tuple[Clock, ...],
    terms: ContractTerms,
    now: datetime,
) -> ClockExplanation:
    c = next(x for x in final if x.key == key)
    target = terms.target(c.metric, c.severity)
    assert target is not None, "a clock always counts against a target of its contract"
    cal = terms.calendar_of(target)
    segments = _segments(key, notes, terms, now)
    started = next(at for at, _, clocks in notes if key in clocks)
    ended = None if c.phase in OPEN_PHASES else (segments[-1].end_at if segments else started)
    if c.breached_at is not None:
        deadline = c.breached_at
    elif c.phase == PAUSED:
        deadline = None
    else:
        deadline = c.deadline_at or _last_deadline(key, notes)
    return ClockExplanation(
        metric=c.metric,
        severity=c.severity,
        phase=c.phase,
        breached=c.breached_at is not None,
        allowance_s=target.allowance_s,
        elapsed_s=clk.elapsed_at(c, now, cal),
        started_at=started,
        ended_at=c.stopped_at or ended,
        deadline_at=deadline,
        breached_at=c.breached_at,
        clause_id=target.clause_id,
        clause_title=target.clause_title,
        calendar=target.calendar,
        timezone=cal.timezone.key,
        segments=tuple(segments),
        cycle=c.cycle or None,
    )


def _segments(key: str, notes: list[Note], terms: ContractTerms, now: datetime) -> list[Segment]:
    """The clock's life from its start to `now` or its last stop, cut by phase and calendar."""
    out: list[Segment] = []
    for i, (at, status, clocks) in enumerate(notes):
        c = clocks.get(key)
        if c is None:
            continue
        end = notes[i + 1][0] if i + 1 < len(notes) else now
        if end <= at:
            continue
        target = terms.target(c.metric, c.severity)
        assert target is not None
        here = (c.severity, target.calendar)
        if c.phase == "running":
            for s in stretches(terms.calendar_of(target), at, end):
                out.append(
                    Segment(
                        s.kind, utc(s.start_at), utc(s.end_at), s.business_us, *here, note=s.note
                    )
                )
        elif c.phase == PAUSED:
            out.append(Segment(PAUSED, at, end, 0, *here, status=status))
        elif any(n[2].get(key, c).phase in OPEN_PHASES for n in notes[i + 1 :]):
            out.append(Segment(STOPPED_UNTIL_REOPEN, at, end, 0, *here))
    return _merged(out)


def _merged(segments: list[Segment]) -> list[Segment]:
    """Adjacent segments that say the same thing (an event that changed nothing) as one."""
    out: list[Segment] = []
    for s in segments:
        prev = out[-1] if out else None
        if prev is not None and prev.end_at == s.start_at and _same(prev, s):
            out[-1] = Segment(
                prev.kind, prev.start_at, s.end_at, prev.business_us + s.business_us,
                prev.severity, prev.calendar, prev.status, prev.note,
            )  # fmt: skip
        else:
            out.append(s)
    return out


def _same(a: Segment, b: Segment) -> bool:
    return (a.kind, a.severity, a.calendar, a.status, a.note) == (
        b.kind, b.severity, b.calendar, b.status, b.note,
    )  # fmt: skip


def _last_deadline(key: str, notes: list[Note]) -> datetime | None:
    """The deadline a stopped clock had just before its stop: none if it was paused then."""
    for _, _, clocks in reversed(notes):
        c = clocks.get(key)
        if c is not None and c.phase in OPEN_PHASES:
            return c.breached_at or c.deadline_at
    return None


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
