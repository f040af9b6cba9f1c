"""One table-driven case (at least) per clock rule, with explicit instants and expected effects.

Each case: events applied in the order given (dues strictly before each event fire first), then
`advance` to `until`; expected alerts as (kind, metric, threshold, elapsed_s, emitted_at,
deadline) and outcomes as (metric, met, elapsed_s, settled_at, completed_at), or
("withdrawn", metric, elapsed_s). Instants are named as in `engine_cases.at`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.engine_cases import (
    STANDARD_TARGETS,
    Run,
    alert_rows,
    events,
    outcome_rows,
    record,
    target,
    terms,
)

FR, RES = "first_response", "resolution"

CASES: list[tuple[str, list[tuple[Any, ...]], str, list[tuple[Any, ...]], list[tuple[Any, ...]]]]
CASES = [
    (
        "business time only inside the target's calendar: opened Friday 16:00 on office hours",
        [
            ("Fri 16:00", "opened", {"severity": "P3"}),
            ("Mon+ 11:00", "responded"),
            ("Mon+ 11:30", "resolved"),
        ],
        "Mon+ 18:00",
        [
            ("warning", FR, 0.5, 7200.0, "Mon+ 10:00", "Mon+ 12:00"),
            # 0.75 is due at 11:00, the instant the clock stops: it does not fire
            ("met", FR, None, 10800.0, "Mon+ 11:00", "Mon+ 12:00"),
            ("met", RES, None, 12600.0, "Mon+ 11:30", "Tue+ 16:00"),
        ],
        [
            (FR, True, 10800.0, "Mon+ 11:00", "Mon+ 11:00"),
            (RES, True, 12600.0, "Mon+ 11:30", "Mon+ 11:30"),
        ],
    ),
    (
        "24x7 counts nights and weekends",
        [
            ("Sat 23:00", "opened", {"severity": "P1"}),
            ("Sat 23:40", "responded"),
            ("Sun 01:00", "resolved"),
        ],
        "Sun 06:00",
        [
            ("warning", FR, 0.5, 1800.0, "Sat 23:30", "Sun 00:00"),
            ("met", FR, None, 2400.0, "Sat 23:40", "Sun 00:00"),
            ("met", RES, None, 7200.0, "Sun 01:00", "Sun 03:00"),
        ],
        [
            (FR, True, 2400.0, "Sat 23:40", "Sat 23:40"),
            (RES, True, 7200.0, "Sun 01:00", "Sun 01:00"),
        ],
    ),
    (
        "first_response stops at the first responded; a second one changes nothing",
        [
            ("Mon 09:00", "opened", {"severity": "P2"}),
            ("Mon 09:20", "responded"),
            ("Mon 10:30", "responded"),
        ],
        "Mon 12:00",
        [("met", FR, None, 1200.0, "Mon 09:20", "Mon 11:00")],
        [(FR, True, 1200.0, "Mon 09:20", "Mon 09:20")],
    ),
    (
        "closed with no response or resolution stops both clocks",
        [("Mon 09:00", "opened", {"severity": "P2"}), ("Mon 09:45", "closed")],
        "Mon 18:00",
        [
            ("met", FR, None, 2700.0, "Mon 09:45", "Mon 11:00"),
            ("met", RES, None, 2700.0, "Mon 09:45", "Mon 17:00"),
        ],
        [
            (FR, True, 2700.0, "Mon 09:45", "Mon 09:45"),
            (RES, True, 2700.0, "Mon 09:45", "Mon 09:45"),
        ],
    ),
    (
        "a pause status stops resolution, not first_response (its target does not pause)",
        [
            ("Mon 09:00", "opened", {"severity": "P2"}),
            ("Mon 09:10", "status_changed", {"status": "pending_customer"}),
            ("Mon 10:30", "responded"),
            ("Mon 12:00", "status_changed", {"status": "in_progress"}),
            ("Mon 13:00", "resolved"),
        ],
        "Mon 18:00",
        [
            ("warning", FR, 0.5, 3600.0, "Mon 10:00", "Mon 11:00"),
            ("met", FR, None, 5400.0, "Mon 10:30", "Mon 11:00"),
            # 600 s before the pause, 3600 s after it; deadline 12:00 + 8h - 600 s
            ("met", RES, None, 4200.0, "Mon 13:00", "Mon 19:50"),
        ],
        [
            (FR, True, 5400.0, "Mon 10:30", "Mon 10:30"),
            (RES, True, 4200.0, "Mon 13:00", "Mon 13:00"),
        ],
    ),
    (
        "opened in a pause status: resolution starts paused; resolved ends the pause",
        [
            ("Mon 09:00", "opened", {"severity": "P2", "status": "awaiting_customer"}),
            ("Mon 09:05", "responded"),
            ("Mon 11:00", "status_changed", {"status": "in_progress"}),
            ("Mon 11:30", "status_changed", {"status": "pending_customer"}),
            ("Mon 15:00", "resolved"),
        ],
        "Mon 18:00",
        [
            ("met", FR, None, 300.0, "Mon 09:05", "Mon 11:00"),
            ("met", RES, None, 1800.0, "Mon 15:00", None),
        ],
        [
            (FR, True, 300.0, "Mon 09:05", "Mon 09:05"),
            (RES, True, 1800.0, "Mon 15:00", "Mon 15:00"),
        ],
    ),
    (
        "severity lowered: elapsed kept, new calendar from the change, 0.5 not sent again",
        # P1 (1h, 24x7) -> P3 (4h, office) at 09:40 with 2400 s; 0.75 (10800) is 8400 s later
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:40", "severity_changed", {"severity": "P3"}),
            ("Mon 12:30", "responded"),
        ],
        "Mon 12:45",
        [
            ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
            ("warning", FR, 0.75, 10800.0, "Mon 12:00", "Mon 13:00"),
            ("met", FR, None, 12600.0, "Mon 12:30", "Mon 13:00"),
        ],
        [(FR, True, 12600.0, "Mon 12:30", "Mon 12:30")],
    ),
    (
        "a breach already final stays when the severity is lowered",
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 10:30", "severity_changed", {"severity": "P4"}),
            ("Mon 11:00", "responded"),
        ],
        "Mon 11:30",
        [
            ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
            ("warning", FR, 0.75, 2700.0, "Mon 09:45", "Mon 10:00"),
            ("warning", FR, 0.9, 3240.0, "Mon 09:54", "Mon 10:00"),
            ("breach", FR, 1.0, 3600.0, "Mon 10:00", "Mon 10:00"),
            # resolution moved to P4 (40h, office) at 10:30: its 0.5 is now far away
            ("stopped", FR, None, 7200.0, "Mon 11:00", "Mon 10:00"),
        ],
        [
            (FR, False, 3600.0, "Mon 10:00", None),
            ("withdrawn", FR, 3600.0),
            (FR, False, 7200.0, "Mon 10:00", "Mon 11:00"),
        ],
    ),
    (
        "severity raised after the 75 % warning, new allowance already spent: breach at once",
        # P4 first_response: 8h office; 0.75 (6h) at 15:00; raised to P2 (2h) at 15:30 = 6.5h
        [
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 15:30", "severity_changed", {"severity": "P2"}),
            ("Mon 16:00", "responded"),
        ],
        "Mon 16:00",
        [
            ("warning", FR, 0.5, 14400.0, "Mon 13:00", "Mon 17:00"),
            ("warning", FR, 0.75, 21600.0, "Mon 15:00", "Mon 17:00"),
            # resolution P4 (40h) -> P2 (8h on 24x7) with 23400 s: 0.5 and 0.75 passed, 0.75 fires
            ("warning", RES, 0.75, 23400.0, "Mon 15:30", "Mon 17:00"),
            ("breach", FR, 1.0, 23400.0, "Mon 15:30", "Mon 15:30"),
            ("stopped", FR, None, 25200.0, "Mon 16:00", "Mon 15:30"),
        ],
        [
            (FR, False, 23400.0, "Mon 15:30", None),
            ("withdrawn", FR, 23400.0),
            (FR, False, 25200.0, "Mon 15:30", "Mon 16:00"),
        ],
    ),
    (
        "severity raised while paused: the breach fires at the change even though paused",
        [
            ("Mon 09:00", "opened", {"severity": "P3"}),
            ("Mon 09:10", "responded"),
            ("Mon 14:00", "status_changed", {"status": "pending_customer"}),
            ("Mon 15:00", "severity_changed", {"severity": "P1"}),
        ],
        "Mon 16:00",
        [
            ("met", FR, None, 600.0, "Mon 09:10", "Mon 13:00"),
            ("breach", RES, 1.0, 18000.0, "Mon 15:00", "Mon 15:00"),
        ],
        [(FR, True, 600.0, "Mon 09:10", "Mon 09:10"), (RES, False, 18000.0, "Mon 15:00", None)],
    ),
    (
        "reopen after a met resolution: met retracted, elapsed kept, settles once more",
        [
            ("Mon 09:00", "opened", {"severity": "P2"}),
            ("Mon 09:30", "responded"),
            ("Mon 12:00", "resolved"),
            ("Mon 14:00", "reopened"),
            ("Mon 16:00", "resolved"),
        ],
        "Mon 20:00",
        [
            ("met", FR, None, 1800.0, "Mon 09:30", "Mon 11:00"),
            ("met", RES, None, 10800.0, "Mon 12:00", "Mon 17:00"),
            ("retracted", RES, None, 10800.0, "Mon 14:00", "Mon 17:00"),
            ("warning", RES, 0.5, 14400.0, "Mon 15:00", "Mon 19:00"),
            ("met", RES, None, 18000.0, "Mon 16:00", "Mon 19:00"),
        ],
        [
            (FR, True, 1800.0, "Mon 09:30", "Mon 09:30"),
            (RES, True, 10800.0, "Mon 12:00", "Mon 12:00"),
            ("withdrawn", RES, 10800.0),
            (RES, True, 18000.0, "Mon 16:00", "Mon 16:00"),
        ],
    ),
    (
        "reopen with a pause status: resumes paused",
        [
            ("Mon 09:00", "opened", {"severity": "P2"}),
            ("Mon 09:30", "responded"),
            ("Mon 12:00", "resolved"),
            ("Mon 14:00", "reopened", {"status": "pending_customer"}),
            ("Mon 20:00", "resolved"),
        ],
        "Tue 09:00",
        [
            ("met", FR, None, 1800.0, "Mon 09:30", "Mon 11:00"),
            ("met", RES, None, 10800.0, "Mon 12:00", "Mon 17:00"),
            ("retracted", RES, None, 10800.0, "Mon 14:00", "Mon 17:00"),
            ("met", RES, None, 10800.0, "Mon 20:00", None),
        ],
        [
            (FR, True, 1800.0, "Mon 09:30", "Mon 09:30"),
            (RES, True, 10800.0, "Mon 12:00", "Mon 12:00"),
            ("withdrawn", RES, 10800.0),
            (RES, True, 10800.0, "Mon 20:00", "Mon 20:00"),
        ],
    ),
    (
        "severity changed while resolved applies at the reopen (highest passed warning only)",
        # P3 resolution met after 3h on office; raised to P1 while resolved; reopened at 14:00
        # under P1 (4h, 24x7) with 10800 s: 0.5 and 0.75 passed, only 0.75 fires
        [
            ("Mon 09:00", "opened", {"severity": "P3"}),
            ("Mon 09:10", "responded"),
            ("Mon 12:00", "resolved"),
            ("Mon 13:00", "severity_changed", {"severity": "P1"}),
            ("Mon 14:00", "reopened"),
            ("Mon 14:30", "resolved"),
        ],
        "Mon 18:00",
        [
            ("met", FR, None, 600.0, "Mon 09:10", "Mon 13:00"),
            ("met", RES, None, 10800.0, "Mon 12:00", "Tue 17:00"),
            ("retracted", RES, None, 10800.0, "Mon 14:00", "Tue 17:00"),
            ("warning", RES, 0.75, 10800.0, "Mon 14:00", "Mon 15:00"),
            ("met", RES, None, 12600.0, "Mon 14:30", "Mon 15:00"),
        ],
        [
            (FR, True, 600.0, "Mon 09:10", "Mon 09:10"),
            (RES, True, 10800.0, "Mon 12:00", "Mon 12:00"),
            ("withdrawn", RES, 10800.0),
            (RES, True, 12600.0, "Mon 14:30", "Mon 14:30"),
        ],
    ),
    (
        "reopen after a breach: the breach stays final and nothing more is sent",
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:10", "responded"),
            ("Mon 14:00", "resolved"),
            ("Mon 15:00", "reopened"),
            ("Mon 16:00", "resolved"),
        ],
        "Mon 20:00",
        [
            ("met", FR, None, 600.0, "Mon 09:10", "Mon 10:00"),
            ("warning", RES, 0.5, 7200.0, "Mon 11:00", "Mon 13:00"),
            ("warning", RES, 0.75, 10800.0, "Mon 12:00", "Mon 13:00"),
            ("warning", RES, 0.9, 12960.0, "Mon 12:36", "Mon 13:00"),
            ("breach", RES, 1.0, 14400.0, "Mon 13:00", "Mon 13:00"),
            ("stopped", RES, None, 18000.0, "Mon 14:00", "Mon 13:00"),
        ],
        [
            (FR, True, 600.0, "Mon 09:10", "Mon 09:10"),
            (RES, False, 14400.0, "Mon 13:00", None),
            ("withdrawn", RES, 14400.0),
            (RES, False, 18000.0, "Mon 13:00", "Mon 14:00"),
        ],
    ),
    (
        "cancelled before anything settled: no outcome, warnings stay, a stopped clears them",
        # P1 response (1h, 24x7): 0.5 at 09:30; cancelled at 09:40 with 2400 s and the 10:00
        # deadline: the warning is not retracted, a `stopped` at 09:40 clears it.
        [("Mon 09:00", "opened", {"severity": "P1"}), ("Mon 09:40", "cancelled")],
        "Mon 18:00",
        [
            ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
            ("stopped", FR, None, 2400.0, "Mon 09:40", "Mon 10:00"),
        ],
        [],
    ),
    (
        "cancelled after a met: the met is retracted and its outcome withdrawn",
        [
            ("Mon 09:00", "opened", {"severity": "P2"}),
            ("Mon 09:20", "responded"),
            ("Mon 09:50", "cancelled"),
        ],
        "Mon 18:00",
        [
            ("met", FR, None, 1200.0, "Mon 09:20", "Mon 11:00"),
            ("retracted", FR, None, 1200.0, "Mon 09:50", "Mon 11:00"),
        ],
        [(FR, True, 1200.0, "Mon 09:20", "Mon 09:20"), ("withdrawn", FR, 1200.0)],
    ),
    (
        "same instant: a response at the 0.5 due instant comes first, so no warning",
        [("Mon 09:00", "opened", {"severity": "P1"}), ("Mon 09:30", "responded")],
        "Mon 10:00",
        [("met", FR, None, 1800.0, "Mon 09:30", "Mon 10:00")],
        [(FR, True, 1800.0, "Mon 09:30", "Mon 09:30")],
    ),
    (
        "late responded (arrives after the breach was announced) retracts the breach",
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 10:05", "status_changed", {"status": "in_progress"}),
            ("Mon 09:58", "responded"),
        ],
        "Mon 10:30",
        [
            ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
            ("warning", FR, 0.75, 2700.0, "Mon 09:45", "Mon 10:00"),
            ("warning", FR, 0.9, 3240.0, "Mon 09:54", "Mon 10:00"),
            ("breach", FR, 1.0, 3600.0, "Mon 10:00", "Mon 10:00"),
            ("retracted", FR, 1.0, 3600.0, "Mon 09:58", "Mon 10:00"),
            ("met", FR, None, 3480.0, "Mon 09:58", "Mon 10:00"),
        ],
        [
            (FR, False, 3600.0, "Mon 10:00", None),
            ("withdrawn", FR, 3600.0),
            (FR, True, 3480.0, "Mon 09:58", "Mon 09:58"),
        ],
    ),
    (
        "a late severity change re-derives: the breach under the old allowance is retracted",
        # P1 response breached at 10:00; a lowering to P2 (2h) dated 09:40 arrives at 10:10
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 10:10", "status_changed", {"status": "in_progress"}),
            ("Mon 09:40", "severity_changed", {"severity": "P2"}),
        ],
        "Mon 10:20",
        [
            ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
            ("warning", FR, 0.75, 2700.0, "Mon 09:45", "Mon 10:00"),
            ("warning", FR, 0.9, 3240.0, "Mon 09:54", "Mon 10:00"),
            ("breach", FR, 1.0, 3600.0, "Mon 10:00", "Mon 10:00"),
            ("retracted", FR, 0.75, 2700.0, "Mon 09:40", "Mon 10:00"),
            ("retracted", FR, 0.9, 3240.0, "Mon 09:40", "Mon 10:00"),
            ("retracted", FR, 1.0, 3600.0, "Mon 09:40", "Mon 10:00"),
        ],
        [(FR, False, 3600.0, "Mon 10:00", None), ("withdrawn", FR, 3600.0)],
    ),
]


@pytest.mark.parametrize(
    ("rule", "rows", "until", "want_alerts", "want_outcomes"), CASES, ids=[c[0] for c in CASES]
)
def test_clock_rule(
    rule: str,
    rows: list[tuple[Any, ...]],
    until: str,
    want_alerts: list[tuple[Any, ...]],
    want_outcomes: list[tuple[Any, ...]],
) -> None:
    run = Run().feed(events(*rows), until)
    assert alert_rows(run.alerts) == want_alerts
    assert outcome_rows(run.outcomes) == want_outcomes


def test_change_to_a_severity_without_target_keeps_the_previous_target() -> None:
    no_p4 = tuple(t for t in STANDARD_TARGETS if t.severity != "P4")
    run = Run(record(terms(no_p4)))
    run.feed(
        events(
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:10", "severity_changed", {"severity": "P4"}),
            ("Mon 09:40", "responded"),
        ),
        "Mon 09:45",
    )
    assert alert_rows(run.alerts) == [
        ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
        ("met", FR, None, 2400.0, "Mon 09:40", "Mon 10:00"),
    ]
    assert run.alerts[-1].severity == "P1"
    assert run.state is not None and run.state.severity == "P4"


def test_first_response_pauses_when_its_target_says_so() -> None:
    targets = (
        target(FR, "P2", 2, "24x7", pauses=True),
        target(RES, "P2", 8, "24x7"),
    )
    run = Run(record(terms(targets)))
    run.feed(
        events(
            ("Mon 09:00", "opened", {"severity": "P2"}),
            ("Mon 09:30", "status_changed", {"status": "pending_customer"}),
            ("Mon 13:00", "status_changed", {"status": "in_progress"}),
            ("Mon 13:10", "responded"),
        ),
        "Mon 13:30",
    )
    assert alert_rows(run.alerts) == [("met", FR, None, 2400.0, "Mon 13:10", "Mon 14:30")]


def test_warning_thresholds_come_from_the_target() -> None:
    targets = (target(FR, "P1", 1, "24x7", thresholds=(0.8,)), target(RES, "P1", 4, "24x7"))
    run = Run(record(terms(targets)))
    run.feed(events(("Mon 09:00", "opened", {"severity": "P1"})), "Mon 10:00")
    fr = [r for r in alert_rows(run.alerts) if r[1] == FR]
    assert fr == [
        ("warning", FR, 0.8, 2880.0, "Mon 09:48", "Mon 10:00"),
        ("breach", FR, 1.0, 3600.0, "Mon 10:00", "Mon 10:00"),
    ]


def test_effects_carry_clause_customer_and_tier() -> None:
    run = Run().feed(
        events(
            ("Mon 09:00", "opened", {"severity": "P1", "team": "net"}), ("Mon 09:10", "responded")
        )
    )
    alert, outcome = run.alerts[0], run.outcomes[0]
    assert (alert.clause_id, alert.clause_title, alert.customer_id) == (
        "C-FR",
        "Response",
        "acme-co",
    )
    assert (alert.contract_id, alert.incident_id, alert.severity) == ("acme", "INC-1", "P1")
    assert (outcome.tier, outcome.customer_id, outcome.team) == ("standard", "acme-co", "net")
    assert outcome.opened_at == run.alerts[0].emitted_at.replace(minute=0)
