"""What an incident has published, and the diff that turns "what should exist" into effects.

The engine derives, from an incident's events, the alerts and outcomes that should be live
(`AlertBody` per slot, `OutcomeBody` per metric). `reconcile` compares them with the ledger of
what was published and returns the new ledger and the effects: a `retracted` alert for each live
alert that should no longer exist or now reads differently, then the new or corrected alerts;
a withdrawal record for each outcome that should no longer stand, then the new outcomes. After
every step the ledger's live set equals the derived set, so a step that appends an event in
time order can start from the ledger instead of re-deriving the incident.
"""

from __future__ import annotations

import functools
import operator
from datetime import datetime
from typing import Any, NamedTuple

from sla_stream.core import alert_ids
from sla_stream.core.clock import split_key
from sla_stream.core.models import METRICS, Alert, Outcome

# (metric, kind, threshold): one alert is live per slot at a time. Here and in the bodies,
# `metric` is a clock's key: a cycle of a cycling metric is `metric#cycle` (`Clock.key`).
AlertSlot = tuple[str, str, float | None]
# Rank of each alert kind among alerts of one instant; the engine decides it (`ALERT_ORDER`).
KindOrder = dict[str, int]
METRIC_ORDER = {metric: rank for rank, metric in enumerate(METRICS)}


class AlertBody(NamedTuple):
    metric: str
    kind: str
    threshold: float | None
    severity: str
    allowance_s: float
    elapsed_s: float
    deadline_at: datetime | None
    emitted_at: datetime
    clause_id: str
    clause_title: str

    # (metric, kind, threshold), by a C-level getter: the ledger asks for it a dozen times a step
    slot = property(operator.itemgetter(0, 1, 2), doc="the alert's (metric, kind, threshold)")


class OutcomeBody(NamedTuple):
    metric: str
    severity: str
    allowance_s: float
    elapsed_s: float
    met: bool
    completed_at: datetime | None
    settled_at: datetime
    category: str | None
    team: str | None


class Ident(NamedTuple):
    """What every effect of one incident carries besides its body."""

    incident_id: str
    contract_id: str
    customer_id: str
    tier: str
    opened_at: datetime
    reused: bool = False  # the id had earlier lives: ids are salted with `opened_at`

    @property
    def life(self) -> str | None:
        """What tells this life's ids from an earlier life's; None for a first life."""
        return self.opened_at.isoformat() if self.reused else None


class LiveAlert(NamedTuple):
    alert_id: str
    body: AlertBody


class LiveOutcome(NamedTuple):
    outcome_id: str
    body: OutcomeBody


class Ledger(NamedTuple):
    """Live alerts and outcomes, and per slot how many retractions / outcomes came before.

    A NamedTuple (it serialises as a JSON array inside the incident state): one is built per
    step that publishes anything, and a model's construction cost showed in the profile."""

    alerts: tuple[LiveAlert, ...] = ()
    outcomes: tuple[LiveOutcome, ...] = ()
    revisions: dict[str, int] = {}  # shared default, never mutated: `reconcile` copies it

    def live_alerts(self) -> dict[AlertSlot, AlertBody]:
        return {body[:3]: body for _, body in self.alerts}  # slot: (metric, kind, threshold)

    def live_outcomes(self) -> dict[str, OutcomeBody]:
        return {body[0]: body for _, body in self.outcomes}


class Reconciled(NamedTuple):
    ledger: Ledger
    alerts: tuple[Alert, ...]
    outcomes: tuple[Outcome, ...]


def reconcile(
    ledger: Ledger,
    alerts: dict[AlertSlot, AlertBody],
    outcomes: dict[str, OutcomeBody],
    removed_at: dict[AlertSlot, datetime],
    cause_at: datetime,
    ident: Ident,
    kind_order: KindOrder,
) -> Reconciled:
    """Effects that take the published state to the derived one, alerts of one instant in
    `kind_order`.

    A retraction is emitted at the instant its slot was removed in the derived history (a
    reopen, a cancel) or, for a correction, at `cause_at`: the instant of the event that made
    the published alert wrong.
    """
    revisions = dict(ledger.revisions)
    live: list[LiveAlert] = []
    emitted: list[Alert] = []
    for entry in ledger.alerts:
        body = entry.body
        if alerts.get(body.slot) == body:
            live.append(entry)
            continue
        at = removed_at.get(body.slot, cause_at)
        emitted.append(_retraction(entry, at, ident))
        key = _slot_key(body.slot)
        revisions[key] = revisions.get(key, 0) + 1
    have = {e.body.slot for e in live}
    kept = len(live)
    for slot, body in alerts.items():
        if slot in have:
            continue
        revision = revisions.get(_slot_key(slot), 0)
        entry = LiveAlert(
            alert_id=alert_ids.alert_id(ident.incident_id, *slot, revision, ident.life),
            body=body,
        )
        live.append(entry)
        emitted.append(_alert(entry.alert_id, body, ident))
    if len(emitted) > 1:
        emitted.sort(key=lambda a: _alert_order(a, kind_order))
    if len(live) > kept:  # the ledger's entries are in order already; only new ones move them
        live.sort(key=lambda e: _alert_order(e.body, kind_order))
    kept, published = _reconcile_outcomes(ledger, outcomes, revisions, ident)
    new = Ledger(tuple(live), kept, revisions)
    return Reconciled(new, tuple(emitted), published)


def reconcile_changes(
    ledger: Ledger,
    alerts: dict[AlertSlot, AlertBody | None],
    outcomes: dict[str, OutcomeBody | None],
    alerts_before: dict[AlertSlot, AlertBody | None],
    outcomes_before: dict[str, OutcomeBody | None],
    removed_at: dict[AlertSlot, datetime],
    cause_at: datetime,
    ident: Ident,
    kind_order: KindOrder,
) -> Reconciled:
    """`reconcile` for a derived state that started as the ledger's live set and changed only
    in the slots and metrics of `alerts_before` and `outcomes_before` (what each held then;
    `alerts` and `outcomes` need hold only those, None for removed): the same result, without
    comparing what did not change.

    It equals `reconcile`'s because retractions keep the ledger's order, as there, and the
    alerts and outcomes of distinct slots never tie in the order they are sorted by (kind,
    instant, metric and cycle, threshold), so the order new ones are found in does not count.
    """
    gone, fresh = _changed(alerts, alerts_before)
    withdrawn, settled = _changed(outcomes, outcomes_before)
    if not (gone or fresh or withdrawn or settled):
        return Reconciled(ledger, (), ())
    # Copied only when a retraction or an outcome counts a revision (new alerts count none).
    revisions = dict(ledger.revisions) if gone or settled else ledger.revisions
    live_alerts, emitted = ledger.alerts, ()
    if gone or fresh:
        live_alerts, emitted = _changed_alerts(
            ledger, gone, fresh, removed_at, cause_at, revisions, ident, kind_order
        )
    live_outcomes, published = ledger.outcomes, ()
    if withdrawn or settled:
        live_outcomes, published = _changed_outcomes(ledger, withdrawn, settled, revisions, ident)
    return Reconciled(Ledger(live_alerts, live_outcomes, revisions), emitted, published)


def _changed(after: dict[Any, Any], before: dict[Any, Any]) -> tuple[set[Any], list[Any]]:
    """Of the keys `before` holds (a key's value then, None for none): those whose value is
    gone or replaced, and the (key, value) of those with a new value."""
    gone: set[Any] = set()
    fresh: list[tuple[Any, Any]] = []
    for key, old in before.items():
        new = after.get(key)
        if new == old:
            continue
        if old is not None:
            gone.add(key)
        if new is not None:
            fresh.append((key, new))
    return gone, fresh


def _changed_alerts(
    ledger: Ledger,
    gone: set[AlertSlot],
    fresh: list[tuple[AlertSlot, AlertBody]],
    removed_at: dict[AlertSlot, datetime],
    cause_at: datetime,
    revisions: dict[str, int],
    ident: Ident,
    kind_order: KindOrder,
) -> tuple[tuple[LiveAlert, ...], tuple[Alert, ...]]:
    live: list[LiveAlert] = [] if gone else list(ledger.alerts)
    emitted: list[Alert] = []
    for entry in ledger.alerts if gone else ():
        slot = entry.body.slot
        if slot not in gone:
            live.append(entry)
            continue
        emitted.append(_retraction(entry, removed_at.get(slot, cause_at), ident))
        key = _slot_key(slot)
        revisions[key] = revisions.get(key, 0) + 1
    added: list[LiveAlert] = []
    for slot, body in fresh:
        revision = revisions.get(_slot_key(slot), 0)
        alert_id = alert_ids.alert_id(ident.incident_id, *slot, revision, ident.life)
        added.append(LiveAlert(alert_id, body))
        emitted.append(_alert(alert_id, body, ident))
    if len(emitted) > 1:
        emitted.sort(key=lambda a: _alert_order(a, kind_order))
    return _merged(live, added, kind_order), tuple(emitted)


def _merged(
    live: list[LiveAlert], added: list[LiveAlert], kind_order: KindOrder
) -> tuple[LiveAlert, ...]:
    """`live` (in order) with `added` in their places: appended when they all sort after the
    last, the usual case (no ties: alerts of distinct slots never sort equal)."""
    if not added:
        return tuple(live)

    def order(e: LiveAlert) -> tuple:
        return _alert_order(e.body, kind_order)

    if len(added) > 1:
        added.sort(key=order)
    if not live or order(added[0]) > order(live[-1]):
        return (*live, *added)
    return tuple(sorted(live + added, key=order))


def _changed_outcomes(
    ledger: Ledger,
    withdrawn: set[str],
    settled: list[tuple[str, OutcomeBody]],
    revisions: dict[str, int],
    ident: Ident,
) -> tuple[tuple[LiveOutcome, ...], tuple[Outcome, ...]]:
    kept: list[LiveOutcome] = []
    published: list[Outcome] = []
    for entry in ledger.outcomes:
        if entry.body.metric in withdrawn:
            published.append(_withdrawal(entry, ident))
        else:
            kept.append(entry)
    fresh: list[Outcome] = []
    for metric, body in settled:
        key = f"outcome|{metric}"
        revision = revisions.get(key, 0)
        revisions[key] = revision + 1
        outcome_id = alert_ids.outcome_id(ident.incident_id, metric, revision, ident.life)
        kept.append(LiveOutcome(outcome_id, body))
        fresh.append(_outcome(outcome_id, body, ident, None))
    if fresh:
        kept.sort(key=lambda e: _rank(e.body.metric))
    if len(fresh) > 1:
        fresh.sort(key=lambda o: (o.completed_at or o.settled_at, _rank(o.metric, o.cycle)))
    return tuple(kept), (*published, *fresh)


def _reconcile_outcomes(
    ledger: Ledger, outcomes: dict[str, OutcomeBody], revisions: dict[str, int], ident: Ident
) -> tuple[tuple[LiveOutcome, ...], tuple[Outcome, ...]]:
    kept: list[LiveOutcome] = []
    withdrawals: list[Outcome] = []
    fresh: list[Outcome] = []
    for entry in ledger.outcomes:
        if outcomes.get(entry.body.metric) == entry.body:
            kept.append(entry)
        else:
            withdrawals.append(_withdrawal(entry, ident))
    have = {e.body.metric for e in kept}
    for metric, body in outcomes.items():
        if metric in have:
            continue
        key = f"outcome|{metric}"
        revision = revisions.get(key, 0)
        revisions[key] = revision + 1
        entry = LiveOutcome(
            outcome_id=alert_ids.outcome_id(ident.incident_id, metric, revision, ident.life),
            body=body,
        )
        kept.append(entry)
        fresh.append(_outcome(entry.outcome_id, body, ident, None))
    if fresh:  # the ledger's entries are in order already; only new ones move them
        kept.sort(key=lambda e: _rank(e.body.metric))
    if len(fresh) > 1:
        fresh.sort(key=lambda o: (o.completed_at or o.settled_at, _rank(o.metric, o.cycle)))
    return tuple(kept), (*withdrawals, *fresh)


@functools.lru_cache(maxsize=4096)  # a handful of slots (metric, kind, threshold) recur
def _slot_key(slot: AlertSlot) -> str:
    metric, kind, threshold = slot
    return f"{metric}|{kind}|{alert_ids.threshold_key(threshold)}"


def _alert_order(a: Alert | AlertBody, kind_order: KindOrder) -> tuple:
    rank = _rank(a.metric, a.cycle if isinstance(a, Alert) else None)
    return (a.emitted_at, kind_order[a.kind], rank, a.threshold or 0.0)


@functools.lru_cache(maxsize=4096)  # metrics, and the cycles of cycling ones
def _rank(key: str, cycle: int | None = None) -> tuple[int, int]:
    """Metrics in `METRICS` order, a metric's cycles in order."""
    rank = METRIC_ORDER.get(key)  # a metric (or an Alert's, with its cycle): no split
    if rank is not None:
        return rank, cycle or 0
    metric, in_key = split_key(key)
    return METRIC_ORDER[metric], in_key or 0


def _alert(alert_id: str, b: AlertBody, ident: Ident, retracts: str | None = None) -> Alert:
    metric, cycle = split_key(b.metric)
    return Alert.trusted(
        alert_id=alert_id,
        kind=b.kind,
        incident_id=ident.incident_id,
        contract_id=ident.contract_id,
        customer_id=ident.customer_id,
        metric=metric,  # type: ignore[arg-type]
        cycle=cycle,
        severity=b.severity,
        threshold=b.threshold,
        allowance_s=b.allowance_s,
        elapsed_s=b.elapsed_s,
        deadline=b.deadline_at,
        clause_id=b.clause_id,
        clause_title=b.clause_title,
        emitted_at=b.emitted_at,
        retracts=retracts,
    )


def _retraction(entry: LiveAlert, at: datetime, ident: Ident) -> Alert:
    body = entry.body._replace(kind="retracted", emitted_at=at)
    return _alert(alert_ids.retraction_id(entry.alert_id), body, ident, retracts=entry.alert_id)


def _outcome(outcome_id: str, b: OutcomeBody, ident: Ident, withdraws: str | None) -> Outcome:
    metric, cycle = split_key(b.metric)
    return Outcome.trusted(
        outcome_id=outcome_id,
        incident_id=ident.incident_id,
        contract_id=ident.contract_id,
        customer_id=ident.customer_id,
        tier=ident.tier,
        severity=b.severity,
        category=b.category,
        team=b.team,
        metric=metric,  # type: ignore[arg-type]
        cycle=cycle,
        allowance_s=b.allowance_s,
        elapsed_s=b.elapsed_s,
        met=b.met,
        opened_at=ident.opened_at,
        completed_at=b.completed_at,
        settled_at=b.settled_at,
        withdraws=withdraws,
    )


def _withdrawal(entry: LiveOutcome, ident: Ident) -> Outcome:
    return _outcome(alert_ids.withdrawal_id(entry.outcome_id), entry.body, ident, entry.outcome_id)
