"""One SLA clock's arithmetic in business time: accrue, schedule, fire, pause, stop, retarget.

Which clock does what on which event is decided in `engine.py`; this module only counts. Every
function is pure: it takes a frozen `Clock`, the clock's target and calendar, and an instant
(aware, normalised to UTC), and returns a new `Clock` plus, where something is announced, a
`Mark`. Durations are business seconds on the target's calendar (`*_s`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, NamedTuple, Protocol

from sla_stream.core.models import Metric, Severity
from sla_stream.core.terms import Target

Phase = Literal["running", "paused", "stopped", "cancelled"]
BREACH = 1.0


class Calendar(Protocol):
    """What a clock needs of `BusinessCalendar`."""

    def add(self, start: datetime, seconds: float) -> datetime: ...

    def elapsed(self, start: datetime, end: datetime) -> float: ...


class Clock(NamedTuple):
    """One metric's clock. `elapsed_s` counts business seconds up to `since` (running) or in
    total (paused, stopped); `sent` holds the fractions announced or counted as announced.

    A NamedTuple, not a model: the engine makes several per event, and `_replace` is cheap."""

    metric: Metric
    severity: Severity  # the severity whose target the clock counts against
    phase: Phase
    elapsed_s: float = 0.0
    since: datetime | None = None
    sent: tuple[float, ...] = ()
    due_at: datetime | None = None  # next threshold instant (running, not breached)
    due_fraction: float | None = None
    deadline_at: datetime | None = None  # breach instant as scheduled (running, not breached)
    breached_at: datetime | None = None
    stopped_at: datetime | None = None


class Mark(NamedTuple):
    """Something a clock announces: a warning, a breach, a met or a stop of a breached clock."""

    kind: str
    metric: str
    severity: str
    threshold: float | None
    at: datetime
    elapsed_s: float
    allowance_s: float
    deadline_at: datetime | None


def utc(instant: datetime) -> datetime:
    return instant if instant.tzinfo is UTC else instant.astimezone(UTC)


def fractions(target: Target) -> tuple[float, ...]:
    """The target's warning fractions in (0, 1), ascending, then the breach at 1.0."""
    return (*sorted({f for f in target.warning_thresholds if 0.0 < f < 1.0}), BREACH)


def start(target: Target, at: datetime, cal: Calendar, *, paused: bool) -> Clock:
    clock = Clock(
        metric=target.metric,
        severity=target.severity,
        phase="paused" if paused else "running",
        since=None if paused else at,
    )
    return schedule(clock, target, cal)


def elapsed_at(clock: Clock, at: datetime, cal: Calendar) -> float:
    """Business seconds the clock shows at `at` (not before `since`)."""
    if clock.phase != "running" or clock.since is None or at <= clock.since:
        return clock.elapsed_s
    return round(clock.elapsed_s + cal.elapsed(clock.since, at), 6)


def accrue(clock: Clock, at: datetime, cal: Calendar) -> Clock:
    """Fold the running segment up to `at` into `elapsed_s`."""
    if clock.phase != "running" or clock.since is None or at <= clock.since:
        return clock
    return clock._replace(elapsed_s=elapsed_at(clock, at, cal), since=at)


def schedule(clock: Clock, target: Target, cal: Calendar) -> Clock:
    """Recompute the next due threshold and the deadline; none unless running and unbreached."""
    if clock.phase != "running" or clock.breached_at is not None or clock.since is None:
        if clock.due_at is None and clock.deadline_at is None:
            return clock
        return clock._replace(due_at=None, due_fraction=None, deadline_at=None)
    allowance = target.allowance_s
    deadline = utc(cal.add(clock.since, max(allowance - clock.elapsed_s, 0.0)))
    fraction = next(f for f in fractions(target) if f not in clock.sent)
    if fraction == BREACH:
        due = deadline
    else:
        due = utc(cal.add(clock.since, max(fraction * allowance - clock.elapsed_s, 0.0)))
    return clock._replace(due_at=due, due_fraction=fraction, deadline_at=deadline)


def fire(clock: Clock, target: Target, cal: Calendar) -> tuple[Clock, Mark]:
    """Announce the due threshold at its instant: a warning, or the breach at 1.0."""
    assert clock.due_at is not None and clock.due_fraction is not None
    at, fraction, allowance = clock.due_at, clock.due_fraction, target.allowance_s
    if fraction == BREACH:
        mark = Mark("breach", clock.metric, clock.severity, BREACH, at, allowance, allowance, at)
        sent = _with(clock.sent, fractions(target))
        clock = clock._replace(sent=sent, breached_at=at)
    else:
        elapsed = round(fraction * allowance, 6)
        mark = Mark(
            "warning", clock.metric, clock.severity, fraction, at, elapsed, allowance,
            clock.deadline_at,
        )  # fmt: skip
        clock = clock._replace(sent=_with(clock.sent, (fraction,)))
    return schedule(clock, target, cal), mark


def pause(clock: Clock, at: datetime, target: Target, cal: Calendar) -> Clock:
    if clock.phase != "running":
        return clock
    clock = accrue(clock, at, cal)._replace(phase="paused", since=None)
    return schedule(clock, target, cal)


def resume(clock: Clock, at: datetime, target: Target, cal: Calendar) -> Clock:
    if clock.phase != "paused":
        return clock
    clock = clock._replace(phase="running", since=at)
    return schedule(clock, target, cal)


def stop(clock: Clock, at: datetime, target: Target, cal: Calendar) -> tuple[Clock, Mark]:
    """Stop a running or paused clock: `met` inside the allowance, else `stopped` (breached)."""
    deadline = clock.deadline_at
    clock = accrue(clock, at, cal)
    if clock.breached_at is None:
        kind, deadline_at = "met", deadline
    else:
        kind, deadline_at = "stopped", clock.breached_at
    mark = Mark(
        kind, clock.metric, clock.severity, None, at, clock.elapsed_s, target.allowance_s,
        deadline_at,
    )  # fmt: skip
    stopped = clock._replace(
        phase="stopped",
        since=None,
        stopped_at=at,
        due_at=None,
        due_fraction=None,
        deadline_at=None,
    )
    return stopped, mark


def cancel(clock: Clock, at: datetime, cal: Calendar) -> Clock:
    clock = accrue(clock, at, cal)
    return clock._replace(phase="cancelled", since=None, due_at=None, due_fraction=None)


def reopen(clock: Clock, at: datetime, target: Target, cal: Calendar, *, paused: bool) -> Clock:
    """Resume a stopped clock with its elapsed kept (the engine decides whether it may)."""
    clock = clock._replace(
        phase="paused" if paused else "running",
        since=None if paused else at,
        stopped_at=None,
    )
    return schedule(clock, target, cal)


def retarget(
    clock: Clock, new: Target, at: datetime, old_cal: Calendar, new_cal: Calendar
) -> tuple[Clock, Mark | None]:
    """Count against `new` from `at` on, with the elapsed business seconds carried over.

    Fractions already sent are not sent again. If the new allowance is already spent, only the
    breach is announced, at `at` (even while paused). Otherwise, of the new fractions already
    passed and never sent, only the highest is announced, at `at`; the lower ones count as sent.
    A highest fraction reached exactly (elapsed equal to it) is not announced here but left due
    at `at` (or when a paused clock runs again), so events at `at` come first: a stop then is
    met (elapsed <= allowance) and a warning due at the stop instant does not fire.
    """
    clock = accrue(clock, at, old_cal)
    clock = clock._replace(severity=new.severity, since=at if clock.phase == "running" else None)
    elapsed, allowance = clock.elapsed_s, new.allowance_s
    mark: Mark | None = None
    reached = [
        f for f in fractions(new) if round(f * allowance, 6) <= elapsed and f not in clock.sent
    ]
    if reached and round(reached[-1] * allowance, 6) == elapsed:
        clock = clock._replace(sent=_with(clock.sent, reached[:-1]))
        return schedule(clock, new, new_cal), None
    if elapsed >= allowance:
        sent = _with(clock.sent, fractions(new))
        clock = clock._replace(sent=sent, breached_at=at)
        mark = Mark("breach", clock.metric, new.severity, BREACH, at, elapsed, allowance, at)
        return schedule(clock, new, new_cal), mark
    passed = reached  # all below the allowance here, none exactly on its instant
    clock = schedule(clock._replace(sent=_with(clock.sent, passed)), new, new_cal)
    if passed:
        mark = Mark(
            "warning", clock.metric, new.severity, max(passed), at, elapsed, allowance,
            clock.deadline_at,
        )  # fmt: skip
    return clock, mark


def _with(sent: tuple[float, ...], more: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    return tuple(sorted(set(sent).union(more)))
