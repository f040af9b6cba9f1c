"""The SLA engine: every clock rule of sla-stream, for one incident, as two pure operations.

`apply(state, event, contract)` and `advance(state, now, contract)` return a `Result`: the new
state, the alerts and outcomes to publish, and the next instant at which something falls due.
Nothing here reads a clock or does I/O. Instants are aware and normalised to UTC; durations
are business seconds on a target's calendar (`*_s`). This file decides every rule, and is the
only core module that names an event type; `clock.py` counts one clock, `fold.py` carries what
was announced and settles it, `ledger.py` diffs that against what was published, `incident.py`
holds the state. They take the decisions made here as arguments.

The rules (DESIGN.md "SLA clock rules" and "Rule decisions"):

1. Clocks `first_response` and `resolution` start at `opened`, one per metric the contract has
   a target for at the opening severity; they count business time on the target's calendar.
2. What each event does to each clock is the table `TRANSITIONS` below; what it does to the
   incident itself (severity, status, finality), the sets beside it.
3. Pause: a clock whose target `pauses` does not accrue while the incident's status is one of
   the contract's pause statuses. Any event that carries a status sets it; `reopened` sets it
   to the event's status or none. Open clocks follow the status after every event that leaves
   them open (`FOLLOW_STATUS` in the table).
4. Severity change (`_retarget`): running and paused clocks count against the new severity's
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
10. Events apply in `event_key` order (occurred_at, `TYPE_ORDER`, event_id), whatever order
    they arrive in; an event dated before `opened` counts at `opened`; a second `opened`
    changes nothing; a repeated event_id is ignored ("duplicate"). A late event re-derives the
    incident from its events (`_fold_all`); published alerts that no longer hold are retracted,
    at the late event's instant, before the corrected ones (`ALERT_ORDER`, applied by
    `ledger.reconcile`).
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
from sla_stream.core.clock import BREACH, OPEN_PHASES, utc
from sla_stream.core.fold import Fold, alert_body
from sla_stream.core.incident import _TEMPLATE as _NEW
from sla_stream.core.incident import IncidentState, Recorded
from sla_stream.core.ledger import AlertBody, OutcomeBody
from sla_stream.core.models import METRICS, Alert, IncidentEvent, Outcome
from sla_stream.core.terms import ContractRecord, ContractTerms, Target

__all__ = ["TRANSITIONS", "TYPE_ORDER", "Action", "IncidentState", "Result", "advance", "apply"]


class Action(StrEnum):
    START = "start"
    STOP = "stop"
    FOLLOW_STATUS = "pause/resume"
    RETARGET = "retarget"
    REOPEN = "reopen"
    CANCEL = "cancel"


# (metric, event type) -> what the event does to that metric's clock, in order; every pair is
# listed. A metric with no clock (no target at the opening severity) only ever STARTs. A clock
# that is no longer open (stopped, cancelled) follows nothing.
TRANSITIONS: dict[tuple[str, str], tuple[Action, ...]] = {
    ("first_response", "opened"): (Action.START,),
    ("first_response", "responded"): (Action.STOP,),
    ("first_response", "status_changed"): (Action.FOLLOW_STATUS,),
    ("first_response", "severity_changed"): (Action.RETARGET, Action.FOLLOW_STATUS),
    ("first_response", "resolved"): (Action.STOP,),
    ("first_response", "reopened"): (Action.FOLLOW_STATUS,),
    ("first_response", "closed"): (Action.STOP,),
    ("first_response", "cancelled"): (Action.CANCEL,),
    ("resolution", "opened"): (Action.START,),
    ("resolution", "responded"): (Action.FOLLOW_STATUS,),
    ("resolution", "status_changed"): (Action.FOLLOW_STATUS,),
    ("resolution", "severity_changed"): (Action.RETARGET, Action.FOLLOW_STATUS),
    ("resolution", "resolved"): (Action.STOP,),
    ("resolution", "reopened"): (Action.REOPEN, Action.RETARGET, Action.FOLLOW_STATUS),  # rule 5
    ("resolution", "closed"): (Action.STOP,),
    ("resolution", "cancelled"): (Action.CANCEL,),
}
# What an event does to the incident itself. `opened` sets everything; a second one nothing.
SETS_SEVERITY = frozenset({"severity_changed"})
SETS_STATUS_EVEN_TO_NONE = frozenset({"reopened"})  # rule 5; other events set a status they carry
FINAL_TYPES = frozenset({"closed", "cancelled"})  # rule 6
# Rule 10, the tie-break for events at one instant: the order a person would expect them in.
_IN_ORDER = ("opened", "severity_changed", "status_changed", "responded", "resolved", "reopened")
TYPE_ORDER: dict[str, int] = {t: i for i, t in enumerate((*_IN_ORDER, "closed", "cancelled"))}
# Alerts of one instant: retractions before the alerts that correct them, clears last.
ALERT_ORDER = {"retracted": 0, "warning": 1, "breach": 2, "met": 3, "stopped": 4}
REOPEN_RETRACTS = ("met",)  # rule 5
CANCEL_RETRACTS = ("met", "breach")  # rule 7: warnings and `stopped` clears stay published

Ignored = Literal["duplicate", "after_final", "unknown_contract_version", "parked", "nothing_due"]


class Result(NamedTuple):
    state: IncidentState
    alerts: tuple[Alert, ...]
    outcomes: tuple[Outcome, ...]
    next_due_at: datetime | None  # earliest instant at which advance() would emit something
    ignored: Ignored | None  # why the input changed nothing; None when it did something


def event_key(rec: Recorded) -> tuple[datetime, int, str]:
    """Rule 10: the order in which an incident's events apply."""
    return (rec.occurred_at, TYPE_ORDER[rec.type], rec.event_id)


# -- the two operations -----------------------------------------------------------------------


def apply(
    state: IncidentState | None, event: IncidentEvent, contract: ContractRecord | None
) -> Result:
    """Apply one event: dues strictly before its instant fire first, then the event itself."""
    if state is None:
        state = _NEW.model_copy(update={"incident_id": event.incident_id})
    elif state.incident_id != event.incident_id:
        raise ValueError(f"event for {event.incident_id!r} applied to {state.incident_id!r}")
    # Rule 12 pins the contract the `opened` event names; other events' contract_id is noise.
    rec = Recorded.of(event, event.contract_id if event.type == "opened" else None)
    if any(e.event_id == rec.event_id for e in state.events):
        return _unchanged(state, "duplicate")
    final = _final_event(state.events)
    # `opened` is never after the final event: a final event dated before it (a clock skew
    # between systems) counts at `opened`, so arrival order must not decide whether it is kept.
    if final is not None and event_key(rec) > event_key(final) and rec.type != "opened":
        return _unchanged(state, "after_final")
    events = list(state.events)
    bisect.insort(events, rec, key=event_key)
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
    if state.folded_before(rec, event_key):
        fold = Fold.resume(state, terms)
        _fire_due(fold, t, inclusive=False)
        _on_event(fold, rec, t)
    else:
        horizon = grown.get("horizon_at", state.horizon_at)
        inclusive = grown.get("horizon_inclusive", state.horizon_inclusive)
        fold = _fold_all(events, terms, horizon, inclusive)  # type: ignore[arg-type]
    return Result(*fold.settle(state, grown, cause_at=pending, kind_order=ALERT_ORDER), None)


def advance(state: IncidentState, now: datetime, contract: ContractRecord | None) -> Result:
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
        _fire_due(fold, now, inclusive=True)
    else:
        horizon = moved.get("horizon_at", state.horizon_at)
        inclusive = moved.get("horizon_inclusive", state.horizon_inclusive)
        fold = _fold_all(state.events, terms, horizon, inclusive)  # type: ignore[arg-type]
    cause_at = state.pending_since or state.horizon_at or now
    result = Result(*fold.settle(state, moved, cause_at=cause_at, kind_order=ALERT_ORDER), None)
    if resumed and not result.alerts and not result.outcomes:
        return result._replace(ignored="nothing_due")  # only the horizon moved
    return result


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
        _fire_due(fold, t, inclusive=False)
        _on_event(fold, rec, t)
    _fire_due(fold, horizon_at, inclusive=inclusive)
    return fold


def _open(fold: Fold, rec: Recorded) -> None:
    """Rule 1: the incident as its `opened` event describes it, and its clocks started."""
    fold.opened = True
    fold.severity, fold.status = rec.severity, rec.status
    fold.category, fold.team = rec.category, rec.team
    _run_table(fold, rec.type, rec.occurred_at)


def _on_event(fold: Fold, rec: Recorded, t: datetime) -> None:
    if rec.type == "opened":
        return  # rule 10: a second `opened` changes nothing
    fold.category = rec.category or fold.category
    fold.team = rec.team or fold.team
    if rec.type in SETS_SEVERITY:
        fold.severity = rec.severity
    if rec.type in SETS_STATUS_EVEN_TO_NONE or rec.status is not None:
        fold.status = rec.status
    _run_table(fold, rec.type, t)
    if rec.type in FINAL_TYPES:
        fold.final = rec.type


def _run_table(fold: Fold, event_type: str, t: datetime) -> None:
    for metric in METRICS:
        for action in TRANSITIONS[(metric, event_type)]:
            if metric in fold.clocks or action is Action.START:
                ACTIONS[action](fold, metric, t)


# -- what clocks announce -------------------------------------------------------------------


def _fire_due(fold: Fold, bound: datetime, *, inclusive: bool) -> None:
    """Rule 8: fire each clock's thresholds due before `bound` (and at it, when `inclusive`):
    a warning at its fraction, the breach at 1.0."""
    for metric, c in fold.clocks.items():
        while c.next_due_at is not None and (
            c.next_due_at < bound or (inclusive and c.next_due_at == bound)
        ):
            target = fold.target_of(c)
            at, fraction, deadline_at = c.next_due_at, c.next_fraction, c.deadline_at
            assert fraction is not None
            c = clk.fire(c, target, fold.calendar(target))
            if fraction == BREACH:
                _announce(fold, alert_body("breach", c, target, BREACH, at, target.allowance_s, at))
            else:
                elapsed = round(fraction * target.allowance_s, 6)
                _announce(
                    fold, alert_body("warning", c, target, fraction, at, elapsed, deadline_at)
                )
        fold.clocks[metric] = c


def _announce(fold: Fold, body: AlertBody) -> None:
    """Rule 9: the outcome each announcement settles. A warning settles nothing; a breach a
    provisional outcome at the breach instant; a `stopped` replaces it with the final elapsed
    and stop instant (same `settled_at`); a `met` settles at the stop."""
    if body.kind == "warning":
        outcome = None
    elif body.kind == "stopped":
        provisional = fold.outcomes[body.metric]
        outcome = provisional._replace(elapsed_s=body.elapsed_s, completed_at=body.emitted_at)
    else:
        met = body.kind == "met"
        outcome = OutcomeBody(
            body.metric, body.severity, body.allowance_s, body.elapsed_s, met,
            body.emitted_at if met else None, body.emitted_at, fold.category, fold.team,
        )  # fmt: skip
    fold.put(body, outcome)


# -- what the table's actions do ----------------------------------------------------------------


def _start(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 1: a clock for `metric` if the contract has a target at the current severity."""
    target = fold.target(metric, fold.severity)
    if target is not None:
        cal = fold.calendar(target)
        fold.clocks[metric] = clk.start(target, t, cal, paused=_pauses(fold, target))


def _stop(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 8: `met` inside the allowance; a breached clock announces `stopped` (rule 9)."""
    c = fold.clocks[metric]
    if c.phase not in OPEN_PHASES:
        return
    target = fold.target_of(c)
    stopped = fold.clocks[metric] = clk.stop(c, t, fold.calendar(target))
    if c.breached_at is None:
        body = alert_body("met", stopped, target, None, t, stopped.elapsed_s, c.deadline_at)
    else:
        body = alert_body("stopped", stopped, target, None, t, stopped.elapsed_s, c.breached_at)
    _announce(fold, body)


def _pauses(fold: Fold, target: Target) -> bool:
    """Rule 3: whether a clock on `target` stands still under the incident's status."""
    return target.pauses and fold.status in fold.terms.pause_statuses


def _follow_status(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 3: pause or resume to match the incident's status."""
    c = fold.clocks[metric]
    if c.phase not in OPEN_PHASES:
        return
    target = fold.target_of(c)
    should_pause = _pauses(fold, target)
    if c.phase == "running" and should_pause:
        fold.clocks[metric] = clk.pause(c, t, target, fold.calendar(target))
    elif c.phase == "paused" and not should_pause:
        fold.clocks[metric] = clk.resume(c, t, target, fold.calendar(target))


def _retarget(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 4. A highest new fraction reached exactly (elapsed equal to it) is not announced
    here but left due at `t` (or when a paused clock runs again), so events at `t` come first:
    a stop then is met and a warning due at the stop instant does not fire (rule 8)."""
    c = fold.clocks[metric]
    if c.phase not in OPEN_PHASES or c.breached_at is not None:
        return
    new = fold.target(metric, fold.severity)
    if new is None or new.severity == c.severity:
        return
    c = clk.rebase(c, new, t, fold.calendar(fold.target_of(c)))
    cal, elapsed, allowance = fold.calendar(new), c.elapsed_s, new.allowance_s
    passed = clk.reached(c, new)
    if passed and round(passed[-1] * allowance, 6) == elapsed:
        fold.clocks[metric] = clk.schedule(clk.mark_sent(c, passed[:-1]), new, cal)
    elif elapsed >= allowance:
        c = fold.clocks[metric] = clk.schedule(clk.breach(c, t, new), new, cal)
        _announce(fold, alert_body("breach", c, new, BREACH, t, elapsed, t))
    else:
        c = fold.clocks[metric] = clk.schedule(clk.mark_sent(c, passed), new, cal)
        if passed:
            _announce(fold, alert_body("warning", c, new, max(passed), t, elapsed, c.deadline_at))


def _reopen(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 5: a met clock runs again with its `met` taken back; a breached one stays final."""
    c = fold.clocks[metric]
    if c.phase != "stopped" or c.breached_at is not None:
        return
    fold.take_back(metric, REOPEN_RETRACTS, t)
    target = fold.target_of(c)
    fold.clocks[metric] = clk.reopen(c, t, target, fold.calendar(target), paused=False)


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
        deadline_at = c.breached_at or c.deadline_at
        body = alert_body("stopped", cancelled, target, None, t, cancelled.elapsed_s, deadline_at)
        fold.alerts[body.slot] = body


ACTIONS: dict[Action, Callable[[Fold, str, datetime], None]] = {
    Action.START: _start,
    Action.STOP: _stop,
    Action.FOLLOW_STATUS: _follow_status,
    Action.RETARGET: _retarget,
    Action.REOPEN: _reopen,
    Action.CANCEL: _cancel,
}


# -- contract pinning, small helpers -----------------------------------------------------------


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


def _opened_event(events: list[Recorded] | tuple[Recorded, ...]) -> Recorded | None:
    return next((e for e in events if e.type == "opened"), None)


def _final_event(events: tuple[Recorded, ...]) -> Recorded | None:
    return next((e for e in events if e.type in FINAL_TYPES), None)


def _unchanged(state: IncidentState, why: Ignored) -> Result:
    return Result(state, (), (), state.next_due_at, why)


def _waiting(state: IncidentState, updates: dict[str, object], why: Ignored | None) -> Result:
    """Recorded but not evaluated: no opened event yet, or no contract (parked)."""
    state = state.model_copy(update={**updates, "next_due_at": None})
    return Result(state, (), (), None, why)
