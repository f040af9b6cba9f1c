"""Review of the engine against DESIGN.md "SLA clock rules" and "Rule decisions": the cases the
other engine tests leave open, each derived by hand.

Contract as in `engine_cases`: first_response P1 1h / P2 2h on 24x7, P3 4h / P4 8h on office;
resolution P1 4h / P2 8h on 24x7, P3 16h / P4 40h on office (Mon-Fri 09:00-17:00 UTC); warning
fractions 0.5, 0.75, 0.9; resolution pauses on `pending_customer`/`awaiting_customer`,
first_response does not. Rows and driver as in `test_engine_rules`.
"""

from __future__ import annotations

from typing import Any

import pytest

from sla_stream.core import alert_ids, engine
from tests.unit.engine_cases import (
    STANDARD_TARGETS,
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

CASES: list[tuple[str, list[tuple[Any, ...]], str, list[tuple[Any, ...]], list[tuple[Any, ...]]]]
CASES = [
    (
        "severity change at the instant an old warning falls due: the event comes first",
        # P1 response (1h) 0.5 is due 09:30; the change to P2 (2h) at 09:30 is applied before it,
        # so the P1 0.5 never fires. Under P2, 1800 s of 7200 passes no fraction. P2 0.5 (3600)
        # at 10:00; deadline 09:30 + 5400 s = 11:00. Response 10:10: 1800 + 2400 = 4200 s.
        # Resolution P1 -> P2 at 09:30 with 1800 s: its 0.5 (14400) at 13:00, after `until`.
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:30", "severity_changed", {"severity": "P2"}),
            ("Mon 10:10", "responded"),
        ],
        "Mon 10:10",
        [
            ("warning", FR, 0.5, 3600.0, "Mon 10:00", "Mon 11:00"),
            ("met", FR, None, 4200.0, "Mon 10:10", "Mon 11:00"),
        ],
        [(FR, True, 4200.0, "Mon 10:10", "Mon 10:10")],
    ),
    (
        "severity raised while paused, passing two warnings: only the higher fires, and the "
        "clock then counts on the new target's calendar",
        # P4 resolution (40h office): Mon 09:00-15:30 = 23400 s, then paused. Raised to P2 (8h
        # on 24x7 = 28800) at 18:00 while paused: 0.5 (14400) and 0.75 (21600) are passed, never
        # sent; only 0.75 fires, at 18:00, with no deadline (paused). Resumed at 20:00 (outside
        # office hours, but 24x7 now counts): 0.9 (25920) 2520 s later = 20:42, deadline 5400 s
        # later = 21:30. Resolved 21:00: 23400 + 3600 = 27000 s, met. The response clock had
        # stopped at 09:10 and keeps its P4 target (8h office: deadline 17:00).
        [
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 09:10", "responded"),
            ("Mon 15:30", "status_changed", {"status": "pending_customer"}),
            ("Mon 18:00", "severity_changed", {"severity": "P2"}),
            ("Mon 20:00", "status_changed", {"status": "in_progress"}),
            ("Mon 21:00", "resolved"),
        ],
        "Tue 09:00",
        [
            ("met", FR, None, 600.0, "Mon 09:10", "Mon 17:00"),
            ("warning", RES, 0.75, 23400.0, "Mon 18:00", None),
            ("warning", RES, 0.9, 25920.0, "Mon 20:42", "Mon 21:30"),
            ("met", RES, None, 27000.0, "Mon 21:00", "Mon 21:30"),
        ],
        [
            (FR, True, 600.0, "Mon 09:10", "Mon 09:10"),
            (RES, True, 27000.0, "Mon 21:00", "Mon 21:00"),
        ],
    ),
    (
        "reopen without a status resumes even if the incident was pending when resolved",
        # P2 resolution (8h 24x7): 09:00-10:00 = 3600 s, paused at 10:00; `resolved` at 12:00
        # ends the pause: met with 3600 s, no deadline (paused). Reopened at 13:00 with no
        # status: running, 3600 s kept: 0.5 (14400) at 16:00, deadline 20:00. Resolved at
        # 17:00: 3600 + 14400 = 18000 s. The met is retracted at 13:00, its outcome withdrawn.
        [
            ("Mon 09:00", "opened", {"severity": "P2"}),
            ("Mon 09:30", "responded"),
            ("Mon 10:00", "status_changed", {"status": "pending_customer"}),
            ("Mon 12:00", "resolved"),
            ("Mon 13:00", "reopened"),
            ("Mon 17:00", "resolved"),
        ],
        "Tue 09:00",
        [
            ("met", FR, None, 1800.0, "Mon 09:30", "Mon 11:00"),
            ("met", RES, None, 3600.0, "Mon 12:00", None),
            ("retracted", RES, None, 3600.0, "Mon 13:00", None),
            ("warning", RES, 0.5, 14400.0, "Mon 16:00", "Mon 20:00"),
            ("met", RES, None, 18000.0, "Mon 17:00", "Mon 20:00"),
        ],
        [
            (FR, True, 1800.0, "Mon 09:30", "Mon 09:30"),
            (RES, True, 3600.0, "Mon 12:00", "Mon 12:00"),
            ("withdrawn", RES, 3600.0),
            (RES, True, 18000.0, "Mon 17:00", "Mon 17:00"),
        ],
    ),
    (
        "severity raised while resolved to an allowance already spent: the reopen retracts the "
        "met and only the breach fires, at the reopen",
        # P3 resolution (16h office): 09:00-14:00 = 18000 s, met at 14:00 (deadline Tue 17:00).
        # Raised to P1 (4h = 14400 on 24x7) at 15:00 while stopped: no retarget, nothing sent.
        # Reopened at 16:00: met retracted, outcome withdrawn; under P1 18000 >= 14400, so only
        # the breach, at 16:00. Resolved 17:00 on 24x7: 18000 + 3600 = 21600 s, `stopped`.
        [
            ("Mon 09:00", "opened", {"severity": "P3"}),
            ("Mon 09:10", "responded"),
            ("Mon 14:00", "resolved"),
            ("Mon 15:00", "severity_changed", {"severity": "P1"}),
            ("Mon 16:00", "reopened"),
            ("Mon 17:00", "resolved"),
        ],
        "Tue 09:00",
        [
            ("met", FR, None, 600.0, "Mon 09:10", "Mon 13:00"),
            ("met", RES, None, 18000.0, "Mon 14:00", "Tue 17:00"),
            ("retracted", RES, None, 18000.0, "Mon 16:00", "Tue 17:00"),
            ("breach", RES, 1.0, 18000.0, "Mon 16:00", "Mon 16:00"),
            ("stopped", RES, None, 21600.0, "Mon 17:00", "Mon 16:00"),
        ],
        [
            (FR, True, 600.0, "Mon 09:10", "Mon 09:10"),
            (RES, True, 18000.0, "Mon 14:00", "Mon 14:00"),
            ("withdrawn", RES, 18000.0),
            (RES, False, 18000.0, "Mon 16:00", None),
            ("withdrawn", RES, 18000.0),
            (RES, False, 21600.0, "Mon 16:00", "Mon 17:00"),
        ],
    ),
    (
        "cancelled while breached and running: the breach is retracted at the cancel, the "
        "provisional outcome withdrawn, the warnings stay and a `stopped` clears them",
        # P1 response: 0.5 09:30, 0.75 09:45, 0.9 09:54, breach 10:00 (provisional outcome).
        # Cancelled 10:30: breach retracted at 10:30; the clock had warnings out, so a
        # `stopped` at 10:30 (elapsed 5400 s, deadline 10:00) lets a notifier resolve them.
        # Resolution (4h) had sent nothing, so it gets no `stopped`.
        [("Mon 09:00", "opened", {"severity": "P1"}), ("Mon 10:30", "cancelled")],
        "Mon 18:00",
        [
            ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
            ("warning", FR, 0.75, 2700.0, "Mon 09:45", "Mon 10:00"),
            ("warning", FR, 0.9, 3240.0, "Mon 09:54", "Mon 10:00"),
            ("breach", FR, 1.0, 3600.0, "Mon 10:00", "Mon 10:00"),
            ("retracted", FR, 1.0, 3600.0, "Mon 10:30", "Mon 10:00"),
            ("stopped", FR, None, 5400.0, "Mon 10:30", "Mon 10:00"),
        ],
        [(FR, False, 3600.0, "Mon 10:00", None), ("withdrawn", FR, 3600.0)],
    ),
    (
        "after a cancel, a later-dated event is ignored but an earlier-dated one still applies",
        # As above until the cancel at 10:30. A `responded` dated 11:00 is after the final event:
        # ignored. A `responded` dated 09:40 is earlier: re-derived, the response stops the
        # clock at 09:40 with 2400 s, so the 0.75 (09:45) and 0.9 (09:54) warnings no longer
        # hold and are retracted at 09:40; the met it makes is taken back by the cancel, never
        # published. The breach is already retracted; no outcome stands. The `stopped` sent at
        # the cancel (5400 s, deadline 10:00) no longer holds: retracted at 09:40, and the 0.5
        # warning, now cleared by nothing, gets a new `stopped` at 10:30 with the clock's
        # 2400 s (a stopped clock has no deadline).
        [
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 10:30", "cancelled"),
            ("Mon 11:00", "responded"),
            ("Mon 09:40", "responded"),
        ],
        "Mon 18:00",
        [
            ("warning", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
            ("warning", FR, 0.75, 2700.0, "Mon 09:45", "Mon 10:00"),
            ("warning", FR, 0.9, 3240.0, "Mon 09:54", "Mon 10:00"),
            ("breach", FR, 1.0, 3600.0, "Mon 10:00", "Mon 10:00"),
            ("retracted", FR, 1.0, 3600.0, "Mon 10:30", "Mon 10:00"),
            ("stopped", FR, None, 5400.0, "Mon 10:30", "Mon 10:00"),
            ("retracted", FR, None, 5400.0, "Mon 09:40", "Mon 10:00"),
            ("retracted", FR, 0.75, 2700.0, "Mon 09:40", "Mon 10:00"),
            ("retracted", FR, 0.9, 3240.0, "Mon 09:40", "Mon 10:00"),
            ("stopped", FR, None, 2400.0, "Mon 10:30", None),
        ],
        [(FR, False, 3600.0, "Mon 10:00", None), ("withdrawn", FR, 3600.0)],
    ),
    (
        "first_response stops at closed when nothing came before; a later responded is ignored",
        # P3 response (4h office) from 09:00: 0.5 (7200) at 11:00; closed 11:30 = 9000 s, met.
        # Resolution (16h office) closed at 11:30 too: 9000 s, met, deadline Tue 17:00.
        [
            ("Mon 09:00", "opened", {"severity": "P3"}),
            ("Mon 11:30", "closed"),
            ("Mon 11:45", "responded"),
        ],
        "Mon 18:00",
        [
            ("warning", FR, 0.5, 7200.0, "Mon 11:00", "Mon 13:00"),
            ("met", FR, None, 9000.0, "Mon 11:30", "Mon 13:00"),
            ("met", RES, None, 9000.0, "Mon 11:30", "Tue 17:00"),
        ],
        [
            (FR, True, 9000.0, "Mon 11:30", "Mon 11:30"),
            (RES, True, 9000.0, "Mon 11:30", "Mon 11:30"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("rule", "rows", "until", "want_alerts", "want_outcomes"), CASES, ids=[c[0] for c in CASES]
)
def test_reviewed_rule(
    rule: str,
    rows: list[tuple[Any, ...]],
    until: str,
    want_alerts: list[tuple[Any, ...]],
    want_outcomes: list[tuple[Any, ...]],
) -> None:
    run = Run().feed(events(*rows), until)
    assert alert_rows(run.alerts) == want_alerts
    assert outcome_rows(run.outcomes) == want_outcomes


def test_severity_change_updates_the_incident_but_not_a_stopped_clock() -> None:
    """A stopped clock keeps its target; the incident's severity and the running clock move."""
    run = Run().feed(
        events(
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 09:10", "responded"),
            ("Mon 10:00", "severity_changed", {"severity": "P2"}),
        )
    )
    assert run.state is not None and run.state.severity == "P2"
    clocks = {c.metric: c for c in run.state.clocks}
    assert (clocks[FR].phase, clocks[FR].severity) == ("stopped", "P4")
    assert (clocks[RES].phase, clocks[RES].severity) == ("running", "P2")
    # resolution: 1h on office (09:00-10:00) then P2 on 24x7: 0.5 (14400) 10800 s after 10:00
    assert run.state.next_due_at == at("Mon 13:00")


def test_same_instant_a_tick_at_the_deadline_then_a_response_at_it_is_met() -> None:
    """The worker ticked at 10:00 and published the breach before the response dated 10:00
    arrived. Events at t come before dues at t, so the response stops the clock at its deadline:
    met (elapsed 3600 = allowance). The breach is retracted at 10:00 and its outcome withdrawn."""
    run = Run()
    run.apply(event(1, "Mon 09:00", "opened", severity="P1"))
    run.advance("Mon 10:00")
    assert [a.kind for a in run.alerts if a.metric == FR][-1] == "breach"
    step = run.apply(event(2, "Mon 10:00", "responded"))
    assert alert_rows(list(step.alerts)) == [
        ("retracted", FR, 1.0, 3600.0, "Mon 10:00", "Mon 10:00"),
        ("met", FR, None, 3600.0, "Mon 10:00", "Mon 10:00"),
    ]
    assert outcome_rows(list(step.outcomes)) == [
        ("withdrawn", FR, 3600.0),
        (FR, True, 3600.0, "Mon 10:00", "Mon 10:00"),
    ]


def test_same_instant_a_warning_published_at_the_stop_instant_is_retracted() -> None:
    """The 0.5 warning (09:30) went out on a tick; a response dated 09:30 then arrives: the
    warning was due at the stop instant, so it does not stand. Retracted at 09:30; met 1800 s."""
    run = Run()
    run.apply(event(1, "Mon 09:00", "opened", severity="P1"))
    run.advance("Mon 09:30")
    step = run.apply(event(2, "Mon 09:30", "responded"))
    assert alert_rows(list(step.alerts)) == [
        ("retracted", FR, 0.5, 1800.0, "Mon 09:30", "Mon 10:00"),
        ("met", FR, None, 1800.0, "Mon 09:30", "Mon 10:00"),
    ]


def test_an_event_at_the_instant_of_a_due_fired_by_apply_order_is_the_same_as_in_order() -> None:
    """Whether the tick at 10:00 came before or after the 10:00 response, what stands is the
    same: a met with 3600 s and no live breach."""
    in_order = Run().feed(
        events(("Mon 09:00", "opened", {"severity": "P1"}), ("Mon 10:00", "responded")),
        "Mon 10:00",
    )
    ticked = Run()
    ticked.apply(event(1, "Mon 09:00", "opened", severity="P1"))
    ticked.run_dues(before=at("Mon 10:00"))
    ticked.advance("Mon 10:00")
    ticked.apply(event(2, "Mon 10:00", "responded"))
    assert in_order.state is not None and ticked.state is not None
    live = sorted(b.body for b in ticked.state.ledger.alerts)
    assert live == sorted(b.body for b in in_order.state.ledger.alerts)
    assert [o.body for o in ticked.state.ledger.outcomes] == [
        o.body for o in in_order.state.ledger.outcomes
    ]


def test_alert_ids_count_every_earlier_retraction_of_the_slot() -> None:
    """Resolved, reopened twice: the resolution `met` slot is published three times with
    revisions 0, 1, 2; each retraction names the one before and has its own id; outcome ids
    count the outcomes published before."""
    story = events(
        ("Mon 09:00", "opened", {"severity": "P2"}),
        ("Mon 09:30", "responded"),
        ("Mon 10:00", "resolved"),
        ("Mon 11:00", "reopened"),
        ("Mon 12:00", "resolved"),
        ("Mon 13:00", "reopened"),
        ("Mon 14:00", "resolved"),
    )
    run = Run().feed(story, "Mon 18:00")
    mets = [a for a in run.alerts if a.kind == "met" and a.metric == RES]
    assert [a.elapsed_s for a in mets] == [3600.0, 7200.0, 10800.0]
    assert [a.alert_id for a in mets] == [
        alert_ids.alert_id("INC-1", RES, "met", None, n) for n in range(3)
    ]
    retractions = [a for a in run.alerts if a.kind == "retracted"]
    assert [r.retracts for r in retractions] == [mets[0].alert_id, mets[1].alert_id]
    assert [r.alert_id for r in retractions] == [
        alert_ids.retraction_id(m.alert_id) for m in mets[:2]
    ]
    res_outcomes = [o for o in run.outcomes if o.metric == RES and o.withdraws is None]
    assert [o.outcome_id for o in res_outcomes] == [
        alert_ids.outcome_id("INC-1", RES, n) for n in range(3)
    ]


def test_a_correction_after_a_reopen_is_dated_by_its_cause_not_by_the_reopen() -> None:
    # P1 resolution 4h on 24x7: met at 10:00 (1h), retracted at the reopen 11:00, met again at
    # 12:00 (2h). A late pause from 11:30 makes it 1h30m, and the late resume at 11:45 1h45m:
    # each retraction is dated by the event that made the met wrong (rule 13), never by the
    # reopen that had removed the first met; each corrected met keeps its stop instant, 12:00.
    run = Run().feed(
        events(
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 09:10", "responded"),
            ("Mon 10:00", "resolved"),
            ("Mon 11:00", "reopened"),
            ("Mon 12:00", "resolved"),
        )
    )
    n = len(run.alerts)
    run.apply(event(6, "Mon 11:30", "status_changed", status="pending_customer"))
    run.apply(event(7, "Mon 11:45", "status_changed", status="in_progress"))
    late = [(a.kind, a.metric, a.elapsed_s, name(a.emitted_at)) for a in run.alerts[n:]]
    assert late == [
        ("retracted", RES, 7200.0, "Mon 11:30"),
        ("met", RES, 5400.0, "Mon 12:00"),
        ("retracted", RES, 5400.0, "Mon 11:45"),
        ("met", RES, 6300.0, "Mon 12:00"),
    ]


def test_a_corrected_breach_gets_the_next_revision_of_its_slot() -> None:
    """P1 response breached at 10:00 (revision 0). A lowering to P2 dated 09:40 arrives late:
    0.75, 0.9 and the breach are retracted. Under P2 from 09:40 (2400 s kept) 0.75 is due at
    10:30, 0.9 at 10:48 and the breach at 11:00: each is a revision-1 id of its slot; the 0.5
    warning, never retracted, keeps revision 0."""
    run = Run().feed(
        events(
            ("Mon 09:00", "opened", {"severity": "P1"}),
            ("Mon 10:10", "status_changed", {"status": "in_progress"}),
            ("Mon 09:40", "severity_changed", {"severity": "P2"}),
        ),
        "Mon 11:00",
    )
    fr = [a for a in run.alerts if a.metric == FR]
    assert [(a.kind, a.threshold, a.emitted_at) for a in fr[-3:]] == [
        ("warning", 0.75, at("Mon 10:30")),
        ("warning", 0.9, at("Mon 10:48")),
        ("breach", 1.0, at("Mon 11:00")),
    ]
    assert fr[0].alert_id == alert_ids.alert_id("INC-1", FR, "warning", 0.5, 0)
    assert fr[3].alert_id == alert_ids.alert_id("INC-1", FR, "breach", 1.0, 0)
    assert [a.alert_id for a in fr[-3:]] == [
        alert_ids.alert_id("INC-1", FR, "warning", 0.75, 1),
        alert_ids.alert_id("INC-1", FR, "warning", 0.9, 1),
        alert_ids.alert_id("INC-1", FR, "breach", 1.0, 1),
    ]
    assert len({a.alert_id for a in run.alerts}) == len(run.alerts)


def test_a_parked_incident_pins_the_version_in_force_when_it_opened() -> None:
    """Opened 11:00 while the contract is unknown; when the record arrives at 12:30 with v1
    (until 12:00, P1 response 1h) and v2 (from 12:00, 30 min), the incident takes v1: 0.5 at
    11:30, 0.75 at 11:45, met at 11:50 with 3000 s of 3600."""
    v1 = terms(version=1, effective_to=at("Mon 12:00"))
    faster = (target(FR, "P1", 0.5, "24x7"), *STANDARD_TARGETS[1:])
    v2 = terms(faster, version=2, effective_from=at("Mon 12:00"))
    run = Run(record(v1, v2))
    run.apply(event(1, "Mon 11:00", "opened", severity="P1"), contract=None)
    run.apply(event(2, "Mon 11:50", "responded"), contract=None)
    assert run.state is not None and run.state.parked and run.state.contract_version is None
    run.advance("Mon 12:30")
    assert run.state.contract_version == 1
    assert [r for r in alert_rows(run.alerts) if r[1] == FR] == [
        ("warning", FR, 0.5, 1800.0, "Mon 11:30", "Mon 12:00"),
        ("warning", FR, 0.75, 2700.0, "Mon 11:45", "Mon 12:00"),
        ("met", FR, None, 3000.0, "Mon 11:50", "Mon 12:00"),
    ]
    assert {a.allowance_s for a in run.alerts if a.metric == FR} == {3600.0}


def test_a_repeated_event_changes_nothing_while_parked_or_after_the_final_event() -> None:
    parked = Run()
    first = event(1, "Mon 09:00", "opened", severity="P1")
    parked.apply(first, contract=None)
    before = parked.state
    step = engine.apply(before, first, None)
    assert step.ignored == "duplicate" and step.state == before
    closed = Run().feed(
        events(("Mon 09:00", "opened", {"severity": "P2"}), ("Mon 10:00", "closed"))
    )
    before = closed.state
    assert before is not None
    for ev in events(("Mon 09:00", "opened", {"severity": "P2"}), ("Mon 10:00", "closed")):
        step = engine.apply(before, ev, closed.contract)
        assert step.ignored == "duplicate" and step.state == before and step.alerts == ()


def test_a_final_event_dated_before_opened_gives_the_same_result_in_either_arrival_order() -> None:
    # Clock skew: `closed` is dated 09:00, `opened` 09:01. Counted at `opened` (rule 10), it
    # stops both clocks at once: met with 0 s, whichever of the two arrives first.
    rows = events(("Mon 09:01", "opened", {"severity": "P1"}), ("Mon 09:00", "closed"))
    in_order, reversed_ = Run().feed(rows), Run().feed(rows[::-1])
    expected = [
        (FR, True, 0.0, "Mon 09:01", "Mon 09:01"),
        (RES, True, 0.0, "Mon 09:01", "Mon 09:01"),
    ]
    for run in (in_order, reversed_):
        assert sorted(outcome_rows(run.outcomes)) == expected
        assert run.state is not None and run.state.final == "closed"
    assert [s.ignored for s in reversed_.steps] == [None, None]


def test_first_response_pauses_only_when_its_target_says_so_on_a_severity_change() -> None:
    """Response P2 pauses (its target says so), P1 does not. Opened P2 in `pending_customer`:
    the response clock starts paused. Raised to P1 at 10:00: retargeted while paused, then
    follows its new target, which does not pause: it runs from 10:00 (0 s kept); 0.5 at
    10:30, responded at 10:40 with 2400 s."""
    targets = (
        target(FR, "P2", 2, "24x7", pauses=True),
        target(FR, "P1", 1, "24x7", pauses=False),
        target(RES, "P1", 4, "24x7"),
        target(RES, "P2", 8, "24x7"),
    )
    run = Run(record(terms(targets)))
    run.feed(
        events(
            ("Mon 09:00", "opened", {"severity": "P2", "status": "pending_customer"}),
            ("Mon 10:00", "severity_changed", {"severity": "P1"}),
            ("Mon 10:40", "responded"),
        ),
        "Mon 10:40",
    )
    assert alert_rows(run.alerts) == [
        ("warning", FR, 0.5, 1800.0, "Mon 10:30", "Mon 11:00"),
        ("met", FR, None, 2400.0, "Mon 10:40", "Mon 11:00"),
    ]


# A severity change that lands the elapsed time exactly on a new threshold: that threshold is
# due at the change instant, so the events at that instant come first (a stop then is met and
# the warning does not fire), the lower thresholds count as sent, and a paused clock keeps it
# due until it runs again. Only a threshold strictly passed fires at the change itself.
EXACT: list[tuple[str, list[tuple[Any, ...]], str, list[tuple[Any, ...]], list[tuple[Any, ...]]]]
EXACT = [
    (
        "retarget to an allowance exactly spent, stop at the same instant: met at the deadline",
        # P4 response (8h office) shows 7200 s at 11:00; P2 allows 7200 s: deadline 11:00.
        # The response at 11:00 is applied before the breach due then: met, elapsed 7200 <=
        # 7200. The lower fractions count as sent: no warning. Resolution P4 -> P2 with 7200 s
        # of 28800: nothing passed, 0.5 at 13:00 (after `until`).
        [
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 11:00", "severity_changed", {"severity": "P2"}),
            ("Mon 11:00", "responded"),
        ],
        "Mon 11:30",
        [("met", FR, None, 7200.0, "Mon 11:00", "Mon 11:00")],
        [(FR, True, 7200.0, "Mon 11:00", "Mon 11:00")],
    ),
    (
        "retarget to an allowance exactly spent, nothing stops: only the breach, at the change",
        [
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 11:00", "severity_changed", {"severity": "P2"}),
        ],
        "Mon 11:30",
        [("breach", FR, 1.0, 7200.0, "Mon 11:00", "Mon 11:00")],
        [(FR, False, 7200.0, "Mon 11:00", None)],
    ),
    (
        "retarget while paused to an allowance exactly spent, resolved while paused: met",
        # P4 resolution: Mon 09:00-17:00 = 28800 s on office, paused at 17:00. P2 allows 28800
        # on 24x7: exactly spent, not exceeded. Resolved at 19:00 still paused: 28800 <= 28800,
        # met, no deadline (paused).
        [
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 09:10", "responded"),
            ("Mon 17:00", "status_changed", {"status": "pending_customer"}),
            ("Mon 18:00", "severity_changed", {"severity": "P2"}),
            ("Mon 19:00", "resolved"),
        ],
        "Mon 20:00",
        [
            ("met", FR, None, 600.0, "Mon 09:10", "Mon 17:00"),
            ("met", RES, None, 28800.0, "Mon 19:00", None),
        ],
        [
            (FR, True, 600.0, "Mon 09:10", "Mon 09:10"),
            (RES, True, 28800.0, "Mon 19:00", "Mon 19:00"),
        ],
    ),
    (
        "retarget while paused to an allowance exactly spent: the breach when it runs again",
        # As above, resumed at 20:00 on 24x7: the deadline is 20:00 itself, the breach fires
        # then (28800 s); resolved at 21:00: 32400 s, `stopped`.
        [
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 09:10", "responded"),
            ("Mon 17:00", "status_changed", {"status": "pending_customer"}),
            ("Mon 18:00", "severity_changed", {"severity": "P2"}),
            ("Mon 20:00", "status_changed", {"status": "in_progress"}),
            ("Mon 21:00", "resolved"),
        ],
        "Mon 22:00",
        [
            ("met", FR, None, 600.0, "Mon 09:10", "Mon 17:00"),
            ("breach", RES, 1.0, 28800.0, "Mon 20:00", "Mon 20:00"),
            ("stopped", RES, None, 32400.0, "Mon 21:00", "Mon 20:00"),
        ],
        [
            (FR, True, 600.0, "Mon 09:10", "Mon 09:10"),
            (RES, False, 28800.0, "Mon 20:00", None),
            ("withdrawn", RES, 28800.0),
            (RES, False, 32400.0, "Mon 20:00", "Mon 21:00"),
        ],
    ),
    (
        "retarget exactly onto a warning, stop at the same instant: the warning does not fire",
        # Response met at 09:10 (600 s; P4 8h office: deadline 17:00), keeps P4. At 12:00 P4 ->
        # P1: resolution shows 10800 s (office 09:00-12:00) = 0.75 x 14400 exactly; 0.5 is
        # strictly passed and counts as sent; 0.75 is due at 12:00, and the resolved at 12:00
        # comes first: met with 10800 s, deadline 12:00 + 3600 s = 13:00, no warning.
        [
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 09:10", "responded"),
            ("Mon 12:00", "severity_changed", {"severity": "P1"}),
            ("Mon 12:00", "resolved"),
        ],
        "Mon 13:00",
        [
            ("met", FR, None, 600.0, "Mon 09:10", "Mon 17:00"),
            ("met", RES, None, 10800.0, "Mon 12:00", "Mon 13:00"),
        ],
        [
            (FR, True, 600.0, "Mon 09:10", "Mon 09:10"),
            (RES, True, 10800.0, "Mon 12:00", "Mon 12:00"),
        ],
    ),
    (
        "retarget exactly onto a warning, nothing stops: only that warning, at the change",
        # As above without the resolved: the 0.75 fires at 12:00 with 10800 s; 0.5 never.
        [
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 09:10", "responded"),
            ("Mon 12:00", "severity_changed", {"severity": "P1"}),
        ],
        "Mon 12:30",
        [
            ("met", FR, None, 600.0, "Mon 09:10", "Mon 17:00"),
            ("warning", RES, 0.75, 10800.0, "Mon 12:00", "Mon 13:00"),
        ],
        [(FR, True, 600.0, "Mon 09:10", "Mon 09:10")],
    ),
]


@pytest.mark.parametrize(
    ("rule", "rows", "until", "want_alerts", "want_outcomes"), EXACT, ids=[c[0] for c in EXACT]
)
def test_retarget_exactly_onto_a_threshold(
    rule: str,
    rows: list[tuple[Any, ...]],
    until: str,
    want_alerts: list[tuple[Any, ...]],
    want_outcomes: list[tuple[Any, ...]],
) -> None:
    run = Run().feed(events(*rows), until)
    assert alert_rows(run.alerts) == want_alerts
    assert outcome_rows(run.outcomes) == want_outcomes


def test_a_threshold_reached_exactly_counts_despite_float_noise() -> None:
    """0.7 x 5400 is 3779.999...5 in floating point; 63 min of elapsed time reach it exactly.
    P4 response (8h office) -> P2 (1.5h on 24x7, warning at 0.7) at 10:03 with 3780 s, and the
    response at 10:03: the 0.7 warning was due at the stop instant and does not fire; met, with
    the deadline 10:03 + 1620 s = 10:30."""
    targets = (
        target(FR, "P4", 8, "office", thresholds=(0.7,)),
        target(FR, "P2", 1.5, "24x7", thresholds=(0.7,)),
        target(RES, "P4", 40, "office"),
        target(RES, "P2", 8, "24x7"),
    )
    run = Run(record(terms(targets)))
    run.feed(
        events(
            ("Mon 09:00", "opened", {"severity": "P4"}),
            ("Mon 10:03", "severity_changed", {"severity": "P2"}),
            ("Mon 10:03", "responded"),
        ),
        "Mon 10:03",
    )
    assert alert_rows(run.alerts) == [("met", FR, None, 3780.0, "Mon 10:03", "Mon 10:30")]
