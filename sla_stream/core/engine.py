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
   A metric with no clock starts one at a severity change to a severity with a target for it,
   from the change, unless its stop has passed (`first_response` after a response, resolution
   once resolved until a reopen): `ENDS` and `RESTARTS` below.
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
   target for a metric leaves that clock on its previous target (and one with a target for a
   metric without a clock starts it, rule 1).
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
    counting earlier retractions of that slot (`alert_ids`). An id reused after its record's
    retention (`IncidentState.retired` leaves a marker counting lives) salts the ids of later
    life with its opening instant, so they never repeat an earlier life's; a first life's ids
    do not change.
12. Contract: the incident pins the version in force when it opened. No record, or a record
    with no version in force at the opening instant (or without the pinned version): parked
    (events recorded, nothing emitted) and evaluated from its events when a record covering it
    is given; past dues then fire at once with their own instants.
13. `emitted_at` is always a logical instant: a due instant, or the instant of the event that
    caused the alert. Replaying the same history yields identical alerts and ids.
14. Update cycles (`CYCLES`): `update` starts at the first `responded` (or after it at a
    severity change, rule 1) as cycle 1. An update (`updated`, or a later `responded`) settles
    the open cycle (`met`, or `stopped` after a breach) and starts the next on the current
    severity's target (else the last one's, as rule 4); resolution stops it and a reopen starts
    the next. An update before the first response or while resolved does nothing, and never
    stops `first_response`. Each cycle has its own alerts, outcome and ids (`update#N`,
    `Clock.key`): adherence counts cycles. A cycle ending at its start instant counts nowhere.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from sla_stream.core import clock as clk
from sla_stream.core.clock import BREACH, OPEN_PHASES, Clock, split_key, utc
from sla_stream.core.fold import Fold, alert_body
from sla_stream.core.incident import _TEMPLATE as _NEW
from sla_stream.core.incident import IncidentState, Recorded, in_order
from sla_stream.core.ledger import AlertBody, OutcomeBody
from sla_stream.core.models import METRICS, IncidentEvent
from sla_stream.core.pinning import pinned_terms, terms_for
from sla_stream.core.step import Ignored, Result, unchanged, waiting
from sla_stream.core.terms import ContractRecord, ContractTerms

__all__ = [
    "TRANSITIONS", "TYPE_ORDER", "Action", "Ignored", "IncidentState", "Result", "advance",
    "apply", "terms_for",
]  # fmt: skip


class Action(StrEnum):
    START = "start"
    STOP = "stop"
    FOLLOW_STATUS = "pause/resume"
    RETARGET = "retarget"
    REOPEN = "reopen"
    CANCEL = "cancel"
    CYCLE = "next cycle"  # rule 14: the open cycle settles and the next starts


ENDS, RESTARTS = frozenset({Action.STOP, Action.CANCEL}), frozenset({Action.REOPEN})  # rule 1

# (metric, event type) -> what the event does to that metric's clock, in order; every pair is
# listed. A metric with no clock (no target at the opening severity) only ever STARTs (rule 1);
# a START on a metric that has a clock does nothing. A clock that is no longer open (stopped,
# cancelled) follows nothing.
TRANSITIONS: dict[tuple[str, str], tuple[Action, ...]] = {
    ("first_response", "opened"): (Action.START,),
    ("first_response", "responded"): (Action.STOP,),
    ("first_response", "updated"): (Action.FOLLOW_STATUS,),
    ("first_response", "status_changed"): (Action.FOLLOW_STATUS,),
    ("first_response", "severity_changed"): (Action.START, Action.RETARGET, Action.FOLLOW_STATUS),
    ("first_response", "resolved"): (Action.STOP,),
    ("first_response", "reopened"): (Action.FOLLOW_STATUS,),
    ("first_response", "closed"): (Action.STOP,),
    ("first_response", "cancelled"): (Action.CANCEL,),
    ("resolution", "opened"): (Action.START,),
    ("resolution", "responded"): (Action.FOLLOW_STATUS,),
    ("resolution", "updated"): (Action.FOLLOW_STATUS,),
    ("resolution", "status_changed"): (Action.FOLLOW_STATUS,),
    ("resolution", "severity_changed"): (Action.START, Action.RETARGET, Action.FOLLOW_STATUS),
    ("resolution", "resolved"): (Action.STOP,),
    ("resolution", "reopened"): (Action.REOPEN, Action.RETARGET, Action.FOLLOW_STATUS),  # rule 5
    ("resolution", "closed"): (Action.STOP,),
    ("resolution", "cancelled"): (Action.CANCEL,),
    ("update", "opened"): (),  # rule 14: it starts at the first response
    ("update", "responded"): (Action.CYCLE, Action.START, Action.FOLLOW_STATUS),
    ("update", "updated"): (Action.CYCLE, Action.FOLLOW_STATUS),
    ("update", "status_changed"): (Action.FOLLOW_STATUS,),
    ("update", "severity_changed"): (Action.START, Action.RETARGET, Action.FOLLOW_STATUS),
    ("update", "resolved"): (Action.STOP,),
    ("update", "reopened"): (Action.REOPEN, Action.START, Action.FOLLOW_STATUS),  # rule 14
    ("update", "closed"): (Action.STOP,),
    ("update", "cancelled"): (Action.CANCEL,),
}
CYCLES = frozenset({"update"})  # rule 14: metrics that start at the first response, in cycles
RESPONSES = frozenset({"responded"})  # what counts as the first response for CYCLES
# What an event does to the incident itself. `opened` sets everything; a second one nothing.
SETS_SEVERITY = frozenset({"severity_changed"})
SETS_STATUS_EVEN_TO_NONE = frozenset({"reopened"})  # rule 5; other events set a status they carry
FINAL_TYPES = frozenset({"closed", "cancelled"})  # rule 6
# Rule 10, the tie-break for events at one instant: the order a person would expect them in.
_IN_ORDER = ("opened", "severity_changed", "status_changed", "responded", "resolved", "reopened")
_LAST = ("updated", "closed", "cancelled")  # an update at a cycle's start is that cycle's (14)
TYPE_ORDER: dict[str, int] = {t: i for i, t in enumerate((*_IN_ORDER, *_LAST))}
# Alerts of one instant: retractions before the alerts that correct them, clears last.
ALERT_ORDER = {"retracted": 0, "warning": 1, "breach": 2, "met": 3, "stopped": 4}
REOPEN_RETRACTS = ("met",)  # rule 5
CANCEL_RETRACTS = ("met", "breach")  # rule 7: warnings and `stopped` clears stay published


def event_key(rec: Recorded) -> tuple[datetime, int, str]:
    """Rule 10: the order in which an incident's events apply."""
    return (rec.occurred_at, TYPE_ORDER[rec.type], rec.event_id)


# -- the two operations -----------------------------------------------------------------------


def apply(
    state: IncidentState | None,
    event: IncidentEvent,
    contract: ContractRecord | None,
    *,
    owned: bool = False,
) -> Result:
    """Apply one event: dues strictly before its instant fire first, then the event itself."""
    if state is None:
        state = _NEW.with_fields({"incident_id": event.incident_id})
    elif state.incident_id != event.incident_id:
        raise ValueError(f"event for {event.incident_id!r} applied to {state.incident_id!r}")
    # Rule 12 pins the contract the `opened` event names; other events' contract_id is noise.
    rec = Recorded.of(event, event.contract_id if event.type == "opened" else None)
    if rec.event_id in [e.event_id for e in state.events]:  # cheaper than any() on every event
        return unchanged(state, "duplicate")
    final = next((e for e in state.events if e.type in FINAL_TYPES), None)
    # `opened` is never after the final event: a final event dated before it (a clock skew
    # between systems) counts at `opened`, so arrival order must not decide whether it is kept.
    if final is not None and event_key(rec) > event_key(final) and rec.type != "opened":
        return unchanged(state, "after_final")
    events = in_order(state.events, rec, event_key)
    t = rec.occurred_at
    grown: dict[str, object] = {"events": events}
    if state.horizon_at is None or t > state.horizon_at:
        grown.update(horizon_at=t, horizon_inclusive=False)
    pending = t if state.pending_since is None else min(t, state.pending_since)
    opened = _opened_event(events)
    if opened is None:
        return waiting(state, {**grown, "pending_since": pending}, None)
    grown.update(contract_id=opened.contract_id, opened_at=opened.occurred_at)
    terms = pinned_terms(opened.contract_id, state.contract_version, opened.occurred_at, contract)
    if terms is None:
        return waiting(state, {**grown, "parked": True, "pending_since": pending}, None)
    if state.folded_before(rec, event_key):
        fold = Fold.resume(state, terms)
        _fire_due(fold, t, inclusive=False)
        _on_event(fold, rec, t)
    else:
        horizon = grown.get("horizon_at", state.horizon_at)
        inclusive = grown.get("horizon_inclusive", state.horizon_inclusive)
        fold = _fold_all(events, terms, horizon, inclusive)  # type: ignore[arg-type]
    return fold.settle(state, grown, cause_at=pending, kind_order=ALERT_ORDER, in_place=owned)


def advance(
    state: IncidentState, now: datetime, contract: ContractRecord | None, *, owned: bool = False
) -> Result:
    """Fire everything due at or before `now` (aware). A parked incident is evaluated from its
    recorded events once `contract` is given. `owned` (here and in `apply`): the caller keeps no
    other reference to `state` (a replay's states), so the step may update it in place."""
    now = utc(now)
    moved: dict[str, object] = {}
    if state.horizon_at is None or now >= state.horizon_at:
        moved.update(horizon_at=now, horizon_inclusive=True)
    if state.opened_at is None:
        return waiting(state, moved, "nothing_due")
    terms = terms_for(state, contract)
    if terms is None:
        return waiting(state, {**moved, "parked": True}, "parked")
    resumed = state.evaluated and not state.parked
    if resumed:
        fold = Fold.resume(state, terms)
        _fire_due(fold, now, inclusive=True)
    else:
        horizon = moved.get("horizon_at", state.horizon_at)
        inclusive = moved.get("horizon_inclusive", state.horizon_inclusive)
        fold = _fold_all(state.events, terms, horizon, inclusive)  # type: ignore[arg-type]
    cause_at = state.pending_since or state.horizon_at or now
    result = fold.settle(state, moved, cause_at=cause_at, kind_order=ALERT_ORDER, in_place=owned)
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
    if rec.type in RESPONSES:
        fold.answered = True
    _run_table(fold, rec.type, t)
    if rec.type in FINAL_TYPES:
        fold.final = rec.type


def _run_table(fold: Fold, event_type: str, t: datetime) -> None:
    for metric in METRICS:
        for action in TRANSITIONS[(metric, event_type)]:
            if metric in fold.clocks or action is Action.START:
                ACTIONS[action](fold, metric, t)
            elif action in ENDS:  # rule 1: a metric without a clock has passed its stop
                fold.ended.add(metric)
            elif action in RESTARTS:
                fold.ended.discard(metric)


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
    """Rule 1: a clock for `metric` if the contract has a target at the current severity, it has
    none yet, and its stop has not passed; for CYCLES, its first cycle once responded (rule 14)."""
    if metric in fold.clocks or metric in fold.ended:
        return
    cycles = metric in CYCLES
    target = fold.target(metric, fold.severity)
    if target is not None and (fold.answered or not cycles):
        paused, cal = fold.pauses(target), fold.calendar(target)
        fold.clocks[metric] = clk.start(target, t, cal, paused=paused, cycle=int(cycles))


def _stop(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 8: `met` inside the allowance; a breached clock announces `stopped` (rule 9)."""
    c = fold.clocks[metric]
    if c.phase not in OPEN_PHASES:
        return
    target = fold.target_of(c)
    stopped = fold.clocks[metric] = clk.stop(c, t, fold.calendar(target))
    if c.cycle and c.started_at == t:
        return  # rule 14: a cycle that ends as it starts counts nowhere
    if c.breached_at is None:
        body = alert_body("met", stopped, target, None, t, stopped.elapsed_s, c.deadline_at)
    else:
        body = alert_body("stopped", stopped, target, None, t, stopped.elapsed_s, c.breached_at)
    _announce(fold, body)


def _retarget(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 4 (the arithmetic, and why a fraction reached exactly is left due: `clk.retarget`)."""
    c = fold.clocks[metric]
    if c.phase not in OPEN_PHASES or c.breached_at is not None:
        return
    new = fold.target(metric, fold.severity)
    if new is None or new.severity == c.severity:
        return
    old_cal = fold.calendar(fold.target_of(c))
    c, fraction = clk.retarget(c, new, t, old_cal, fold.calendar(new))
    fold.clocks[metric] = c
    if fraction == BREACH:
        _announce(fold, alert_body("breach", c, new, BREACH, t, c.elapsed_s, t))
    elif fraction is not None:
        _announce(fold, alert_body("warning", c, new, fraction, t, c.elapsed_s, c.deadline_at))


def _reopen(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 5: a met clock runs again with its `met` taken back; a breached one stays final.
    Rule 14: a cycle stopped by the resolution is followed by the next."""
    c = fold.clocks[metric]
    if c.phase == "stopped" and c.cycle:
        _next_cycle(fold, c, t)
    if c.phase != "stopped" or c.breached_at is not None or c.cycle:
        return
    fold.take_back(metric, REOPEN_RETRACTS, t)
    target = fold.target_of(c)
    fold.clocks[metric] = clk.reopen(c, t, target, fold.calendar(target), paused=False)


def _cycle(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 14: an update settles the open cycle and starts the next (not at its own start)."""
    c = fold.clocks[metric]
    if c.phase in OPEN_PHASES and c.started_at != t:
        _stop(fold, metric, t)
        _next_cycle(fold, c, t)


def _next_cycle(fold: Fold, last: Clock, t: datetime) -> None:
    target = fold.target(last.metric, fold.severity) or fold.target_of(last)
    paused, cal = fold.pauses(target), fold.calendar(target)
    fold.clocks[last.metric] = clk.start(target, t, cal, paused=paused, cycle=last.cycle + 1)


def _cancel(fold: Fold, metric: str, t: datetime) -> None:
    """Rule 7. Warnings are not retracted; if any are left without a clear (no `met`, which
    the cancel takes back, and no `stopped`), a `stopped` at the cancel lets a notifier resolve
    their pages: for an earlier cycle (rule 14), its taken-back `met` as a `stopped`."""
    c = fold.clocks[metric]
    target, deadline_at = fold.target_of(c), c.breached_at or c.deadline_at
    cut = fold.clocks[metric] = clk.cancel(c, t, fold.calendar(target))
    mine = {s: b for s, b in fold.alerts.items() if split_key(s[0])[0] == metric}
    fold.take_back(metric, CANCEL_RETRACTS, t)
    warned = {s[0] for s in mine if s[1] == "warning"} - {s[0] for s in mine if s[1] == "stopped"}
    for key in sorted(warned):
        if key == c.key:
            body = alert_body("stopped", cut, target, None, t, cut.elapsed_s, deadline_at)
        else:  # an earlier cycle: its `met`, taken back, becomes the clear
            body = mine[(key, "met", None)]._replace(kind="stopped", emitted_at=t)
        fold.set_alert(body)


ACTIONS: dict[Action, Callable[[Fold, str, datetime], None]] = {
    Action.START: _start,
    Action.STOP: _stop,
    Action.FOLLOW_STATUS: Fold.follow_status,  # rule 3
    Action.RETARGET: _retarget,
    Action.REOPEN: _reopen,
    Action.CANCEL: _cancel,
    Action.CYCLE: _cycle,
}


def _opened_event(events: list[Recorded] | tuple[Recorded, ...]) -> Recorded | None:
    return next((e for e in events if e.type == "opened"), None)
