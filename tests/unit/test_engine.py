"""The engine's operations beyond the clock table: parking, versions, de-duplication, ids, state."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from sla_stream.core import alert_ids, engine
from sla_stream.core.engine import TRANSITIONS, Action, IncidentState
from sla_stream.core.models import EVENT_TYPES, METRICS
from tests.unit.engine_cases import (
    STANDARD_TARGETS,
    Run,
    alert_rows,
    at,
    event,
    events,
    record,
    target,
    terms,
)

FR, RES, UPD = "first_response", "resolution", "update"
P1_STORY = (
    ("Mon 09:00", "opened", {"severity": "P1"}),
    ("Mon 10:30", "responded"),
    ("Mon 12:00", "status_changed", {"status": "pending_customer"}),
    ("Mon 13:00", "status_changed", {"status": "in_progress"}),
    ("Mon 14:00", "resolved"),
)


def test_table_lists_every_metric_and_event_type_with_only_known_actions() -> None:
    assert set(TRANSITIONS) == {(m, t) for m in METRICS for t in EVENT_TYPES}
    assert TRANSITIONS[(FR, "responded")] == (Action.STOP,)
    assert TRANSITIONS[(RES, "responded")] == (Action.FOLLOW_STATUS,)
    assert TRANSITIONS[(RES, "reopened")][0] is Action.REOPEN
    assert all(isinstance(a, Action) for row in TRANSITIONS.values() for a in row)
    starts = {t for (m, t), row in TRANSITIONS.items() if Action.START in row and m != UPD}
    assert starts == {"opened", "severity_changed"}  # rule 1: a raise can start a clock
    # rule 14: update cycles start at the first response, and after it at a raise or a reopen
    cycle_starts = {t for (m, t), row in TRANSITIONS.items() if Action.START in row and m == UPD}
    assert cycle_starts == {"responded", "severity_changed", "reopened"}
    assert {t for (_, t), row in TRANSITIONS.items() if Action.CYCLE in row} == {
        "responded",
        "updated",
    }


def test_unknown_contract_parks_then_evaluates_from_recorded_events() -> None:
    run = Run()
    evs = events(*P1_STORY[:2])
    first = run.apply(evs[0], contract=None)
    assert first.state.parked and first.next_due_at is None and first.ignored is None
    run.apply(evs[1], contract=None)
    tick = run.advance("Mon 11:00", contract=None)
    assert tick.ignored == "parked" and not run.alerts and not run.outcomes
    assert run.state is not None and run.state.contract_id == "acme"
    arrived = run.advance("Mon 11:05")  # the contract is known now
    assert not arrived.state.parked and arrived.ignored is None
    # past instants fire at once, each with its own instant
    assert alert_rows(run.alerts) == [
        ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
        ("warning", FR, 0.75, 2700.0, "Mon 09:45", "Mon 10:00"),
        ("warning", FR, 0.9, 3240.0, "Mon 09:54", "Mon 10:00"),
        ("breach", FR, 1.0, 3600.0, "Mon 10:00", "Mon 10:00"),
        ("stopped", FR, None, 5400.0, "Mon 10:30", "Mon 10:00"),
        ("warning", RES, 0.5, 7200.0, "Mon 11:00", "Mon 13:00"),
    ]
    assert arrived.next_due_at == at("Mon 12:00")


def test_an_evaluated_incident_parks_if_its_contract_disappears_and_catches_up() -> None:
    evs = events(*P1_STORY)
    whole = Run().feed(evs, "Mon 18:00")
    run = Run()
    run.apply(evs[0])
    run.apply(evs[1], contract=None)
    run.apply(evs[2], contract=None)
    assert run.state is not None and run.state.parked
    for ev in evs[3:]:
        run.apply(ev)
    run.advance("Mon 18:00")
    assert alert_rows(run.alerts) == alert_rows(whole.alerts)


def test_the_version_in_force_at_opening_is_pinned() -> None:
    v1 = terms(version=1, effective_to=at("Mon 12:00"))
    faster = (target(FR, "P1", 0.5, "24x7"), *STANDARD_TARGETS[1:])
    v2 = terms(faster, version=2, effective_from=at("Mon 12:00"))
    contract = record(v1, v2)
    early = Run(contract).feed([event(1, "Mon 11:00", "opened", severity="P1")], "Mon 12:10")
    late = Run(contract).feed([event(1, "Mon 12:30", "opened", severity="P1")], "Mon 12:50")
    assert early.state is not None and early.state.contract_version == 1
    assert late.state is not None and late.state.contract_version == 2
    assert {a.allowance_s for a in early.alerts if a.metric == FR} == {3600.0}
    assert {a.allowance_s for a in late.alerts if a.metric == FR} == {1800.0}
    # the pinned version keeps counting after a newer one is published
    step = early.apply(event(2, "Mon 12:20", "responded"))
    assert step.state.contract_version == 1 and step.alerts[-1].allowance_s == 3600.0


def test_an_event_for_a_version_not_in_the_record_is_parked_not_refused() -> None:
    only_later = record(terms(effective_from=at("Tue 00:00")))
    step = engine.apply(None, event(1, "Mon 09:00", "opened", severity="P1"), only_later)
    assert step.ignored is None and step.state.parked
    assert step.alerts == () and step.outcomes == () and len(step.state.events) == 1
    run = Run().feed(events(*P1_STORY[:1]))
    assert run.state is not None
    v2_only = record(terms(version=2))
    again = engine.apply(run.state, event(2, "Mon 09:10", "responded"), v2_only)
    assert again.ignored is None and again.state.parked and len(again.state.events) == 2


def test_a_repeated_event_changes_nothing() -> None:
    evs = events(*P1_STORY[:2])
    run = Run().feed(evs)
    before = run.state
    for ev in evs:
        step = engine.apply(before, ev, run.contract)
        assert step.ignored == "duplicate"
        assert step.state == before and step.alerts == () and step.outcomes == ()


def test_events_after_a_final_event_are_ignored_and_change_nothing() -> None:
    run = Run().feed(events(("Mon 09:00", "opened", {"severity": "P2"}), ("Mon 10:00", "closed")))
    before = run.state
    step = engine.apply(before, event(9, "Mon 11:00", "reopened"), run.contract)
    assert step.ignored == "after_final" and step.state == before
    assert before is not None and before.final == "closed" and before.next_due_at is None


def test_alert_ids_are_deterministic_and_a_correction_gets_a_new_one() -> None:
    story = events(
        ("Mon 09:00", "opened", {"severity": "P2"}),
        ("Mon 09:30", "responded"),
        ("Mon 12:00", "resolved"),
        ("Mon 14:00", "reopened"),
        ("Mon 16:00", "resolved"),
    )
    one = Run().feed(story, "Mon 20:00")
    two = Run().feed(story, "Mon 20:00")
    assert [a.alert_id for a in one.alerts] == [a.alert_id for a in two.alerts]
    assert one.alerts == two.alerts and one.outcomes == two.outcomes
    mets = [a for a in one.alerts if a.kind == "met" and a.metric == RES]
    retraction = next(a for a in one.alerts if a.kind == "retracted")
    assert mets[0].alert_id == alert_ids.alert_id("INC-1", RES, "met", None, 0)
    assert mets[1].alert_id == alert_ids.alert_id("INC-1", RES, "met", None, 1)
    assert retraction.retracts == mets[0].alert_id
    assert len({a.alert_id for a in one.alerts}) == len(one.alerts)
    withdrawal = next(o for o in one.outcomes if o.withdraws)
    assert withdrawal.withdraws == one.outcomes[1].outcome_id
    assert len({o.outcome_id for o in one.outcomes}) == len(one.outcomes)


def test_next_due_at_is_the_earliest_instant_something_fires() -> None:
    run = Run()
    opened = run.apply(event(1, "Mon 09:00", "opened", severity="P1"))
    assert opened.next_due_at == at("Mon 09:30") == opened.state.next_due_at
    quiet = run.advance("Mon 09:29")
    assert quiet.ignored == "nothing_due" and quiet.alerts == ()
    fired = run.advance("Mon 09:30")
    assert [a.threshold for a in fired.alerts] == [0.5]
    assert fired.next_due_at == at("Mon 09:45")
    done = run.apply(event(2, "Mon 09:40", "closed"))
    assert done.next_due_at is None


def test_apply_fires_what_fell_due_before_the_event_if_the_runtime_had_not() -> None:
    run = Run()
    run.apply(event(1, "Mon 09:00", "opened", severity="P1"))
    step = run.apply(event(2, "Mon 09:50", "responded"))
    assert alert_rows(list(step.alerts)) == [
        ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
        ("warning", FR, 0.75, 2700.0, "Mon 09:45", "Mon 10:00"),
        ("met", FR, None, 3000.0, "Mon 09:50", "Mon 10:00"),
    ]


def test_state_survives_bytes_and_continues_identically() -> None:
    evs = events(*P1_STORY)
    direct = Run().feed(evs, "Mon 18:00")
    run = Run()
    for ev in evs:
        run.run_dues(before=ev.occurred_at)
        assert run.state is None or IncidentState.from_bytes(run.state.to_bytes()) == run.state
        if run.state is not None:
            run.state = IncidentState.from_bytes(run.state.to_bytes())
        run.apply(ev)
    run.advance("Mon 18:00")
    assert run.alerts == direct.alerts and run.outcomes == direct.outcomes
    assert run.state is not None
    data = run.state.to_bytes()
    assert data.startswith(b"{") and b" " not in data[:40]
    assert IncidentState.from_bytes(data) == run.state


def test_an_event_dated_before_opened_counts_at_opened() -> None:
    early = event(1, "Mon 08:55", "responded")
    opened = event(2, "Mon 09:00", "opened", severity="P1")
    run = Run()
    first = run.apply(early)
    assert first.ignored is None and first.state.opened_at is None and not first.state.parked
    run.apply(opened)
    assert alert_rows(run.alerts) == [("met", FR, None, 0.0, "Mon 09:00", "Mon 10:00")]


def test_a_second_opened_changes_nothing() -> None:
    run = Run().feed(
        [
            event(1, "Mon 09:00", "opened", severity="P1"),
            event(2, "Mon 09:05", "opened", severity="P4"),
            event(3, "Mon 09:20", "responded"),
        ]
    )
    assert run.state is not None and run.state.severity == "P1"
    assert alert_rows(run.alerts) == [("met", FR, None, 1200.0, "Mon 09:20", "Mon 10:00")]


def test_instants_come_out_in_utc_whatever_offset_came_in() -> None:
    opened = event(1, "Mon 09:00", "opened", severity="P1")
    berlin = opened.occurred_at.astimezone(ZoneInfo("Europe/Berlin"))
    shifted = opened.model_copy(update={"occurred_at": berlin})
    run = Run().feed([shifted], "Mon 09:30")
    assert run.alerts[0].emitted_at.utcoffset() == timedelta(0)
    assert run.alerts[0].to_json().count(b'Z"') >= 2


def test_state_bytes_carry_every_field() -> None:
    """A state with every field away from its default comes back equal from its bytes."""
    run = Run()
    for ev in events(
        ("Mon 09:00", "opened", {"severity": "P1", "team": "net", "category": "x"}),
        ("Mon 10:30", "responded"),
        ("Mon 12:00", "resolved", {"status": "resolved"}),
        ("Mon 14:00", "reopened", {"status": "pending_customer"}),
        ("Mon 15:00", "severity_changed", {"severity": "P2"}),
    ):
        run.run_dues(before=ev.occurred_at)
        run.apply(ev)
    parked = run.apply(event(9, "Mon 16:00", "status_changed", status="in_progress"), None)
    state = parked.state.model_copy(update={"final": "closed", "next_due_at": at("Mon 17:00")})
    fields = state.model_dump(exclude_defaults=True)
    assert set(fields) >= {"parked", "pending_since", "final", "ledger", "clocks", "events"}
    assert state.ledger.revisions and state.ledger.outcomes
    assert any(c.breached_at or c.stopped_at for c in state.clocks)
    assert IncidentState.from_bytes(state.to_bytes()) == state
    with pytest.raises(ValueError, match="format"):
        IncidentState.from_bytes(b'{"incident_id": "x"}')
