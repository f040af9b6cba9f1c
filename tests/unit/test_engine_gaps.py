"""Rule gaps closed in review (engine rules 1, 11 and 12), table-driven like test_engine_rules.

A raise to a severity with a target for a metric that has no clock starts it at the change; an
incident id reused after its record's retention gets ids of its own while a first life keeps
the ids it always had; an event for a contract with no version in force at its instant is
parked and evaluated once a version covering it arrives.
"""

from __future__ import annotations

from typing import Any

import pytest

from sla_stream.core import alert_ids, engine
from tests.unit.engine_cases import (
    Run,
    alert_rows,
    at,
    event,
    events,
    name,
    outcome_rows,
    record,
    target,
    terms,
)

FR, RES = "first_response", "resolution"
# P1 and P2 have both targets; P3 a resolution target only; P4 none at all (24x7 throughout).
GAP_TARGETS = (
    target(FR, "P1", 1, "24x7"),
    target(FR, "P2", 2, "24x7"),
    target(RES, "P1", 4, "24x7"),
    target(RES, "P2", 8, "24x7"),
    target(RES, "P3", 40, "24x7"),
)
GAPS = record(terms(GAP_TARGETS))

SEVERITY_CASES: list[tuple[str, list[tuple[Any, ...]], str, list[Any], list[Any]]] = [
    (
        "a raise to a severity with a response target starts that clock at the change",
        [
            ("Mon 09:00", "opened", {"severity": "P3"}),
            ("Mon 10:00", "severity_changed", {"severity": "P1"}),
            ("Mon 10:40", "responded"),
        ],
        "Mon 11:30",
        [
            # FR counts from 10:00 (1 h): 0.5 at 10:30, met at 10:40 with 40 min.
            ("warning", FR, 0.5, 1800.0, "Mon 10:30", "Mon 11:00"),
            ("met", FR, None, 2400.0, "Mon 10:40", "Mon 11:00"),
            # RES (P3 40 h) is retargeted to P1 (4 h) with its hour kept: 0.5 at 11:00.
            ("warning", RES, 0.5, 7200.0, "Mon 11:00", "Mon 13:00"),
        ],
        [(FR, True, 2400.0, "Mon 10:40", "Mon 10:40")],
    ),
    (
        "no response clock once the response came: a later raise starts none",
        [
            ("Mon 09:00", "opened", {"severity": "P3"}),
            ("Mon 09:30", "responded"),
            ("Mon 10:00", "severity_changed", {"severity": "P1"}),
            ("Mon 10:20", "resolved"),
        ],
        "Mon 12:00",
        [("met", RES, None, 4800.0, "Mon 10:20", "Mon 13:00")],
        [(RES, True, 4800.0, "Mon 10:20", "Mon 10:20")],
    ),
    (
        "both clocks start at a raise from a severity with no targets; a raise to P3 starts only "
        "resolution",
        [
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 09:30", "severity_changed", {"severity": "P3"}),
            ("Mon 10:00", "severity_changed", {"severity": "P2"}),
            ("Mon 10:30", "responded"),
            ("Mon 11:00", "resolved"),
        ],
        "Mon 12:00",
        [
            # FR starts at 10:00 on P2 (2 h); RES at 09:30 on P3, retargeted to P2 (8 h) at 10:00.
            ("met", FR, None, 1800.0, "Mon 10:30", "Mon 12:00"),
            ("met", RES, None, 5400.0, "Mon 11:00", "Mon 17:30"),
        ],
        [
            (FR, True, 1800.0, "Mon 10:30", "Mon 10:30"),
            (RES, True, 5400.0, "Mon 11:00", "Mon 11:00"),
        ],
    ),
    (
        "resolution starts at a raise after a reopen, not after the resolve before it",
        [
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 09:30", "resolved"),
            ("Mon 10:00", "severity_changed", {"severity": "P2"}),
            ("Mon 10:30", "reopened"),
            ("Mon 11:00", "severity_changed", {"severity": "P1"}),
            ("Mon 12:00", "resolved"),
        ],
        "Mon 16:00",
        # The resolve stopped first_response for good; resolution counts 11:00-12:00 on P1.
        [("met", RES, None, 3600.0, "Mon 12:00", "Mon 15:00")],
        [(RES, True, 3600.0, "Mon 12:00", "Mon 12:00")],
    ),
    (
        "a raise while pending the customer starts a pausing clock paused",
        [
            ("Mon 09:00", "opened", {"severity": "P4", "status": "pending_customer"}),
            ("Mon 10:00", "severity_changed", {"severity": "P2"}),
            ("Mon 11:00", "status_changed", {"status": "in_progress"}),
            ("Mon 12:00", "resolved"),
        ],
        "Mon 13:00",
        # FR (not pausing) counts from 10:00; RES (pausing) from 11:00.
        [
            ("warning", FR, 0.5, 3600.0, "Mon 11:00", "Mon 12:00"),
            ("warning", FR, 0.75, 5400.0, "Mon 11:30", "Mon 12:00"),
            ("warning", FR, 0.9, 6480.0, "Mon 11:48", "Mon 12:00"),
            ("met", FR, None, 7200.0, "Mon 12:00", "Mon 12:00"),
            ("met", RES, None, 3600.0, "Mon 12:00", "Mon 19:00"),
        ],
        [
            (FR, True, 7200.0, "Mon 12:00", "Mon 12:00"),
            (RES, True, 3600.0, "Mon 12:00", "Mon 12:00"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("rule", "rows", "until", "want_alerts", "want_outcomes"),
    SEVERITY_CASES,
    ids=[c[0] for c in SEVERITY_CASES],
)
def test_severity_change_starts_a_missing_clock(
    rule: str, rows: list[Any], until: str, want_alerts: list[Any], want_outcomes: list[Any]
) -> None:
    run = Run(GAPS).feed(events(*rows), until)
    assert alert_rows(run.alerts) == want_alerts
    assert outcome_rows(run.outcomes) == want_outcomes


@pytest.mark.parametrize("rule", [c[0] for c in SEVERITY_CASES])
def test_late_arrival_derives_the_same_live_effects(rule: str) -> None:
    """Re-deriving from all events (a late event) agrees with the step-by-step path."""
    rows, until = next((c[1], c[2]) for c in SEVERITY_CASES if c[0] == rule)
    in_order = Run(GAPS).feed(events(*rows), until)
    evs = events(*rows)
    late = Run(GAPS).feed([evs[0], *evs[2:], evs[1]], until)
    assert in_order.state is not None and late.state is not None
    assert in_order.state.ledger.live_alerts() == late.state.ledger.live_alerts()
    assert in_order.state.ledger.live_outcomes() == late.state.ledger.live_outcomes()


STORY = [
    ("Mon 09:00", "opened", {"severity": "P1"}),
    ("Mon 09:40", "responded"),
    ("Mon 11:00", "resolved"),
    ("Mon 11:30", "closed"),
]


def test_a_first_life_keeps_the_ids_it_always_had() -> None:
    run = Run(GAPS).feed(events(*STORY), "Mon 12:00")
    assert [a.alert_id for a in run.alerts] == [
        alert_ids.alert_id("INC-1", FR, "warning", 0.5, 0),
        alert_ids.alert_id("INC-1", FR, "met", None, 0),
        alert_ids.alert_id("INC-1", RES, "met", None, 0),
    ]
    assert [o.outcome_id for o in run.outcomes] == [
        alert_ids.outcome_id("INC-1", FR, 0),
        alert_ids.outcome_id("INC-1", RES, 0),
    ]


def test_an_id_reused_after_retention_gets_new_alert_and_outcome_ids() -> None:
    first = Run(GAPS).feed(events(*STORY), "Mon 12:00")
    assert first.state is not None
    marker = first.state.retired()
    assert marker is not None and marker.events == () and marker.retired_lives == 1
    assert marker.incident_id == "INC-1" and not marker.evaluated
    assert engine.IncidentState.from_bytes(marker.to_bytes()) == marker

    def second_life() -> Run:
        run = Run(GAPS)
        run.state = marker
        later = [(w.replace("Mon", "Mon+"), k, *f) for w, k, *f in STORY]
        return run.feed([event(f"b{n}", *row[:2], **(row[2] if len(row) > 2 else {}))
                         for n, row in enumerate(later)], "Mon+ 12:00")  # fmt: skip

    again = second_life()
    assert alert_rows(again.alerts) == [
        (k, m, th, el, e.replace("Mon", "Mon+"), d.replace("Mon", "Mon+"))
        for k, m, th, el, e, d in alert_rows(first.alerts)
    ]
    old_ids = {a.alert_id for a in first.alerts} | {o.outcome_id for o in first.outcomes}
    new_ids = {a.alert_id for a in again.alerts} | {o.outcome_id for o in again.outcomes}
    assert len(new_ids) == 5 and not old_ids & new_ids
    # Still deterministic: the same second life gives the same ids.
    assert [a.alert_id for a in second_life().alerts] == [a.alert_id for a in again.alerts]
    # A record that never opened published nothing: it leaves nothing behind.
    waiting = engine.apply(None, event(1, "Mon 09:00", "responded"), GAPS).state
    assert waiting.retired() is None


def test_an_event_with_no_version_in_force_is_parked_and_evaluated_when_one_arrives() -> None:
    v1_from_tuesday = terms(GAP_TARGETS, effective_from=at("Tue 00:00"))
    run = Run(record(v1_from_tuesday))
    run.feed(events(("Mon 09:00", "opened", {"severity": "P1"}), ("Mon 09:40", "responded")))
    assert run.state is not None and run.state.parked and run.alerts == []
    tick = run.advance("Mon 10:30")
    assert tick.ignored == "parked" and engine.terms_for(run.state, run.contract) is None
    # Version 2 covers Monday (an earlier effective date than version 1): evaluated from the
    # recorded events, past dues firing with their own instants.
    v2 = terms(GAP_TARGETS, version=2, effective_from=at("Mon 00:00"))
    covering = record(v1_from_tuesday, v2)
    assert engine.terms_for(run.state, covering) == v2
    run.advance("Mon 10:30", covering)
    assert run.state.contract_version == 2 and not run.state.parked
    assert (
        alert_rows(run.alerts)
        == [
            ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
            ("met", FR, None, 2400.0, "Mon 09:40", "Mon 10:00"),
            ("warning", RES, 0.5, 7200.0, "Mon 11:00", "Mon 13:00"),
        ][:2]
    )


def test_an_incident_whose_pinned_version_is_gone_waits_for_it() -> None:
    run = Run(GAPS).feed(events(("Mon 09:00", "opened", {"severity": "P1"})), "Mon 09:10")
    assert run.state is not None and run.state.contract_version == 1
    step = run.advance("Mon 09:50", record(terms(GAP_TARGETS, version=2)))
    assert step.state.parked and step.alerts == ()
    run.advance("Mon 10:10", GAPS)
    # Parked from 09:50: nothing then; back at 10:10, every due of the hour fires at its instant.
    assert [(a.kind, a.threshold, name(a.emitted_at)) for a in run.alerts] == [
        ("warning", 0.5, "Mon 09:30"),
        ("warning", 0.75, "Mon 09:45"),
        ("warning", 0.9, "Mon 09:54"),
        ("breach", 1.0, "Mon 10:00"),
    ]
