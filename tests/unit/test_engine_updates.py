"""Update cycles (engine rule 14), table-driven like `test_engine_rules.py`.

The contract keeps the customer informed every hour while P1 (24x7) and every 4 business hours
while P2 (office hours); both pause while waiting for the customer and warn at 0.75. Rows show
only the `update` metric: alerts as (kind, cycle, threshold, elapsed_s, emitted_at, deadline),
outcomes as (cycle, met, elapsed_s, settled_at, completed_at) or ("withdrawn", cycle, elapsed_s).
"""

from __future__ import annotations

from typing import Any

import pytest

from sla_stream.core.alert_ids import alert_id, outcome_id
from sla_stream.core.engine import IncidentState
from sla_stream.core.models import Alert, Outcome
from tests.unit.engine_cases import (
    STANDARD_TARGETS,
    Run,
    at,
    event,
    events,
    name,
    record,
    target,
    terms,
)

UPD = "update"
UPDATE_TARGETS = (
    target(UPD, "P1", 1, "24x7", pauses=True, thresholds=(0.75,)),
    target(UPD, "P2", 4, "office", pauses=True, thresholds=(0.75,)),
)
CONTRACT = record(terms((*STANDARD_TARGETS, *UPDATE_TARGETS)))


def update_alerts(alerts: list[Alert]) -> list[tuple[Any, ...]]:
    return [
        (a.kind, a.cycle, a.threshold, a.elapsed_s, name(a.emitted_at), name(a.deadline))
        for a in alerts
        if a.metric == UPD
    ]


def update_outcomes(outcomes: list[Outcome]) -> list[tuple[Any, ...]]:
    return [
        ("withdrawn", o.cycle, o.elapsed_s)
        if o.withdraws
        else (o.cycle, o.met, o.elapsed_s, name(o.settled_at), name(o.completed_at))
        for o in outcomes
        if o.metric == UPD
    ]


CASES: list[tuple[str, list[tuple[Any, ...]], str, list[tuple[Any, ...]], list[tuple[Any, ...]]]]
CASES = [
    (
        "the first cycle starts at the response; each update settles one and starts the next; "
        "the resolution stops the last",
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:20", "responded"),
            ("Mon 10:00", "updated"),
            ("Mon 11:30", "updated"),
            ("Mon 12:00", "resolved"),
        ],
        "Mon 14:00",
        [
            ("met", 1, None, 2400.0, "Mon 10:00", "Mon 10:20"),
            ("warning", 2, 0.75, 2700.0, "Mon 10:45", "Mon 11:00"),
            ("breach", 2, 1.0, 3600.0, "Mon 11:00", "Mon 11:00"),
            ("stopped", 2, None, 5400.0, "Mon 11:30", "Mon 11:00"),
            ("met", 3, None, 1800.0, "Mon 12:00", "Mon 12:30"),
        ],
        [
            (1, True, 2400.0, "Mon 10:00", "Mon 10:00"),
            (2, False, 3600.0, "Mon 11:00", None),
            ("withdrawn", 2, 3600.0),
            (2, False, 5400.0, "Mon 11:00", "Mon 11:30"),
            (3, True, 1800.0, "Mon 12:00", "Mon 12:00"),
        ],
    ),
    (
        "a later responded is an update too",
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:10", "responded"),
            ("Mon 09:50", "responded"),
        ],
        "Mon 10:30",
        [("met", 1, None, 2400.0, "Mon 09:50", "Mon 10:10")],
        [(1, True, 2400.0, "Mon 09:50", "Mon 09:50")],
    ),
    (
        "a cycle pauses while waiting for the customer and counts on its target's calendar",
        [
            ("Fri 15:00", "opened", {"severity": "P2"}),
            ("Fri 16:00", "responded"),
            ("Fri 16:30", "status_changed", {"status": "pending_customer"}),
            ("Mon+ 10:00", "status_changed", {"status": "in_progress"}),
            ("Mon+ 13:00", "updated"),
        ],
        "Mon+ 14:00",
        [
            ("warning", 1, 0.75, 10800.0, "Mon+ 12:30", "Mon+ 13:30"),
            ("met", 1, None, 12600.0, "Mon+ 13:00", "Mon+ 13:30"),
        ],
        [(1, True, 12600.0, "Mon+ 13:00", "Mon+ 13:00")],
    ),
    (
        "an update before the first response does nothing; updates at one instant are one "
        "notice; an update with the resolution leaves no empty cycle",
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:10", "updated"),
            ("Mon 09:30", "responded"),
            ("Mon 09:30", "updated"),
            ("Mon 10:00", "updated"),
            ("Mon 10:20", "updated"),
            ("Mon 10:20", "resolved"),
        ],
        "Mon 12:00",
        [
            ("met", 1, None, 1800.0, "Mon 10:00", "Mon 10:30"),
            ("met", 2, None, 1200.0, "Mon 10:20", "Mon 11:00"),
        ],
        [
            (1, True, 1800.0, "Mon 10:00", "Mon 10:00"),
            (2, True, 1200.0, "Mon 10:20", "Mon 10:20"),
        ],
    ),
    (
        "an update while resolved does nothing; a reopen starts the next cycle",
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:10", "responded"),
            ("Mon 09:40", "resolved"),
            ("Mon 10:00", "updated"),
            ("Mon 11:00", "reopened"),
        ],
        "Mon 12:30",
        [
            ("met", 1, None, 1800.0, "Mon 09:40", "Mon 10:10"),
            ("warning", 2, 0.75, 2700.0, "Mon 11:45", "Mon 12:00"),
            ("breach", 2, 1.0, 3600.0, "Mon 12:00", "Mon 12:00"),
        ],
        [
            (1, True, 1800.0, "Mon 09:40", "Mon 09:40"),
            (2, False, 3600.0, "Mon 12:00", None),
        ],
    ),
    (
        "a raise after the response starts the first cycle; a severity change retargets the open "
        "cycle with its elapsed kept",
        [
            ("Mon 09:00", "opened", {"severity": "P3"}),
            ("Mon 09:30", "responded"),
            ("Mon 10:00", "severity_changed", {"severity": "P1"}),
            ("Mon 10:30", "updated"),
            ("Mon 10:45", "severity_changed", {"severity": "P2"}),
        ],
        "Mon 13:40",
        [
            ("met", 1, None, 1800.0, "Mon 10:30", "Mon 11:00"),
            # 900 s on P1 carried onto P2's 4 business hours at 10:45: 0.75 at 13:30
            ("warning", 2, 0.75, 10800.0, "Mon 13:30", "Mon 14:30"),
        ],
        [(1, True, 1800.0, "Mon 10:30", "Mon 10:30")],
    ),
    (
        "a raise before the response starts nothing: cycles wait for the response",
        [
            ("Mon 09:00", "opened", {"severity": "P3"}),
            ("Mon 09:10", "severity_changed", {"severity": "P1"}),
            ("Mon 09:40", "responded"),
        ],
        "Mon 10:30",
        [("warning", 1, 0.75, 2700.0, "Mon 10:25", "Mon 10:40")],
        [],
    ),
    (
        "cancel takes every cycle out of the figures; warned cycles get a clear",
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:10", "responded"),
            ("Mon 10:00", "updated"),
            ("Mon 10:30", "updated"),
            ("Mon 10:40", "cancelled"),
        ],
        "Mon 12:00",
        [
            ("warning", 1, 0.75, 2700.0, "Mon 09:55", "Mon 10:10"),
            ("met", 1, None, 3000.0, "Mon 10:00", "Mon 10:10"),
            ("met", 2, None, 1800.0, "Mon 10:30", "Mon 11:00"),
            ("retracted", 1, None, 3000.0, "Mon 10:40", "Mon 10:10"),
            ("retracted", 2, None, 1800.0, "Mon 10:40", "Mon 11:00"),
            ("stopped", 1, None, 3000.0, "Mon 10:40", "Mon 10:10"),
        ],
        [
            (1, True, 3000.0, "Mon 10:00", "Mon 10:00"),
            (2, True, 1800.0, "Mon 10:30", "Mon 10:30"),
            ("withdrawn", 1, 3000.0),
            ("withdrawn", 2, 1800.0),
        ],
    ),
]


@pytest.mark.parametrize(
    ("rule", "rows", "until", "want_alerts", "want_outcomes"), CASES, ids=[c[0] for c in CASES]
)
def test_update_cycle_rule(
    rule: str,
    rows: list[tuple[Any, ...]],
    until: str,
    want_alerts: list[tuple[Any, ...]],
    want_outcomes: list[tuple[Any, ...]],
) -> None:
    run = Run(CONTRACT).feed(events(*rows), until)
    assert update_alerts(run.alerts) == want_alerts
    assert update_outcomes(run.outcomes) == want_outcomes


def test_an_update_does_not_stop_the_first_response() -> None:
    run = Run(CONTRACT).feed(
        events(
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:10", "updated"),
            ("Mon 09:30", "responded"),
        ),
        "Mon 09:40",
    )
    met = [a for a in run.alerts if a.metric == "first_response" and a.kind == "met"]
    assert [(a.elapsed_s, name(a.emitted_at)) for a in met] == [(1800.0, "Mon 09:30")]


def test_each_cycle_has_its_own_deterministic_ids() -> None:
    rows = CASES[0][1]
    first = Run(CONTRACT).feed(events(*rows), "Mon 14:00")
    again = Run(CONTRACT).feed(events(*rows), "Mon 14:00")
    ids = [a.alert_id for a in first.alerts]
    assert ids == [a.alert_id for a in again.alerts] and len(set(ids)) == len(ids)
    mets = [a for a in first.alerts if a.metric == UPD and a.kind == "met"]
    assert [a.alert_id for a in mets] == [
        alert_id("INC-1", f"update#{a.cycle}", "met", None, 0) for a in mets
    ]
    settled = [o for o in first.outcomes if o.metric == UPD and not o.withdraws]
    assert len({o.outcome_id for o in settled}) == len(settled) == 4
    assert settled[0].outcome_id == outcome_id("INC-1", "update#1", 0)


def test_a_late_update_retracts_a_breach_and_renumbers_the_cycles_after_it() -> None:
    run = Run(CONTRACT).feed(
        events(("Mon 09:00", "opened", {"severity": "P1"}), ("Mon 09:10", "responded")),
        "Mon 10:30",
    )
    assert update_alerts(run.alerts)[-1] == ("breach", 1, 1.0, 3600.0, "Mon 10:10", "Mon 10:10")
    seen = len(run.alerts)
    run.apply(event(3, "Mon 10:05", "updated"))  # arrives at 10:30, dated 10:05
    run.run_dues(before=at("Mon 11:30"))
    run.advance("Mon 11:30")
    assert update_alerts(run.alerts[seen:]) == [
        ("retracted", 1, 1.0, 3600.0, "Mon 10:05", "Mon 10:10"),
        ("met", 1, None, 3300.0, "Mon 10:05", "Mon 10:10"),
        ("warning", 2, 0.75, 2700.0, "Mon 10:50", "Mon 11:05"),
        ("breach", 2, 1.0, 3600.0, "Mon 11:05", "Mon 11:05"),
    ]
    assert update_outcomes(run.outcomes) == [
        (1, False, 3600.0, "Mon 10:10", None),
        ("withdrawn", 1, 3600.0),
        (1, True, 3300.0, "Mon 10:05", "Mon 10:05"),
        (2, False, 3600.0, "Mon 11:05", None),
    ]


def test_the_state_keeps_cycles_through_its_bytes() -> None:
    """The worker stores the state as bytes between events: cycles must survive the trip."""
    run = Run(CONTRACT).feed(events(*CASES[0][1][:3]), "Mon 10:10")
    assert run.state is not None
    back = IncidentState.from_bytes(run.state.to_bytes())
    assert back == run.state
    clock = next(c for c in back.clocks if c.metric == UPD)
    assert (clock.cycle, name(clock.started_at), back.answered) == (2, "Mon 10:00", True)
