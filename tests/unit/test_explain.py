"""Explained deadlines: each clock's segments from its start to now (or its stop), table-driven,
and under hypothesis the segments sum to the clock's elapsed, contiguous and non-overlapping.

Each case: a contract's calendars and targets, events (when, type, fields) in UTC, the reading
instant, then per metric the expected segments (kind, start, end, business hours, status or
note), elapsed hours, deadline and whether breached. 2026-03-02 is a Monday; Berlin moves to
summer time on Sunday 2026-03-29 (Monday 09:00 there is 07:00Z).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla_stream.core import engine
from sla_stream.core.explain import Explanation, explain
from sla_stream.core.models import IncidentEvent
from sla_stream.core.terms import ContractRecord, ContractTerms, Target
from tests.unit.test_calendar_properties import blocks

H = 3600.0
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE_UTC = {"timezone": "UTC", "hours": {d: [["09:00", "17:00"]] for d in WEEKDAYS}}
OFFICE_BERLIN = {"timezone": "Europe/Berlin", "hours": {d: [["09:00", "17:00"]] for d in WEEKDAYS}}
HOLIDAY_WED = {**OFFICE_UTC, "holidays": ["2026-03-04"]}
ALL_HANDS_WED = {**OFFICE_UTC, "dates": {"2026-03-04": [["09:00", "10:00"], ["11:30", "17:00"]]}}
OPEN_SATURDAY = {**OFFICE_UTC, "dates": {"2026-03-07": [["09:00", "13:00"]]}}


def target(metric: str, severity: str, hours: float, calendar: str) -> Target:
    return Target(
        metric=metric,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        allowance_s=hours * H,
        calendar=calendar,
        clause_id="4.1" if metric == "first_response" else "4.2",
        clause_title="Response" if metric == "first_response" else "Resolution",
        pauses=metric in ("resolution", "update"),
    )


def contract(office: dict[str, Any], version: int = 3, updates: bool = False) -> ContractRecord:
    targets = (
        target("first_response", "P1", 1, "24x7"),
        target("first_response", "P3", 4, "office"),
        target("first_response", "P4", 8, "office"),
        target("resolution", "P1", 4, "24x7"),
        target("resolution", "P3", 16, "office"),
        target("resolution", "P4", 40, "office"),
    )
    if updates:  # update cycles (engine rule 14): every hour while P1, 8 office hours while P3
        targets += (
            target("update", "P1", 1, "24x7"),
            target("update", "P3", 8, "office"),
        )
    terms = ContractTerms(
        contract_id="acme",
        version=version,
        customer_id="acme-co",
        tier="standard",
        timezone="UTC",
        pause_statuses=("pending_customer",),
        calendars={"24x7": {"timezone": "UTC", "hours": "24x7"}, "office": office},
        targets=targets,
    )
    return ContractRecord(contract_id="acme", versions=(terms,))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run(record: ContractRecord, rows: list[tuple[Any, ...]], now: datetime) -> Any:
    """The engine's state after the events and the dues up to `now`, as a worker keeps it."""
    state = None
    for n, (when, kind, *rest) in enumerate(rows, start=1):
        fields = dict(rest[0]) if rest else {}
        if kind == "opened":
            fields.setdefault("contract_id", "acme")
        ev = IncidentEvent(
            event_id=f"e{n}", incident_id="INC-1", type=kind, occurred_at=utc(when), **fields
        )
        state = engine.apply(state, ev, record).state
    assert state is not None
    return engine.advance(state, now, record).state


FR, RES = "first_response", "resolution"
CASES: list[tuple[str, dict[str, Any], list[tuple[Any, ...]], str, str, list[Any], float, Any]]
CASES = [
    (
        "across the DST change: Berlin office hours, opened Friday 13:00 CET",
        OFFICE_BERLIN,
        [("2026-03-27T12:00Z", "opened", {"severity": "P4"})],
        "2026-03-31T12:00Z",
        RES,
        [
            ("counting", "2026-03-27T12:00Z", "2026-03-27T16:00Z", 4, None),
            ("outside_hours", "2026-03-27T16:00Z", "2026-03-30T07:00Z", 0, None),
            ("counting", "2026-03-30T07:00Z", "2026-03-30T15:00Z", 8, None),
            ("outside_hours", "2026-03-30T15:00Z", "2026-03-31T07:00Z", 0, None),
            ("counting", "2026-03-31T07:00Z", "2026-03-31T12:00Z", 5, None),
        ],
        17,
        ("2026-04-03T11:00Z", False),  # 23 h left: Tue 3 h, Wed 8, Thu 8, Fri 09:00-13:00 CEST
    ),
    (
        "a holiday on Wednesday counts nothing",
        HOLIDAY_WED,
        [("2026-03-03T15:00Z", "opened", {"severity": "P3"})],
        "2026-03-05T10:00Z",
        FR,
        [
            ("counting", "2026-03-03T15:00Z", "2026-03-03T17:00Z", 2, None),
            ("outside_hours", "2026-03-03T17:00Z", "2026-03-04T09:00Z", 0, None),
            ("holiday", "2026-03-04T09:00Z", "2026-03-04T17:00Z", 0, "holiday 2026-03-04"),
            ("outside_hours", "2026-03-04T17:00Z", "2026-03-05T09:00Z", 0, None),
            ("counting", "2026-03-05T09:00Z", "2026-03-05T10:00Z", 1, None),
        ],
        3,
        ("2026-03-05T11:00Z", False),
    ),
    (
        "a `dates` entry closes the desk 10:00-11:30 for an all-hands",
        ALL_HANDS_WED,
        [("2026-03-04T09:30Z", "opened", {"severity": "P3"})],
        "2026-03-04T14:00Z",
        FR,
        [
            ("counting", "2026-03-04T09:30Z", "2026-03-04T10:00Z", 0.5, "dates 2026-03-04"),
            ("exception", "2026-03-04T10:00Z", "2026-03-04T11:30Z", 0, "dates 2026-03-04"),
            ("counting", "2026-03-04T11:30Z", "2026-03-04T14:00Z", 2.5, "dates 2026-03-04"),
        ],
        3,
        ("2026-03-04T15:00Z", False),
    ),
    (
        "a `dates` entry opens a Saturday morning; the clock breaches on Monday",
        OPEN_SATURDAY,
        [("2026-03-06T15:00Z", "opened", {"severity": "P4"})],
        "2026-03-09T12:00Z",
        FR,
        [
            ("counting", "2026-03-06T15:00Z", "2026-03-06T17:00Z", 2, None),
            ("outside_hours", "2026-03-06T17:00Z", "2026-03-07T09:00Z", 0, None),
            ("counting", "2026-03-07T09:00Z", "2026-03-07T13:00Z", 4, "dates 2026-03-07"),
            ("outside_hours", "2026-03-07T13:00Z", "2026-03-09T09:00Z", 0, None),
            ("counting", "2026-03-09T09:00Z", "2026-03-09T12:00Z", 3, None),
        ],
        9,
        ("2026-03-09T11:00Z", True),
    ),
    (
        "a pause for the customer holds the clock, then it runs again",
        OFFICE_UTC,
        [
            ("2026-03-02T09:00Z", "opened", {"severity": "P3"}),
            ("2026-03-02T11:00Z", "status_changed", {"status": "pending_customer"}),
            ("2026-03-03T10:00Z", "status_changed", {"status": "in_progress"}),
        ],
        "2026-03-03T12:00Z",
        RES,
        [
            ("counting", "2026-03-02T09:00Z", "2026-03-02T11:00Z", 2, None),
            ("paused", "2026-03-02T11:00Z", "2026-03-03T10:00Z", 0, "pending_customer"),
            ("counting", "2026-03-03T10:00Z", "2026-03-03T12:00Z", 2, None),
        ],
        4,
        ("2026-03-04T16:00Z", False),  # 12 h left: Tue 5 h, Wed 09:00 + 7 h
    ),
    (
        "paused now: no deadline, the allowance left is kept",
        OFFICE_UTC,
        [
            ("2026-03-02T09:00Z", "opened", {"severity": "P3"}),
            ("2026-03-02T11:00Z", "status_changed", {"status": "pending_customer"}),
        ],
        "2026-03-02T15:00Z",
        RES,
        [
            ("counting", "2026-03-02T09:00Z", "2026-03-02T11:00Z", 2, None),
            ("paused", "2026-03-02T11:00Z", "2026-03-02T15:00Z", 0, "pending_customer"),
        ],
        2,
        (None, False),
    ),
    (
        "raised to P1 at 18:00: from then on it counts 24x7 against P1's allowance",
        OFFICE_UTC,
        [
            ("2026-03-02T16:00Z", "opened", {"severity": "P3"}),
            ("2026-03-02T18:00Z", "severity_changed", {"severity": "P1"}),
        ],
        "2026-03-02T20:00Z",
        RES,
        [
            ("counting", "2026-03-02T16:00Z", "2026-03-02T17:00Z", 1, None),
            ("outside_hours", "2026-03-02T17:00Z", "2026-03-02T18:00Z", 0, None),
            ("counting", "2026-03-02T18:00Z", "2026-03-02T20:00Z", 2, None),
        ],
        3,
        ("2026-03-02T21:00Z", False),
    ),
    (
        "resolved, reopened, resolved: the stop until the reopen counts nothing",
        OFFICE_UTC,
        [
            ("2026-03-02T09:00Z", "opened", {"severity": "P3"}),
            ("2026-03-02T10:00Z", "resolved"),
            ("2026-03-02T12:00Z", "reopened"),
            ("2026-03-02T13:00Z", "resolved"),
        ],
        "2026-03-03T12:00Z",
        RES,
        [
            ("counting", "2026-03-02T09:00Z", "2026-03-02T10:00Z", 1, None),
            ("stopped_until_reopen", "2026-03-02T10:00Z", "2026-03-02T12:00Z", 0, None),
            ("counting", "2026-03-02T12:00Z", "2026-03-02T13:00Z", 1, None),
        ],
        2,
        # The deadline it had when it stopped: 15 h left at the reopen, Mon 5 h, Tue 8 h, Wed 2 h.
        ("2026-03-04T11:00Z", False),
    ),
]


def rows_of(explanation: Explanation, metric: str) -> list[tuple[Any, ...]]:
    clock = next(c for c in explanation.clocks if c.metric == metric)
    return [
        (s.kind, s.start_at, s.end_at, s.business_us / 1e6 / H, s.status or s.note)
        for s in clock.segments
    ]


@pytest.mark.parametrize(
    ("office", "rows", "now", "metric", "segments", "elapsed_h", "deadline"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_segments_elapsed_and_deadline(
    office: dict[str, Any],
    rows: list[tuple[Any, ...]],
    now: str,
    metric: str,
    segments: list[tuple[Any, ...]],
    elapsed_h: float,
    deadline: tuple[str | None, bool],
) -> None:
    record = contract(office)
    state = run(record, rows, utc(now))
    explanation = explain(state, record, utc(now))
    want = [(k, utc(s), utc(e), float(h), extra) for k, s, e, h, extra in segments]
    assert rows_of(explanation, metric) == want
    clock = next(c for c in explanation.clocks if c.metric == metric)
    assert clock.elapsed_s == elapsed_h * H
    due, breached = deadline
    assert clock.deadline_at == (utc(due) if due else None)
    assert clock.breached is breached
    # The clock as the engine keeps it says the same.
    kept = next(c for c in state.clocks if c.metric == metric)
    assert (clock.phase, clock.severity) == (kept.phase, kept.severity)


def test_the_terms_behind_the_deadline_are_named() -> None:
    record = contract(OFFICE_BERLIN)
    now = utc("2026-03-31T12:00Z")
    state = run(record, [("2026-03-27T12:00Z", "opened", {"severity": "P4"})], now)
    body = explain(state, record, now).to_json()
    assert (body["contract_id"], body["contract_version"], body["customer_id"]) == (
        "acme",
        3,
        "acme-co",
    )
    res = next(c for c in body["clocks"] if c["metric"] == RES)
    assert (res["clause_id"], res["clause_title"], res["calendar"], res["timezone"]) == (
        "4.2",
        "Resolution",
        "office",
        "Europe/Berlin",
    )
    assert res["allowance_s"] == 40 * H and res["remaining_s"] == 23 * H
    assert sum(s["business_s"] for s in res["segments"]) == res["elapsed_s"]


def test_an_incident_without_terms_says_why_it_has_no_clocks() -> None:
    record = contract(OFFICE_UTC)
    now = utc("2026-03-02T12:00Z")
    state = run(record, [("2026-03-02T09:00Z", "opened", {"severity": "P3"})], now)
    other = ContractRecord(contract_id="globex", versions=record.versions)
    explanation = explain(state, other, now)
    assert explanation.clocks == () and explanation.waiting == "parked: no contract terms"
    early = explain(state, record, utc("2026-03-02T08:00Z"))
    assert early.clocks == () and early.waiting == "not opened by 2026-03-02T08:00:00+00:00"
    retired = state.retired()
    assert retired is not None
    assert explain(retired, record, now).waiting == "retired: its record passed its retention"


def test_the_open_update_cycle_is_explained_from_its_own_start() -> None:
    record = contract(OFFICE_UTC, updates=True)
    now = utc("2026-03-02T11:00Z")
    rows = [
        ("2026-03-02T09:00Z", "opened", {"severity": "P1"}),
        ("2026-03-02T09:10Z", "responded"),
        ("2026-03-02T09:40Z", "updated"),  # cycle 1 met; cycle 2 from 09:40
        ("2026-03-02T10:00Z", "status_changed", {"status": "pending_customer"}),
        ("2026-03-02T10:30Z", "status_changed", {"status": "in_progress"}),
    ]
    explanation = explain(run(record, rows, now), record, now)
    (update,) = [c for c in explanation.clocks if c.metric == "update"]
    assert (update.cycle, update.started_at, update.phase) == (2, utc(rows[2][0]), "running")
    assert [(s.kind, s.start_at.strftime("%H:%M"), s.business_us) for s in update.segments] == [
        ("counting", "09:40", 1200 * 10**6),
        ("paused", "10:00", 0),
        ("counting", "10:30", 1800 * 10**6),
    ]
    assert update.elapsed_s == 3000 and update.deadline_at == utc("2026-03-02T11:10Z")
    assert update.to_json()["cycle"] == 2
    assert "cycle" not in explanation.clocks[0].to_json()


# -- the property: segments partition each clock's life and sum to its elapsed --------------------

EVENT_KINDS = st.sampled_from(
    [
        ("status_changed", {"status": "pending_customer"}),
        ("status_changed", {"status": "in_progress"}),
        ("severity_changed", {"severity": "P1"}),
        ("severity_changed", {"severity": "P3"}),
        ("severity_changed", {"severity": "P4"}),
        ("responded", {}),
        ("updated", {}),
        ("resolved", {}),
        ("reopened", {}),
        ("closed", {}),
        ("cancelled", {}),
    ]
)
START = datetime(2026, 3, 20, 6, tzinfo=UTC)  # a week before Europe's spring change


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blocks(),
    st.sampled_from(["P1", "P3", "P4"]),
    st.lists(st.tuples(st.integers(0, 14 * 24 * 60), EVENT_KINDS), max_size=8),
    st.integers(0, 16 * 24 * 60),
    st.lists(st.integers(0, 16), max_size=3),
)
def test_segments_sum_to_elapsed_and_are_contiguous(
    block: dict[str, Any],
    severity: str,
    later: list[tuple[int, Any]],
    now_min: int,
    holiday_days: list[int],
) -> None:
    # Holidays where the incident runs (the generated ones fall anywhere in 2011-2028).
    near = [(START.date() + timedelta(days=d)).isoformat() for d in holiday_days]
    record = contract({**block, "holidays": [*block["holidays"], *near]}, updates=True)
    rows: list[tuple[Any, ...]] = [(START.isoformat(), "opened", {"severity": severity})]
    for minute, (kind, fields) in sorted(later, key=lambda x: x[0]):
        if minute > now_min:
            break  # explained as read at `now`: later events are not known yet
        rows.append(((START + timedelta(minutes=minute)).isoformat(), kind, fields))
    now = START + timedelta(minutes=now_min)
    state = run(record, rows, now)
    explanation = explain(state, record, now)
    kept = {c.metric: c for c in state.clocks}
    assert {c.metric for c in explanation.clocks} == set(kept)
    for clock in explanation.clocks:
        segs = clock.segments
        assert sum(s.business_us for s in segs) == round(clock.elapsed_s * 1_000_000)
        for a, b in pairwise(segs):
            assert a.end_at == b.start_at  # contiguous, hence non-overlapping
        for s in segs:
            assert s.start_at < s.end_at
            length = (s.end_at - s.start_at) // timedelta(microseconds=1)
            assert s.business_us == (length if s.kind == "counting" else 0), s
        if segs:
            assert segs[0].start_at == clock.started_at
            assert segs[-1].end_at <= now
            if clock.ended_at is None:
                assert segs[-1].end_at == now
        assert clock.phase == kept[clock.metric].phase
