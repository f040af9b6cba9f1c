"""The open-clocks gauge kept by difference, per partition, and recounted after a rebalance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from sla_stream.core.clock import Clock
from sla_stream.core.engine import IncidentState
from sla_stream.stream.metrics import Metrics
from sla_stream.stream.open_clocks import OpenClocks, open_slots


def state(*clocks: tuple[str, str, str], parked: bool = False) -> IncidentState:
    return IncidentState(
        incident_id="i",
        parked=parked,
        clocks=tuple(Clock(m, s, p) for m, s, p in clocks),  # type: ignore[arg-type]
    )


def gauge(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (s.labels["metric"], s.labels["severity"]): s.value
        for fam in metrics.registry.collect()
        if fam.name == "sla_open_clocks"
        for s in fam.samples
    }


def test_open_slots_count_running_and_paused_only() -> None:
    s = state(("first_response", "P1", "stopped"), ("resolution", "P1", "paused"))
    assert open_slots(s) == {("resolution", "P1"): 1}
    assert open_slots(state(("resolution", "P1", "running"), parked=True)) == {}
    assert open_slots(None) == {}


def test_steps_move_the_gauge_and_a_recount_drops_lost_partitions() -> None:
    metrics = Metrics(CollectorRegistry())
    tracker = OpenClocks(metrics.open_clocks)
    opened = state(("first_response", "P1", "running"), ("resolution", "P1", "running"))
    tracker.change(0, None, opened)
    tracker.change(1, None, opened)
    assert gauge(metrics) == {("first_response", "P1"): 2, ("resolution", "P1"): 2}
    responded = state(("first_response", "P1", "stopped"), ("resolution", "P1", "running"))
    tracker.change(0, opened, responded)
    retargeted = state(("first_response", "P1", "stopped"), ("resolution", "P2", "paused"))
    tracker.change(0, responded, retargeted)
    assert gauge(metrics) == {
        ("first_response", "P1"): 1,
        ("resolution", "P1"): 1,
        ("resolution", "P2"): 1,
    }
    tracker.recount([(1, opened)])  # partition 0 went to another worker
    assert gauge(metrics) == {
        ("first_response", "P1"): 1,
        ("resolution", "P1"): 1,
        ("resolution", "P2"): 0,
    }
