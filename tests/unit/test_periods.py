"""Periods in a contract's zone: quarter and day boundaries at local midnight, DST hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla_stream.core.periods import (
    next_period_start,
    parse_bound,
    period_label,
    period_start,
    period_starts,
    quarter_of,
)

BERLIN = "Europe/Berlin"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_quarter_boundary_is_local_midnight_in_berlin() -> None:
    # 2026-04-01T00:00+02:00 is 2026-03-31T22:00Z: Q2 in Berlin although UTC still says March.
    assert quarter_of(utc(2026, 3, 31, 22, 0), BERLIN) == "2026-Q2"
    assert quarter_of(utc(2026, 3, 31, 21, 59, 59), BERLIN) == "2026-Q1"
    assert quarter_of(utc(2026, 3, 31, 22, 0), "UTC") == "2026-Q1"
    assert period_start(utc(2026, 3, 31, 22, 0), BERLIN, "quarter") == utc(2026, 3, 31, 22)
    assert period_start(utc(2026, 3, 31, 21, 59), BERLIN, "quarter") == utc(2025, 12, 31, 23)


def test_quarter_starts_follow_the_local_offset_of_their_first_day() -> None:
    # Q1 and Q4 start in winter time (+01:00), Q2 and Q3 in summer time (+02:00).
    starts = period_starts(utc(2026, 1, 1, 0), utc(2027, 1, 1, 0), BERLIN, "quarter")
    assert starts == [
        utc(2025, 12, 31, 23),
        utc(2026, 3, 31, 22),
        utc(2026, 6, 30, 22),
        utc(2026, 9, 30, 22),
        utc(2026, 12, 31, 23),
    ]
    assert [period_label(s, BERLIN, "quarter") for s in starts] == [
        "2026-Q1",
        "2026-Q2",
        "2026-Q3",
        "2026-Q4",
        "2027-Q1",
    ]


def test_day_is_a_local_day_of_23_or_25_hours_on_dst_changes() -> None:
    spring = period_start(utc(2026, 3, 29, 12), BERLIN, "day")
    assert spring == utc(2026, 3, 28, 23)
    assert next_period_start(spring, BERLIN, "day") - spring == timedelta(hours=23)
    autumn = period_start(utc(2026, 10, 25, 12), BERLIN, "day")
    assert autumn == utc(2026, 10, 24, 22)
    assert next_period_start(autumn, BERLIN, "day") - autumn == timedelta(hours=25)
    assert period_label(autumn, BERLIN, "day") == "2026-10-25"


def test_spring_forward_night_has_no_local_two_oclock_hour() -> None:
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z.
    hours = period_starts(utc(2026, 3, 28, 23), utc(2026, 3, 29, 3), BERLIN, "hour")
    labels = [period_label(h, BERLIN, "hour") for h in hours]
    assert labels == [
        "2026-03-29T00:00+01:00",
        "2026-03-29T01:00+01:00",
        "2026-03-29T03:00+02:00",
        "2026-03-29T04:00+02:00",
    ]
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(hours))


def test_fall_back_night_has_two_real_two_oclock_hours() -> None:
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00Z; 02:xx happens twice.
    first = period_start(utc(2026, 10, 25, 0, 30), BERLIN, "hour")
    second = period_start(utc(2026, 10, 25, 1, 30), BERLIN, "hour")
    assert first == utc(2026, 10, 25, 0) and second == utc(2026, 10, 25, 1)
    assert period_label(first, BERLIN, "hour") == "2026-10-25T02:00+02:00"
    assert period_label(second, BERLIN, "hour") == "2026-10-25T02:00+01:00"
    assert next_period_start(first, BERLIN, "hour") == second


def test_half_hour_zone_hours_start_at_half_past_utc() -> None:
    assert period_start(utc(2026, 5, 1, 5, 10), "Asia/Kolkata", "hour") == utc(2026, 5, 1, 4, 30)
    assert period_start(utc(2026, 5, 1, 5, 10), "Asia/Kolkata", "day") == utc(2026, 4, 30, 18, 30)


def test_zone_that_skips_midnight_starts_its_day_at_the_change() -> None:
    # America/Santiago springs forward at 00:00 -> 01:00 (2026-09-06); the day starts at 04:00Z.
    start = period_start(utc(2026, 9, 6, 15), "America/Santiago", "day")
    assert start == utc(2026, 9, 6, 4)
    assert start.astimezone(ZoneInfo("America/Santiago")).hour == 1


def test_period_starts_covers_periods_that_intersect_the_range() -> None:
    # 2026-04-03T00:00Z is already 02:00 on the 3rd in Berlin; local midnight is 22:00Z.
    got = period_starts(utc(2026, 4, 1, 10), utc(2026, 4, 2, 22), BERLIN, "day")
    assert [period_label(s, BERLIN, "day") for s in got] == ["2026-04-01", "2026-04-02"]
    got = period_starts(utc(2026, 4, 1, 10), utc(2026, 4, 3, 0), BERLIN, "day")
    assert [period_label(s, BERLIN, "day") for s in got][-1] == "2026-04-03"
    assert period_starts(utc(2026, 4, 3), utc(2026, 4, 3), BERLIN, "day") == []


def test_parse_bound_reads_dates_and_quarters_in_the_zone() -> None:
    assert parse_bound("2026-04-01", BERLIN) == utc(2026, 3, 31, 22)
    assert parse_bound("2026-Q2", BERLIN) == utc(2026, 3, 31, 22)
    assert parse_bound("2026-04-01T00:00:00Z", BERLIN) == utc(2026, 4, 1)
    assert parse_bound("2026-04-01T02:00:00+02:00", "UTC") == utc(2026, 4, 1)
    with pytest.raises(ValueError, match="offset"):
        parse_bound("2026-04-01T00:00:00", BERLIN)


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        period_start(datetime(2026, 4, 1), BERLIN, "day")


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)
zones = st.sampled_from([BERLIN, "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"])
steps = st.sampled_from(["hour", "day", "quarter"])


def test_a_local_hour_with_half_of_it_repeated_lasts_ninety_minutes() -> None:
    # Lord Howe fell back 30 minutes at 02:00 (+11:00) on 2002-03-31: local 01:30-02:00 ran
    # twice, so the 01:00 hour ran from 14:00Z to 15:30Z (found by the property below).
    start = period_start(datetime(2002, 3, 30, 14, 0, tzinfo=UTC), "Australia/Lord_Howe", "hour")
    assert start == datetime(2002, 3, 30, 14, 0, tzinfo=UTC)
    assert next_period_start(start, "Australia/Lord_Howe", "hour") == datetime(
        2002, 3, 30, 15, 30, tzinfo=UTC
    )


@given(instants, zones, steps)
def test_instant_lies_in_its_period(instant: datetime, tz: str, step: str) -> None:
    start = period_start(instant, tz, step)  # type: ignore[arg-type]
    end = next_period_start(start, tz, step)  # type: ignore[arg-type]
    assert start <= instant < end
    assert period_start(start, tz, step) == start  # type: ignore[arg-type]


@given(instants, zones)
def test_quarter_contains_its_days(instant: datetime, tz: str) -> None:
    day = period_start(instant, tz, "day")
    quarter = period_start(instant, tz, "quarter")
    assert quarter <= day and quarter_of(day, tz) == quarter_of(instant, tz)
