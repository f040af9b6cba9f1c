"""Properties of the engine that must hold for any history (hypothesis)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sla_stream.core.engine import IncidentState
from sla_stream.core.models import IncidentEvent
from sla_stream.generate import iter_events
from sla_stream.replay import replay_events
from tests.unit.engine_cases import WEEK0, Run, record

SEVERITY = st.sampled_from(["P1", "P2", "P3", "P4"])
LATER = [
    ("responded", st.just({})),
    (
        "status_changed",
        st.builds(dict, status=st.sampled_from(["pending_customer", "in_progress"])),
    ),
    ("severity_changed", st.builds(dict, severity=SEVERITY)),
    ("resolved", st.just({})),
    ("reopened", st.just({})),
    ("closed", st.just({})),
    ("cancelled", st.just({})),
]
UNTIL = WEEK0 + timedelta(days=9)


@st.composite
def incident_histories(draw: st.DrawFn) -> list[IncidentEvent]:
    """An incident's events: an `opened` and up to 9 more, at minutes that often coincide."""
    start = draw(st.integers(0, 5 * 24 * 60))  # any minute of a working week, nights included
    minutes = st.one_of(st.sampled_from([0, 30, 60, 240]), st.integers(0, 3000))
    out = [_event(0, start, "opened", {"severity": draw(SEVERITY), "contract_id": "acme"})]
    for n in range(1, draw(st.integers(0, 9)) + 1):
        kind, fields = draw(st.sampled_from(LATER))
        out.append(_event(n, start + draw(minutes), kind, draw(fields)))
    return out


def _event(n: int, minute: int, kind: str, fields: dict[str, Any]) -> IncidentEvent:
    return IncidentEvent(
        event_id=f"INC-1-{n}",
        incident_id="INC-1",
        type=kind,  # type: ignore[arg-type]
        occurred_at=WEEK0 + timedelta(minutes=minute),
        **fields,
    )


def final_effects(run: Run) -> tuple[Any, Any]:
    """What stands at the end: live outcomes and live alerts, without ids (ids count history)."""
    assert run.state is not None
    ledger = run.state.ledger
    return (
        sorted(o.body for o in ledger.outcomes),
        sorted(ledger.alerts, key=lambda a: (a.body.metric, a.body.kind, a.body.threshold or 0)),
    )


def published_net(run: Run) -> list[Any]:
    """Outcomes as a rollup sees them: every record, minus the ones withdrawn."""
    live = {o.outcome_id: o for o in run.outcomes if o.withdraws is None}
    for o in run.outcomes:
        if o.withdraws is not None:
            del live[o.withdraws]
    return sorted(
        (o.metric, o.met, o.elapsed_s, o.settled_at, o.completed_at) for o in live.values()
    )


@settings(max_examples=150, deadline=None)
@given(history=incident_histories(), data=st.data())
def test_any_permutation_gives_the_same_final_outcomes(
    history: list[IncidentEvent], data: Any
) -> None:
    in_order = Run().feed(sorted(history, key=lambda e: e.occurred_at), until=None)
    in_order.run_dues(before=UNTIL)
    in_order.advance(UNTIL)
    shuffled = data.draw(st.permutations(history))
    other = Run().feed(list(shuffled), until=None)
    other.run_dues(before=UNTIL)
    other.advance(UNTIL)
    assert final_effects(other)[0] == final_effects(in_order)[0]
    assert [a.body for a in final_effects(other)[1]] == [a.body for a in final_effects(in_order)[1]]
    assert published_net(other) == published_net(in_order)
    # and the live ledger is what the published records add up to
    assert published_net(other) == sorted(
        (b.metric, b.met, b.elapsed_s, b.settled_at, b.completed_at)
        for b in final_effects(other)[0]
    )


@settings(max_examples=100, deadline=None)
@given(history=incident_histories(), data=st.data())
def test_state_bytes_round_trip_between_steps_changes_nothing(
    history: list[IncidentEvent], data: Any
) -> None:
    order = list(data.draw(st.permutations(history)))
    direct = Run().feed(order, until=None)
    persisted = Run()
    for ev in order:
        persisted.run_dues(before=ev.occurred_at)
        if persisted.state is not None:
            persisted.state = IncidentState.from_bytes(persisted.state.to_bytes())
        persisted.apply(ev)
    assert persisted.alerts == direct.alerts
    assert persisted.outcomes == direct.outcomes


@settings(max_examples=100, deadline=None)
@given(history=incident_histories())
def test_a_parked_incident_ends_where_a_known_one_does(history: list[IncidentEvent]) -> None:
    known = Run().feed(history, until=None)
    known.run_dues(before=UNTIL)
    known.advance(UNTIL)
    parked = Run()
    for ev in history:
        parked.apply(ev, contract=None)
    parked.advance(UNTIL, contract=record())
    assert final_effects(parked)[0] == final_effects(known)[0]
    assert published_net(parked) == published_net(known)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), incidents=st.integers(1, 60))
def test_replaying_a_stream_twice_gives_identical_alerts(seed: int, incidents: int) -> None:
    from tests.unit.test_generate import EXAMPLE_CONTRACTS

    stream = list(iter_events(incidents, seed, contracts=EXAMPLE_CONTRACTS))
    first = replay_events(stream, EXAMPLE_CONTRACTS)
    second = replay_events(stream, EXAMPLE_CONTRACTS)
    assert first[0] == second[0]
    assert [a.to_json() for a in first[0]] == [a.to_json() for a in second[0]]
    assert first[1] == second[1]
    assert first[2].render() == second[2].render()
