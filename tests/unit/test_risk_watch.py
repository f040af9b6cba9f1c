"""The live forecast's rules, driven through the engine with a real model: one at_risk per
crossing with stable ids, none while paused, cleared after low scores or when the clock settles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from sla_stream.core import engine
from sla_stream.core.models import IncidentEvent
from sla_stream.core.terms import ContractRecord, ContractTerms, Target
from sla_stream.stream.risk import CLEAR_AFTER, RiskWatch
from tests.forecast_support import severity_model

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def contract(level: float | None = None) -> ContractRecord:
    targets = tuple(
        Target(metric="resolution", severity=s, allowance_s=36_000, calendar="24x7",
               clause_id="R", clause_title="Resolution", pauses=True)
        for s in ("P1", "P2", "P3", "P4")
    )  # fmt: skip
    terms = ContractTerms(
        contract_id="c", customer_id="cu", tier="t", timezone="UTC", at_risk_level=level,
        pause_statuses=("pending_customer",), targets=targets,
        calendars={"24x7": {"timezone": "UTC", "hours": "24x7"}},
    )  # fmt: skip
    return ContractRecord(contract_id="c", versions=(terms,))


@pytest.fixture(scope="module")
def model():
    return severity_model()


class Incident:
    """One incident driven through the engine and the watch, minute by minute."""

    def __init__(self, watch: RiskWatch, record: ContractRecord) -> None:
        self.watch, self.record, self.state, self.n = watch, record, None, 0

    def send(self, type_: str, **fields) -> list:
        self.n += 1
        at = T0 + timedelta(minutes=self.n)
        event = IncidentEvent(event_id=f"e{self.n}", incident_id="INC-1", type=type_,
                              occurred_at=at, contract_id="c", **fields)  # fmt: skip
        self.watch.saw(event, 0)
        previous = self.state
        step = engine.apply(previous, event, self.record)
        self.state = step.state
        return self.watch.after_step(0, previous, step.state, step.outcomes, self.record, at)

    def rescore(self) -> list:
        self.n += 1
        return self.watch.score(0, self.state, self.record, T0 + timedelta(minutes=self.n))


def test_one_alert_per_crossing_cleared_after_low_scores_with_stable_ids(model) -> None:
    def run() -> list:
        inc = Incident(RiskWatch(model, CollectorRegistry()), contract())
        sent = inc.send("opened", severity="P1")
        sent += inc.rescore() + inc.rescore()  # still high: nothing new
        sent += inc.send("severity_changed", severity="P4")  # low: not yet cleared
        sent += [a for _ in range(CLEAR_AFTER - 1) for a in inc.rescore()]
        sent += inc.send("severity_changed", severity="P1")  # crosses again
        sent += inc.send("resolved")  # settles: cleared
        return sent

    sent = run()
    assert [a.kind for a in sent] == ["at_risk", "retracted", "at_risk", "retracted"]
    first, clear, second, settle = sent
    assert clear.retracts == first.alert_id and settle.retracts == second.alert_id
    assert first.alert_id != second.alert_id
    assert first.probability >= 0.7 and first.reasons and first.model_version == model.version
    assert [a.alert_id for a in run()] == [a.alert_id for a in sent]  # same history, same ids


def test_no_alert_for_a_paused_clock_and_the_contract_sets_the_level(model) -> None:
    paused = Incident(RiskWatch(model, CollectorRegistry()), contract())
    assert paused.send("opened", severity="P1", status="pending_customer") == []
    assert paused.rescore() == []
    assert [a.kind for a in paused.send("status_changed", status="active")] == ["at_risk"]

    lenient = Incident(RiskWatch(model, CollectorRegistry()), contract(level=0.5))
    (alert,) = lenient.send("opened", severity="P1")
    assert alert.threshold == 0.5 and alert.metric == "resolution"
    assert len(set(alert.reasons)) == len(alert.reasons), "reasons are distinct"
