"""The SLA engine: every clock rule of sla-stream, for one incident, as two pure operations.

`apply(state, event, contract)` and `advance(state, now, contract)` return a `Step`: the new
state, the alerts and outcomes to publish, and the next instant at which something falls due.
Nothing here reads a clock or does I/O. Instants are aware and normalised to UTC; durations
are business seconds on a target's calendar (`*_s`). This file decides; `clock.py` counts one
clock, `fold.py` collects what clocks announce, `ledger.py` turns that into effects against what
was published, `incident.py` holds the state (and `TYPE_ORDER`, the same-instant tie-break).

The rules (DESIGN.md "SLA clock rules" and "Rule decisions"):

1. Clocks `first_response` and `resolution` start at `opened`, one per metric the contract has
   a target for at the opening severity; they count business time on the target's calendar.
2. What each event does to each clock is the table `TRANSITIONS` below.
3. Pause: a clock whose target `pauses` does not accrue while the incident's status is one of
   the contract's pause statuses. Any event that carries a status sets it; `reopened` sets it
   to the event's status or none.
4. Severity change (`retarget`): running and paused clocks count against the new severity's
   target from the change on, elapsed kept (even across calendars). Fractions already sent are
   not sent again; of the new fractions already passed and never sent only the highest fires,
   at the change; if the new allowance is spent, only the breach fires, at the change, even
   while paused. Stopped and breached clocks keep their target. A change to a severity with no
   target for a metric leaves that clock on its previous target.
5. Reopen: a resolution clock that was met resumes with its elapsed kept, under the current
   severity (retargeted at the reopen), paused only if the event carries a pause status; its
   `met` is retracted and its outcome withdrawn at the reopen. A breached clock stays final.
6. `resolved` ends a pause (the clock stops). `closed` and `cancelled` are final: events sorted
   after them are ignored ("after_final"); earlier-dated late events still apply.
7. `cancelled` stops every clock and takes the incident out of every figure: its `met` and
   `breach` alerts are retracted and its outcomes withdrawn. Warnings and `stopped` stay; a
   clock cancelled while open with warnings out gets a `stopped` that clears them.
8. Warnings at each warning fraction, `breach` at 1.0, `met` when a clock stops inside its
   allowance. Events at instant t apply before anything due at t: a clock stopping exactly at
   its deadline is met, and a warning due at the stop instant does not fire.
9. One outcome per clock. `met` settles at the stop. A breach settles at the breach instant
   with a provisional outcome (elapsed at the breach, `completed_at` none). When the breached
   clock stops, a `stopped` alert clears the breach page, and the provisional outcome is
   withdrawn and replaced by the final one: same `settled_at`, `completed_at` and the final
   elapsed, so rollups count it once, in the breach's period, and trends get the real elapsed.
10. Events apply in (occurred_at, `TYPE_ORDER`, event_id) order, whatever order they arrive
    in; an event dated before `opened` counts at `opened`; a second `opened` changes nothing;
    a repeated event_id is ignored ("duplicate"). A late event re-derives the incident from its
    events (`_fold_all`); published alerts that no longer hold are retracted, at the late
    event's instant, before the corrected ones (see `ledger.reconcile`).
11. Alert ids: deterministic from (incident, metric, kind, threshold, revision), the revision
    counting earlier retractions of that slot (`alert_ids`).
12. Contract: the incident pins the version in force when it opened. No record: parked (events
    recorded, nothing emitted) and evaluated from its events when a record is given; past dues
    then fire at once with their own instants. A record without that version: the step is
    ignored ("unknown_contract_version") and changes nothing.
13. `emitted_at` is always a logical instant: a due instant, or the instant of the event that
    caused the alert. Replaying the same history yields identical alerts and ids.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Literal, NamedTuple

from sla_stream.core import clock as clk
from sla_stream.core.clock import utc
from sla_stream.core.fold import Fold
from sla_stream.core.incident import _TEMPLATE as _NEW
from sla_stream.core.incident import TYPE_ORDER, IncidentState, Recorded
from sla_stream.core.ledger import AlertBody, Ident, reconcile
from sla_stream.core.models import METRICS, Alert, IncidentEvent, Outcome
from sla_stream.core.terms import ContractRecord, ContractTerms

__all__ = ["TRANSITIONS", "TYPE_ORDER", "Action", "IncidentState", "Step", "advance", "apply"]


class Action(StrEnum):
    START = "start"
    STOP = "stop"
    FOLLOW_STATUS = "pause/resume"
    RETARGET = "retarget"
    REOPEN = "reopen"
    CANCEL = "cancel"


# (metric, event type) -> what the event does to that metric's clock. Pairs not listed do nothing.
TRANSITIONS: dict[tuple[str, str], Action] = {
    ("first_response", "opened"): Action.START,
    ("first_response", "responded"): Action.STOP,
    ("first_response", "resolved"): Action.STOP,
    ("first_response", "closed"): Action.STOP,
    ("first_response", "status_changed"): Action.FOLLOW_STATUS,
    ("first_response", "severity_changed"): Action.RETARGET,
    ("first_response", "cancelled"): Action.CANCEL,
    ("resolution", "opened"): Action.START,
    ("resolution", "status_changed"): Action.FOLLOW_STATUS,
    ("resolution", "severity_changed"): Action.RETARGET,
    ("resolution", "resolved"): Action.STOP,
    ("resolution", "reopened"): Action.REOPEN,
    ("resolution", "closed"): Action.STOP,
    ("resolution", "cancelled"): Action.CANCEL,
}
FINAL_TYPES = frozenset({"closed", "cancelled"})
# Kinds a cancel takes back; warnings and `stopped` clears stay published.
CANCEL_RETRACTS = ("met", "breach")

Ignored = Literal["duplicate", "after_final", "unknown_contract_version", "parked", "nothing_due"]


class Step(NamedTuple):
    state: IncidentState
    alerts: tuple[Alert, ...]
    outcomes: tuple[Outcome, ...]
    next_due_at: datetime | None  # earliest instant at which advance() would emit something
    ignored: Ignored | None  # why the input changed nothing; None when it did something


# -- the two operations -----------------------------------------------------------------------


def apply(
    state: IncidentState | None, event: IncidentEvent, contract: ContractRecord | None
) -> Step:
    """Apply one event: dues strictly before its instant fire first, then the event itself."""
    if state is None:
        state = _NEW.model_copy(update={"incident_id": event.incident_id})
    elif state.incident_id != event.incident_id:
        raise ValueError(f"event for {event.incident_id!r} applied to {state.incident_id!r}")
    rec = _record(event)
    if any(e.event_id == rec.event_id for e in state.events):
        return _unchanged(state, "duplicate")
    final = _final_event(state.events)
    # `opened` is never after the final event: a final event dated before it (a clock skew
    # between systems) counts at `opened`, so arrival order must not decide whether it is kept.
    if final is not None and rec.key > final.key and rec.type != "opened":
        return _unchanged(state, "after_final")
    events = list(state.events)
    bisect.insort(events, rec, key=lambda e: e.key)
    t = rec.occurred_at
    grown: dict[str, object] = {"events": tuple(events)}
    if state.horizon_at is None or t > state.horizon_at:
        grown.update(horizon_at=t, horizon_inclusive=False)
    pending = t if state.pending_since is None else min(t, state.pending_since)
    opened = _opened_event(events)
    if opened is None:
        return _waiting(state, {**grown, "pending_since": pending}, None)
    grown.update(contract_id=opened.contract_id, opened_at=opened.occurred_at)
    terms, why = _pin(opened.contract_id, state.contract_version, opened.occurred_at, contract)
    if why == "unknown_contract_version":
        return _unchanged(state, why)
    if terms is None:
        return _waiting(state, {**grown, "parked": True, "pending_since": pending}, None)
    if _appends_in_order(state, rec):
        fold = Fold.resume(state, terms)
        fold.fire_due(t, inclusive=False)
        _on_event(fold, rec, t)
    else:
        horizon = grown.get("horizon_at", state.horizon_at)
        inclusive = grown.get("horizon_inclusive", state.horizon_inclusive)
        fold = _fold_all(events, terms, horizon, inclusive)  # type: ignore[arg-type]
    return _settle(state, grown, terms, fold, cause_at=pending)


def advance(state: IncidentState, now: datetime, contract: ContractRecord | None) -> Step:
    """Fire everything due at or before `now` (aware). A parked incident is evaluated from its
    recorded events once `contract` is given."""
    now = utc(now)
    moved: dict[str, object] = {}
    if state.horizon_at is None or now >= state.horizon_at:
        moved.update(horizon_at=now, horizon_inclusive=True)
    if state.opened_at is None:
        return _waiting(state, moved, "nothing_due")
    terms, why = _pin(state.contract_id, state.contract_version, state.opened_at, contract)
    if why == "unknown_contract_version":
        return _unchanged(state, why)
    if terms is None:
        return _waiting(state, {**moved, "parked": True}, "parked")
    resumed = state.evaluated and not state.parked
    if resumed:
        fold = Fold.resume(state, terms)
        fold.fire_due(now, inclusive=True)
    else:
        horizon = moved.get("horizon_at", state.horizon_at)
        inclusive = moved.get("horizon_inclusive", state.horizon_inclusive)
        fold = _fold_all(state.events, terms, horizon, inclusive)  # type: ignore[arg-type]
    cause_at = state.pending_since or state.horizon_at or now
    step = _settle(state, moved, terms, fold, cause_at=cause_at)
    if resumed and not step.alerts and not step.outcomes:
        return step._replace(ignored="nothing_due")  # only the horizon moved
    return step


# -- folding events into clocks -----------------------------------------------------------------


def _fold_all(
    events: list[Recorded] | tuple[Recorded, ...],
    terms: ContractTerms,
    horizon_at: datetime,
    inclusive: bool,
) -> Fold:
    """Re-derive the incident from all its events, firing dues between them, up to the horizon."""
    fold = Fold(terms)
    opened = _opened_event(events)
    assert opened is not None
    _open(fold, opened)
    for rec in events:
        if rec is opened:
            continue
        if fold.final is not None:
            break  # rule 6: everything sorted after a final event is ignored
        t = max(rec.occurred_at, opened.occurred_at)  # rule 10: before `opened` counts at it
        fold.fire_due(t, inclusive=False)
        _on_event(fold, rec, t)
    fold.fire_due(horizon_at, inclusive=inclusive)
    return fold


def _open(fold: Fold, rec: Recorded) -> None:
    """Rule 1: start a clock per metric with a target at the opening severity."""
    fold.opened = True
    fold.severity, fold.status = rec.severity, rec.status
    fold.category, fold.team = rec.category, rec.team
    for metric in METRICS:
        target = fold.target(metric, fold.severity)
        if target is not None and TRANSITIONS.get((metric, "opened")) is Action.START:
            cal = fold.calendar(target)
            fold.clocks[metric] = clk.start(
                target, rec.occurred_at, cal, paused=fold.pauses(target)
            )


def _on_event(fold: Fold, rec: Recorded, t: datetime) -> None:
    if rec.type == "opened":
        return  # rule 10: a second `opened` changes nothing
    fold.category = rec.category or fold.category
    fold.team = rec.team or fold.team
    if rec.type == "severity_changed":
        fold.severity = rec.severity
    if rec.type == "reopened":
        fold.status = rec.status  # rule 5: not paused unless the event carries a pause status
    elif rec.status is not None:
        fold.status = rec.status
    for metric in list(fold.clocks):
        action = TRANSITIONS.get((metric, rec.type))
        if action is not None:
            ACTIONS[action](fold, metric, t)
        _follow_status(fold, metric, t)
    if rec.type in FINAL_TYPES:
        fold.final = rec.type


# -- what the table's actions do ----------------------------------------------------------------


def _stop(fold: Fold, metric: str, t: datetime) -> None:
    c = fold.clocks[metric]
    if c.phase in ("running", "paused"):
        target = fold.target_of(c)
        c, mark = clk.stop(c, t, target, fold.calendar(target))
        fold.clocks[metric] = c
        fold.announce(mark, target)


def _follow_status(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 3: pause or resume to match the incident's status."""
    c = fold.clocks[metric]
    if c.phase not in ("running", "paused"):
        return
    target = fold.target_of(c)
    should_pause = fold.pauses(target)
    if c.phase == "running" and should_pause:
        fold.clocks[metric] = clk.pause(c, t, target, fold.calendar(target))
    elif c.phase == "paused" and not should_pause:
        fold.clocks[metric] = clk.resume(c, t, target, fold.calendar(target))


def _retarget(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 4."""
    c = fold.clocks[metric]
    if c.phase not in ("running", "paused") or c.breached_at is not None:
        return
    new = fold.target(metric, fold.severity)
    if new is None or new.severity == c.severity:
        return
    old = fold.target_of(c)
    c, mark = clk.retarget(c, new, t, fold.calendar(old), fold.calendar(new))
    fold.clocks[metric] = c
    if mark is not None:
        fold.announce(mark, new)


def _reopen(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 5."""
    c = fold.clocks[metric]
    if c.phase != "stopped" or c.breached_at is not None:
        return
    fold.take_back(metric, ("met",), t)
    target = fold.target_of(c)
    fold.clocks[metric] = clk.reopen(c, t, target, fold.calendar(target), paused=False)
    _retarget(fold, metric, t)


def _cancel(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 7. Warnings are not retracted; if any are left without a clear (no `met`, which
    the cancel takes back, and no `stopped`), a `stopped` at the cancel lets a notifier resolve
    their pages."""
    c = fold.clocks[metric]
    target = fold.target_of(c)
    cancelled = fold.clocks[metric] = clk.cancel(c, t, fold.calendar(target))
    fold.take_back(metric, CANCEL_RETRACTS, t)
    warned = any(slot[0] == metric and slot[1] == "warning" for slot in fold.alerts)
    if warned and (metric, "stopped", None) not in fold.alerts:
        fold.alerts[(metric, "stopped", None)] = AlertBody(
            metric, "stopped", None, cancelled.severity, target.allowance_s,
            cancelled.elapsed_s, c.breached_at or c.deadline_at, t, target.clause_id,
            target.clause_title,
        )  # fmt: skip


def _start(fold: Fold, metric: str, t: datetime) -> None:
    """Clocks start only in `_open`; a later `opened` changes nothing (rule 10)."""


ACTIONS: dict[Action, Callable[[Fold, str, datetime], None]] = {
    Action.START: _start,
    Action.STOP: _stop,
    Action.FOLLOW_STATUS: _follow_status,
    Action.RETARGET: _retarget,
    Action.REOPEN: _reopen,
    Action.CANCEL: _cancel,
}


# -- contract pinning, recording, settling ------------------------------------------------------


def _pin(
    contract_id: str | None,
    version: int | None,
    opened_at: datetime,
    contract: ContractRecord | None,
) -> tuple[ContractTerms | None, Ignored | None]:
    """Rule 12: the terms of the version in force when the incident opened (or pinned)."""
    if contract is None or contract.contract_id != contract_id:
        return None, None
    if version is not None:
        terms = contract.version(version)
    else:
        terms = contract.for_incident_opened_at(opened_at)
    return (terms, None) if terms is not None else (None, "unknown_contract_version")


def _appends_in_order(state: IncidentState, rec: Recorded) -> bool:
    """Whether `rec` comes after everything the evaluated state has folded, dues included."""
    if not state.evaluated or state.parked or state.horizon_at is None:
        return False
    if rec.occurred_at > state.horizon_at:
        return True
    return (
        rec.occurred_at == state.horizon_at
        and not state.horizon_inclusive
        and (not state.events or rec.key > state.events[-1].key)
    )


def _settle(
    state: IncidentState,
    updates: dict[str, object],
    terms: ContractTerms,
    fold: Fold,
    *,
    cause_at: datetime,
) -> Step:
    """The new state (one copy of `state`, with `updates` and the fold) and its effects."""
    opened_at = updates.get("opened_at", state.opened_at)
    contract_id = updates.get("contract_id", state.contract_id)
    assert isinstance(opened_at, datetime) and isinstance(contract_id, str)
    if fold.unchanged:
        ledger, alerts, outcomes = state.ledger, (), ()
    else:
        ident = Ident(state.incident_id, contract_id, terms.customer_id, terms.tier, opened_at)
        ledger, alerts, outcomes = reconcile(
            state.ledger, fold.alerts, fold.outcomes, fold.removed_at, cause_at, ident
        )
    dues = [c.due_at for c in fold.clocks.values() if c.due_at is not None]
    next_due = min(dues) if dues else None
    new = state.model_copy(
        update={
            **updates,
            "contract_version": terms.version,
            "parked": False,
            "evaluated": True,
            "pending_since": None,
            "next_due_at": next_due,
            "severity": fold.severity,
            "status": fold.status,
            "category": fold.category,
            "team": fold.team,
            "final": fold.final,
            "clocks": tuple(fold.clocks.values()),
            "ledger": ledger,
        }
    )
    return Step(new, alerts, outcomes, next_due, None)


def _record(event: IncidentEvent) -> Recorded:
    return Recorded(
        event_id=event.event_id,
        type=event.type,
        occurred_at=utc(event.occurred_at),
        severity=event.severity,
        status=event.status,
        contract_id=event.contract_id if event.type == "opened" else None,
        category=event.category,
        team=event.team,
    )


def _opened_event(events: list[Recorded] | tuple[Recorded, ...]) -> Recorded | None:
    return next((e for e in events if e.type == "opened"), None)


def _final_event(events: tuple[Recorded, ...]) -> Recorded | None:
    return next((e for e in events if e.type in FINAL_TYPES), None)


def _unchanged(state: IncidentState, why: Ignored) -> Step:
    return Step(state, (), (), state.next_due_at, why)


def _waiting(state: IncidentState, updates: dict[str, object], why: Ignored | None) -> Step:
    """Recorded but not evaluated: no opened event yet, or no contract (parked)."""
    state = state.model_copy(update={**updates, "next_due_at": None})
    return Step(state, (), (), None, why)
