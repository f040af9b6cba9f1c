"""Plain terms of targets and calendars; incident views and the at-risk ordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sla_stream.core import engine
from sla_stream.core.models import IncidentEvent
from sla_stream.web.commitments import (
    calendar_words,
    commitments_json,
    duration_words,
    short_duration,
)
from sla_stream.web.open_incidents import IncidentFilter, at_risk, view_of
from tests.unit.test_portal import RECORDS

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # a Monday, 12:00 in Berlin


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (30, "30 seconds"),
        (60, "1 minute"),
        (900, "15 minutes"),
        (5400, "1 hour 30 minutes"),
        (144000, "40 hours"),
        (3661, "1 hour 1 minute 1 second"),
    ],
)
def test_duration_words(seconds: float, words: str) -> None:
    assert duration_words(seconds) == words


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (-90, "-1m"), (720, "12m"), (12000, "3h 20m"), (7200, "2h"), (187200, "2d 4h")],
)
def test_short_duration(seconds: float, text: str) -> None:
    assert short_duration(seconds) == text


def test_calendar_words() -> None:
    assert calendar_words("24x7") == "24x7"
    office = {
        "timezone": "Europe/Berlin",
        "hours": {
            "mon": [["08:00", "18:00"]],
            "tue": [["08:00", "18:00"]],
            "wed": [["08:00", "18:00"]],
            "thu": [["08:00", "18:00"]],
            "fri": [["08:00", "17:00"]],
            "sat": [["10:00", "12:00"], ["13:00", "14:00"]],
        },
        "country_holidays": {"country": "DE", "subdiv": "BE"},
        "holidays": ["2026-12-31", "2026-12-24"],
    }
    assert calendar_words(office) == (
        "Mon-Thu 08:00-18:00, Fri 08:00-17:00, Sat 10:00-12:00, 13:00-14:00 (Europe/Berlin), "
        "except public holidays (DE-BE) and 2026-12-24, 2026-12-31"
    )


def test_commitments_list_the_version_in_force_and_signed_amendments_not_expired_ones() -> None:
    base = RECORDS["alpha-msa"]
    v1 = base.versions[0].model_copy(
        update={"effective_from": T0 - timedelta(days=400), "effective_to": T0 - timedelta(days=1)}
    )
    v2 = base.versions[0].model_copy(update={"version": 2, "effective_from": T0 - timedelta(1)})
    v3 = base.versions[0].model_copy(update={"version": 3, "effective_from": T0 + timedelta(30)})
    record = base.model_copy(update={"versions": (v1, v2, v3)})
    got = commitments_json(record, T0)
    assert [(v["version"], v["in_force"]) for v in got["versions"]] == [(2, True), (3, False)]


def ev(incident: str, n: str, type_: str, at: datetime, **extra: object) -> IncidentEvent:
    return IncidentEvent(
        event_id=f"{incident}-{n}",
        incident_id=incident,
        type=type_,
        occurred_at=at,
        **extra,  # type: ignore[arg-type]
    )


def state_of(events: list[IncidentEvent], now: datetime) -> engine.IncidentState:
    record = RECORDS["alpha-msa"]
    state = None
    for e in events:
        state = engine.apply(state, e, record).state
    assert state is not None
    return engine.advance(state, now, record).state


def test_views_and_at_risk_order_breached_then_by_deadline_then_paused() -> None:
    now = T0 + timedelta(minutes=20)
    p1_breached = state_of(
        [ev("I1", "o", "opened", T0, contract_id="alpha-msa", severity="P1")], now
    )
    p1_fresh = state_of(
        [
            ev(
                "I2",
                "o",
                "opened",
                T0 + timedelta(minutes=15),
                contract_id="alpha-msa",
                severity="P1",
            )
        ],
        now,
    )
    paused = state_of(
        [
            ev("I3", "o", "opened", T0, contract_id="alpha-msa", severity="P1"),
            ev("I3", "r", "responded", T0 + timedelta(minutes=1)),
            ev("I3", "p", "status_changed", T0 + timedelta(minutes=10), status="pending_customer"),
        ],
        now,
    )
    views = [view_of(s, RECORDS["alpha-msa"]) for s in (paused, p1_fresh, p1_breached)]
    assert all(v is not None for v in views)
    incidents = [v.to_json(now) for v in views if v is not None]
    rows = at_risk(incidents)
    got = [
        (r["incident_id"], r["metric"], r["state"], r["time_left_s"], r["remaining_s"])
        for r in rows
    ]
    assert got == [
        ("I1", "first_response", "breached", -300.0, -300.0),  # due at T0+15m, 5 min overdue
        ("I2", "first_response", "running", 600.0, 600.0),  # due at T0+25m
        ("I1", "resolution", "running", 13200.0, 13200.0),  # 4 h from T0
        ("I2", "resolution", "running", 14100.0, 14100.0),  # 4 h from T0 + 15m
        ("I3", "resolution", "paused", None, 13800.0),  # 10 min used before the pause
    ]
    assert rows[0]["clause_id"] == "4.1" and rows[2]["clause_title"] == "Restoration"
    assert at_risk(incidents, limit=2) == rows[:2]


def test_filter_keeps_open_always_and_ended_only_when_recent() -> None:
    now = T0 + timedelta(days=3)
    ended = state_of(
        [
            ev("E", "o", "opened", T0, contract_id="alpha-msa", severity="P2"),
            ev("E", "c", "cancelled", T0 + timedelta(hours=1)),
        ],
        now,
    )
    view = view_of(ended, RECORDS["alpha-msa"])
    assert view is not None and view.lifecycle == "cancelled"
    assert view.closed_at == T0 + timedelta(hours=1)
    assert not IncidentFilter().keeps(view, now)
    assert IncidentFilter(recent_s=3 * 86400).keeps(view, now)
    assert not IncidentFilter(recent_s=2 * 86400).keeps(view, now)
    assert not IncidentFilter(recent_s=9e9, severities=frozenset({"P1"})).keeps(view, now)
    flt = IncidentFilter(frozenset({"a", "b"}), frozenset({"P1"}), "X", 60.0)
    assert IncidentFilter.from_params(flt.to_params()) == flt


def test_a_parked_incident_has_no_view() -> None:
    state = engine.apply(
        None, ev("P", "o", "opened", T0, contract_id="alpha-msa", severity="P1"), None
    ).state
    assert state.parked and view_of(state, None) is None
