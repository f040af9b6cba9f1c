"""One SLA clock's arithmetic in business time: accrue, schedule, fire, pause, stop, retarget.

Which clock does what on which event, and what it announces, is decided in `engine.py`; this
module only counts. Every function is pure: it takes a frozen `Clock`, the clock's target and
calendar, and an instant (aware, normalised to UTC), and returns a new `Clock`. Durations are
business seconds on the target's calendar (`*_s`).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Literal, NamedTuple, Protocol

from sla_stream.core.models import Metric, Severity
from sla_stream.core.terms import Target

Phase = Literal["running", "paused", "stopped", "cancelled"]
OPEN_PHASES: frozenset[str] = frozenset({"running", "paused"})  # counting, or able to again
BREACH = 1.0  # the fraction of the allowance at which a clock is breached


class Calendar(Protocol):
    """What a clock needs of `BusinessCalendar`."""

    def add(self, start: datetime, seconds: float) -> datetime: ...

    def add_utc(self, start: datetime, seconds: float) -> datetime: ...

    def elapsed(self, start: datetime, end: datetime) -> float: ...


class Clock(NamedTuple):
    """One metric's clock. `elapsed_s` counts business seconds up to `since` (running) or in
    total (paused, stopped); `sent` holds the fractions announced or counted as announced.

    A NamedTuple, not a model: the engine makes several per event, and `_replace` is cheap.
    Stored as an array (`IncidentState.to_bytes`): fields keep their positions."""

    metric: Metric
    severity: Severity  # the severity whose target the clock counts against
    phase: Phase
    elapsed_s: float = 0.0
    since: datetime | None = None
    sent: tuple[float, ...] = ()
    next_due_at: datetime | None = None  # when `next_fraction` falls due (running, unbreached)
    next_fraction: float | None = None  # the next threshold to announce; BREACH last
    deadline_at: datetime | None = None  # breach instant as scheduled (running, not breached)
    breached_at: datetime | None = None
    stopped_at: datetime | None = None
    cycle: int = 0  # a cycling metric's cycle number (1, 2, ...); 0 for the others
    started_at: datetime | None = None  # when a cycle started; None for the others

    @property
    def key(self) -> str:
        """What the clock's alerts and outcome are filed under: the metric, or for a cycle
        `metric#cycle`, so every cycle has its own slots and ids."""
        return f"{self.metric}#{self.cycle}" if self.cycle else self.metric


@functools.lru_cache(maxsize=4096)  # a few metrics, and the cycles of cycling ones
def split_key(key: str) -> tuple[str, int | None]:
    """A `Clock.key` as (metric, cycle or None)."""
    metric, _, cycle = key.partition("#")
    return metric, int(cycle) if cycle else None


def utc(instant: datetime) -> datetime:
    return instant if instant.tzinfo is UTC else instant.astimezone(UTC)


def fractions(target: Target) -> tuple[float, ...]:
    """The target's warning fractions in (0, 1), ascending, then the breach at 1.0."""
    return _fractions(target.warning_thresholds)


@functools.lru_cache(maxsize=256)
def _fractions(thresholds: tuple[float, ...]) -> tuple[float, ...]:
    return (*sorted({f for f in thresholds if 0.0 < f < 1.0}), BREACH)


def start(target: Target, at: datetime, cal: Calendar, *, paused: bool, cycle: int = 0) -> Clock:
    """A clock from `at`; `cycle` > 0 starts that cycle of a cycling metric."""
    clock = Clock(
        metric=target.metric,
        severity=target.severity,
        phase="paused" if paused else "running",
        since=None if paused else at,
        cycle=cycle,
        started_at=at if cycle else None,
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


def schedule(
    clock: Clock, target: Target, cal: Calendar, deadline_at: datetime | None = None
) -> Clock:
    """Recompute the next due threshold and the deadline; none unless running and unbreached.
    `deadline_at`, if given, is the deadline already known for the clock's `since` and
    `elapsed_s` (a fired warning changes neither): the calendar is not asked again."""
    if clock.phase != "running" or clock.breached_at is not None or clock.since is None:
        if clock.next_due_at is None and clock.deadline_at is None:
            return clock
        return clock._replace(next_due_at=None, next_fraction=None, deadline_at=None)
    allowance, elapsed, since = target.allowance_s, clock.elapsed_s, clock.since
    deadline = deadline_at or cal.add_utc(since, max(allowance - elapsed, 0.0))
    sent = clock.sent
    fraction = next(f for f in fractions(target) if f not in sent)
    if fraction == BREACH:
        due = deadline
    else:
        due = cal.add_utc(since, max(fraction * allowance - elapsed, 0.0))
    return clock._replace(next_due_at=due, next_fraction=fraction, deadline_at=deadline)


def fire(clock: Clock, target: Target, cal: Calendar) -> Clock:
    """Pass the due threshold at its instant: mark it sent (all of them, and breached, at 1.0)."""
    assert clock.next_due_at is not None and clock.next_fraction is not None
    if clock.next_fraction == BREACH:
        return schedule(breach(clock, clock.next_due_at, target), target, cal)
    clock = clock._replace(sent=_with(clock.sent, (clock.next_fraction,)))
    return schedule(clock, target, cal, clock.deadline_at)


def breach(clock: Clock, at: datetime, target: Target) -> Clock:
    """Breached at `at`: every fraction counts as sent. Not rescheduled (the caller does)."""
    return clock._replace(sent=_with(clock.sent, fractions(target)), breached_at=at)


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


def stop(clock: Clock, at: datetime, cal: Calendar) -> Clock:
    """Stop a running or paused clock at `at`, its elapsed accrued up to then."""
    return accrue(clock, at, cal)._replace(
        phase="stopped",
        since=None,
        stopped_at=at,
        next_due_at=None,
        next_fraction=None,
        deadline_at=None,
    )


def cancel(clock: Clock, at: datetime, cal: Calendar) -> Clock:
    clock = accrue(clock, at, cal)
    return clock._replace(phase="cancelled", since=None, next_due_at=None, next_fraction=None)


def reopen(clock: Clock, at: datetime, target: Target, cal: Calendar, *, paused: bool) -> Clock:
    """Resume a stopped clock with its elapsed kept (the engine decides whether it may)."""
    clock = clock._replace(
        phase="paused" if paused else "running",
        since=None if paused else at,
        stopped_at=None,
    )
    return schedule(clock, target, cal)


def follow(clock: Clock, paused: bool, at: datetime, target: Target, cal: Calendar) -> Clock:
    """Pause a running clock, or resume a paused one, to match `paused`; others unchanged."""
    if clock.phase == "running" and paused:
        return pause(clock, at, target, cal)
    if clock.phase == "paused" and not paused:
        return resume(clock, at, target, cal)
    return clock


def retarget(
    clock: Clock, new: Target, at: datetime, old_cal: Calendar, new_cal: Calendar
) -> tuple[Clock, float | None]:
    """Count against `new` from `at` (engine rule 4), and the fraction to announce at `at`:
    BREACH if the new allowance is spent, else the highest new fraction passed and never sent
    (the lower ones count as sent), else None. A highest fraction reached exactly is left due
    at `at` instead, so events at `at` come first."""
    clock = rebase(clock, new, at, old_cal)
    elapsed, allowance = clock.elapsed_s, new.allowance_s
    passed = reached(clock, new)
    if passed and round(passed[-1] * allowance, 6) == elapsed:
        return schedule(mark_sent(clock, passed[:-1]), new, new_cal), None
    if elapsed >= allowance:
        return schedule(breach(clock, at, new), new, new_cal), BREACH
    clock = schedule(mark_sent(clock, passed), new, new_cal)
    return clock, max(passed) if passed else None


def rebase(clock: Clock, new: Target, at: datetime, old_cal: Calendar) -> Clock:
    """Count against `new` from `at` on: elapsed accrued on the old calendar and carried over.
    Not rescheduled: the caller decides which of the new fractions count as sent first."""
    clock = accrue(clock, at, old_cal)
    return clock._replace(severity=new.severity, since=at if clock.phase == "running" else None)


def reached(clock: Clock, target: Target) -> list[float]:
    """The target's fractions the clock's elapsed has reached and that were never sent."""
    allowance = target.allowance_s
    return [
        f
        for f in fractions(target)
        if round(f * allowance, 6) <= clock.elapsed_s and f not in clock.sent
    ]


def mark_sent(clock: Clock, sent: list[float] | tuple[float, ...]) -> Clock:
    return clock._replace(sent=_with(clock.sent, sent))


def _with(sent: tuple[float, ...], more: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    return tuple(sorted(set(sent).union(more)))
