"""Live breach forecast: score open resolution clocks and publish `at_risk` alerts.

With a model configured (`SLA_FORECAST_MODEL`), the incident steps hand every committed step
here. `RiskWatch` keeps a `DeskBook` of the incidents this worker sees (its partitions only:
with N workers each one's desk counts cover about 1/N of the desk, and they start empty after
a restart; the model is trained without the desk features by default, so they only inform),
scores the incident at each event, and re-scores open incidents on ticks: at most `PER_TICK`
per tick, each at most once per `rescore_s` (SLA_FORECAST_RESCORE_S).

An `at_risk` alert goes out when the calibrated probability reaches the contract's
`at_risk_level` (default 0.7): one per crossing, with a stable id (incident, metric, kind,
level, crossing number), never for a paused, breached or stopped clock. It is cleared (a
`retracted` naming it) when the clock settles, or when the probability stays below the level
minus `MARGIN` for `CLEAR_AFTER` scores in a row (a model's score moves in steps; a single low
one would make the alert flap). The watch lives in memory: after a restart, crossings count
from zero again, so the same ids come back and a notifier drops the repeats.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from sla_stream.core import alert_ids
from sla_stream.core.calendar import calendar_for
from sla_stream.core.clock import Clock, elapsed_at
from sla_stream.core.incident import IncidentState
from sla_stream.core.models import Alert, IncidentEvent
from sla_stream.core.risk_desk import DeskBook
from sla_stream.core.risk_features import OPENED_FACTS, features_at
from sla_stream.core.terms import ContractRecord, ContractTerms

DEFAULT_LEVEL = 0.7
MARGIN = 0.1
CLEAR_AFTER = 3  # scores in a row below the level minus the margin: one low score is noise
PER_TICK = 50
RESCORE_S = 30.0
METRIC = "resolution"
if TYPE_CHECKING:  # lightgbm loads only when a model is configured
    from sla_stream.analytics.forecast import RiskModel

SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass
class Watched:
    """What the watch knows of one open incident on this worker."""

    partition: int
    facts: dict[str, Any] = field(default_factory=dict)
    scored_wall: float = 0.0
    probability: float | None = None
    reasons: tuple[str, ...] = ()
    crossings: int = 0
    low_scores: int = 0  # consecutive scores below the level minus the margin
    live_alert: Alert | None = None  # the at_risk alert not yet cleared


class RiskWatch:
    """Scores open clocks with a trained model; returns the alerts to publish."""

    def __init__(
        self, model: RiskModel, registry: CollectorRegistry, rescore_s: float = RESCORE_S
    ) -> None:
        self.model = model
        self.rescore_s = rescore_s
        self.book = DeskBook()
        self.watched: dict[str, Watched] = {}
        self.scores = Histogram(
            "sla_risk_score",
            "Breach probabilities scored",
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        self.at_risk = Counter("sla_at_risk_alerts", "at_risk alerts published", registry=registry)
        self._cursor: dict[int, list[str]] = {}

    def saw(self, event: IncidentEvent, partition: int) -> None:
        """Keep the opening facts the model may use (the engine does not record them)."""
        if event.type == "opened":
            w = self.watched.setdefault(event.incident_id, Watched(partition))
            w.facts = {k: event.attributes.get(k) for k in OPENED_FACTS}

    def after_step(
        self,
        partition: int,
        previous: IncidentState | None,
        state: IncidentState,
        outcomes: tuple,
        contract: ContractRecord | None,
        now: datetime,
    ) -> list[Alert]:
        """Feed the desk from a committed step, then score the incident; alerts to publish."""
        self._feed_desk(previous, state, outcomes, now)
        return self.score(partition, state, contract, now)

    def score(
        self, partition: int, state: IncidentState, contract: ContractRecord | None, now: datetime
    ) -> list[Alert]:
        w = self.watched.setdefault(state.incident_id, Watched(partition))
        terms = contract.version(state.contract_version or 1) if contract else None
        clock = _resolution(state)
        if terms is None or clock is None or state.opened_at is None:
            return []
        if clock.phase not in ("running", "paused") or clock.breached_at is not None:
            self.watched.pop(state.incident_id, None)
            return self._clear(w, now, terms)  # settled: nothing left to forecast
        if clock.phase == "paused":
            return []  # no new alert while paused; a live one stays until it settles or falls
        row = features_at(state, now, terms, self.book.state(state.team, now), w.facts)
        probability = float(self.model.predict([row])[0])
        w.scored_wall, w.probability = time.monotonic(), probability
        self.scores.observe(probability)
        level = terms.at_risk_level or DEFAULT_LEVEL
        if w.live_alert is None and probability >= level:
            w.reasons = tuple(self.model.reasons(row))
            w.live_alert = self._alert(state, clock, terms, level, w, probability, now)
            w.crossings += 1
            self.at_risk.inc()
            return [w.live_alert]
        w.low_scores = w.low_scores + 1 if probability < level - MARGIN else 0
        if w.live_alert is not None and w.low_scores >= CLEAR_AFTER:
            return self._clear(w, now, terms)
        return []

    def due_for_rescoring(self, partition: int) -> list[str]:
        """Up to `PER_TICK` incidents of `partition` not scored for `RESCORE_S`, round robin."""
        queue = self._cursor.get(partition) or [
            i for i, w in self.watched.items() if w.partition == partition
        ]
        stale_before = time.monotonic() - self.rescore_s
        picked: list[str] = []
        while queue and len(picked) < PER_TICK:
            incident_id = queue.pop()
            w = self.watched.get(incident_id)
            if w is not None and w.scored_wall <= stale_before:
                picked.append(incident_id)
        self._cursor[partition] = queue
        return picked

    def at_risk_now(self) -> list[dict[str, Any]]:
        """Open incidents with a score, riskiest first."""
        items = [
            {
                "incident_id": i,
                "probability": w.probability,
                "reasons": list(w.reasons),
                "alert_id": w.live_alert.alert_id if w.live_alert else None,
            }
            for i, w in self.watched.items()
            if w.probability is not None
        ]
        return sorted(items, key=lambda d: -d["probability"])

    def _feed_desk(
        self, previous: IncidentState | None, state: IncidentState, outcomes: tuple, now: datetime
    ) -> None:
        incident_id, team = state.incident_id, state.team
        was_open = previous is not None and _is_open(previous)
        if _is_open(state):
            if previous is None or previous.opened_at is None:
                self.book.opened(incident_id, team, state.opened_at or now)
            elif not was_open:
                self.book.returned(incident_id, team)
            else:
                self.book.moved(incident_id, team)
        elif was_open and state.opened_at is not None:
            self.book.left(incident_id, now, (now - state.opened_at).total_seconds() / 3600)
        for o in outcomes:
            if o.metric == METRIC and o.withdraws is None:
                self.book.clock_settled(o.team, o.settled_at, o.met, o.completed_at)

    def _alert(
        self,
        state: IncidentState,
        clock: Clock,
        terms: ContractTerms,
        level: float,
        w: Watched,
        probability: float,
        now: datetime,
    ) -> Alert:
        target = terms.target(METRIC, clock.severity)
        assert target is not None
        cal = calendar_for(terms.calendars.get(target.calendar, target.calendar))
        return Alert(
            alert_id=alert_ids.alert_id(state.incident_id, METRIC, "at_risk", level, w.crossings),
            kind="at_risk",
            incident_id=state.incident_id,
            contract_id=terms.contract_id,
            customer_id=terms.customer_id,
            metric=METRIC,
            severity=clock.severity,
            threshold=level,
            allowance_s=target.allowance_s,
            elapsed_s=elapsed_at(clock, now, cal),
            deadline=clock.deadline_at,
            clause_id=target.clause_id,
            clause_title=target.clause_title,
            emitted_at=now,
            probability=round(probability, 4),
            reasons=w.reasons,
            model_version=self.model.version,
        )

    def _clear(self, w: Watched, now: datetime, terms: ContractTerms) -> list[Alert]:
        live, w.live_alert = w.live_alert, None
        if live is None:
            return []
        return [
            live.model_copy(
                update={
                    "alert_id": alert_ids.retraction_id(live.alert_id),
                    "kind": "retracted",
                    "retracts": live.alert_id,
                    "emitted_at": now,
                    "probability": w.probability,
                }
            )
        ]


def _resolution(state: IncidentState) -> Clock | None:
    return next((c for c in state.clocks if c.metric == METRIC), None)


def _is_open(state: IncidentState) -> bool:
    clock = _resolution(state)
    return state.final is None and clock is not None and clock.phase in ("running", "paused")


# -- the hooks the incident steps call ------------------------------------------------------------


async def after_commit(
    steps: Any, partition: int, previous: IncidentState | None, step: Any
) -> None:
    """After a step was persisted: feed the desk, score at the step's instant, publish."""
    watch: RiskWatch = steps.risk
    state: IncidentState = step.state
    now = state.horizon_at
    if now is None:
        return
    contract = steps.contracts(state.contract_id) if state.contract_id else None
    alerts = watch.after_step(partition, previous, state, step.outcomes, contract, now)
    if alerts:
        _publish(steps, partition, alerts)


async def on_tick(steps: Any, partition: int, now: datetime) -> None:
    """Re-score a bounded number of this partition's open incidents at the tick's instant."""
    watch: RiskWatch = steps.risk
    for incident_id in watch.due_for_rescoring(partition):
        record = steps.store.load(incident_id)
        if record is None:
            watch.watched.pop(incident_id, None)
            continue
        state = record.state
        contract = steps.contracts(state.contract_id) if state.contract_id else None
        alerts = watch.score(partition, state, contract, max(now, state.horizon_at or now))
        if alerts:
            _publish(steps, partition, alerts)


def _publish(steps: Any, partition: int, alerts: list[Alert]) -> None:
    """Send at once: an at_risk has no record write to wait for, and is not in the outbox
    (so not under the acknowledged-effects watermark either: sent in the middle of a batch, it
    must not move the watermark past the batch's entries)."""
    publisher = steps.publisher
    publisher.publish_now(publisher.prepare(alerts, ()))


def load_watch(path: Any, registry: CollectorRegistry, rescore_s: float = RESCORE_S) -> RiskWatch:
    from sla_stream.analytics.forecast import RiskModel

    return RiskWatch(RiskModel.load(path), registry, rescore_s)
