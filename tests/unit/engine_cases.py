"""Shared fixtures for the engine's unit tests: terms built in code, instants by name, a driver.

Days are named after the week of 2026-03-02 (a Monday): "Mon 09:00" .. "Sun 23:00", and
"Mon+ 09:00" .. for the week after. `office` is Monday to Friday 09:00-17:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sla_stream.core import engine
from sla_stream.core.engine import IncidentState
from sla_stream.core.models import Alert, IncidentEvent, Outcome
from sla_stream.core.terms import ContractRecord, ContractTerms, Target

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEK0 = datetime(2026, 3, 2, tzinfo=UTC)
OFFICE = {
    "timezone": "UTC",
    "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
}
ALWAYS = {"timezone": "UTC", "hours": "24x7"}
H = 3600.0


def at(text: str) -> datetime:
    """'Mon 09:30' -> 2026-03-02T09:30Z; 'Mon+ 09:30' -> a week later; seconds allowed."""
    day, clock = text.split()
    week = 1 if day.endswith("+") else 0
    index = DAYS.index(day.rstrip("+"))
    parts = [int(p) for p in clock.split(":")]
    hh, mm, ss = [*parts, 0][:3]
    return WEEK0 + timedelta(days=7 * week + index, hours=hh, minutes=mm, seconds=ss)


def target(
    metric: str,
    severity: str,
    hours: float,
    calendar: str,
    *,
    pauses: bool | None = None,
    thresholds: tuple[float, ...] = (0.5, 0.75, 0.9),
) -> Target:
    return Target(
        metric=metric,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        allowance_s=hours * H,
        calendar=calendar,
        warning_thresholds=thresholds,
        clause_id="C-FR" if metric == "first_response" else "C-RES",
        clause_title="Response" if metric == "first_response" else "Resolution",
        pauses=(metric == "resolution") if pauses is None else pauses,
    )


STANDARD_TARGETS = (
    target("first_response", "P1", 1, "24x7"),
    target("first_response", "P2", 2, "24x7"),
    target("first_response", "P3", 4, "office"),
    target("first_response", "P4", 8, "office"),
    target("resolution", "P1", 4, "24x7"),
    target("resolution", "P2", 8, "24x7"),
    target("resolution", "P3", 16, "office"),
    target("resolution", "P4", 40, "office"),
)


def terms(
    targets: tuple[Target, ...] = STANDARD_TARGETS, version: int = 1, **more: Any
) -> ContractTerms:
    return ContractTerms(
        contract_id="acme",
        version=version,
        customer_id="acme-co",
        tier="standard",
        timezone="UTC",
        pause_statuses=("pending_customer", "awaiting_customer"),
        calendars={"24x7": ALWAYS, "office": OFFICE},
        targets=targets,
        **more,
    )


def record(*versions: ContractTerms) -> ContractRecord:
    return ContractRecord(contract_id="acme", versions=versions or (terms(),))


def event(
    n: int | str, when: str, kind: str, incident: str = "INC-1", **fields: Any
) -> IncidentEvent:
    if kind == "opened":
        fields.setdefault("contract_id", "acme")
    return IncidentEvent(
        event_id=f"{incident}-{n}",
        incident_id=incident,
        type=kind,  # type: ignore[arg-type]
        occurred_at=at(when),
        **fields,
    )


def events(*rows: tuple[Any, ...]) -> list[IncidentEvent]:
    """Rows of (when, type, {fields}) numbered in order: event ids INC-1-1, INC-1-2, ..."""
    out = []
    for n, row in enumerate(rows, start=1):
        when, kind, *rest = row
        out.append(event(n, when, kind, **(rest[0] if rest else {})))
    return out


class Run:
    """Drives one incident through `apply` and `advance`, collecting every effect."""

    def __init__(self, contract: ContractRecord | None = None) -> None:
        self.contract = record() if contract is None else contract
        self.state: IncidentState | None = None
        self.alerts: list[Alert] = []
        self.outcomes: list[Outcome] = []
        self.steps: list[engine.Result] = []

    def take(self, step: engine.Result) -> engine.Result:
        self.state = step.state
        self.alerts += step.alerts
        self.outcomes += step.outcomes
        self.steps.append(step)
        return step

    def apply(
        self, ev: IncidentEvent, contract: ContractRecord | str | None = "default"
    ) -> engine.Result:
        c = self.contract if contract == "default" else contract
        return self.take(engine.apply(self.state, ev, c))  # type: ignore[arg-type]

    def advance(
        self, when: str | datetime, contract: ContractRecord | str | None = "default"
    ) -> engine.Result:
        c = self.contract if contract == "default" else contract
        now = at(when) if isinstance(when, str) else when
        assert self.state is not None
        return self.take(engine.advance(self.state, now, c))  # type: ignore[arg-type]

    def feed(self, evs: list[IncidentEvent], until: str | None = None) -> Run:
        """Apply events in the order given; like a runtime's ticks, advance to each due instant
        strictly before the next event first; at the end advance to `until`."""
        for ev in evs:
            self.run_dues(before=ev.occurred_at)
            self.apply(ev)
        if until is not None:
            self.run_dues(before=at(until))
            self.advance(until)
        return self

    def run_dues(self, before: datetime) -> None:
        while self.state is not None and self.state.next_due_at is not None:
            if self.state.next_due_at >= before:
                return
            self.advance(self.state.next_due_at)


def alert_rows(alerts: list[Alert]) -> list[tuple[Any, ...]]:
    """(kind, metric, threshold, elapsed_s, emitted_at, deadline) with instants as 'Mon 09:30'."""
    return [
        (a.kind, a.metric, a.threshold, a.elapsed_s, name(a.emitted_at), name(a.deadline))
        for a in alerts
    ]


def outcome_rows(outcomes: list[Outcome]) -> list[tuple[Any, ...]]:
    """(metric, met, elapsed_s, settled_at, completed_at), or ('withdrawn', metric, elapsed_s)."""
    return [
        ("withdrawn", o.metric, o.elapsed_s)
        if o.withdraws
        else (o.metric, o.met, o.elapsed_s, name(o.settled_at), name(o.completed_at))
        for o in outcomes
    ]


def name(instant: datetime | None) -> str | None:
    """The inverse of `at`, for readable comparisons."""
    if instant is None:
        return None
    delta = instant - WEEK0
    week, day = divmod(delta.days, 7)
    seconds = delta.seconds
    hh, rest = divmod(seconds, 3600)
    mm, ss = divmod(rest, 60)
    clock = f"{hh:02d}:{mm:02d}" + (f":{ss:02d}" if ss else "")
    return f"{DAYS[day]}{'+' * week} {clock}"
