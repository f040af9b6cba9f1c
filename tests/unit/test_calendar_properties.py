"""Calendar invariants under hypothesis: round trips, monotonicity, additivity, a reference model.

Calendars are generated (zones with DST at 02:00, at midnight, by 30 minutes, a skipped date;
random weekly ranges on a 30-minute grid; random holidays; date exceptions replacing a date's
ranges, drawn around the DST changes and anywhere) and instants lean towards the DST changes,
where week-jumping arithmetic would go wrong first.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sla_stream.core.calendar import BusinessCalendar

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",  # DST changes at midnight (to 2018)
    "Asia/Kolkata",
    "Asia/Tehran",  # +03:30, DST to 2022
    "Australia/Lord_Howe",  # DST of 30 minutes
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Apia",  # skipped Friday 30 Dec 2011 entirely
    "UTC",
]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Instants of real offset changes, to sample near them.
CHANGES = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),  # Berlin spring
    datetime(2026, 10, 25, 1, tzinfo=UTC),  # Berlin autumn
    datetime(2026, 3, 8, 7, tzinfo=UTC),  # New York spring
    datetime(2026, 11, 1, 6, tzinfo=UTC),  # New York autumn
    datetime(2015, 10, 18, 3, tzinfo=UTC),  # Sao Paulo, midnight gap
    datetime(2015, 2, 22, 2, tzinfo=UTC),  # Sao Paulo, midnight repeat
    datetime(2021, 3, 21, 20, 30, tzinfo=UTC),  # Tehran spring
    datetime(2021, 9, 21, 19, 30, tzinfo=UTC),  # Tehran autumn
    datetime(2026, 4, 4, 15, tzinfo=UTC),  # Lord Howe autumn (30 min)
    datetime(2011, 12, 30, 10, tzinfo=UTC),  # Apia date-line jump
]
US = 1_000_000
DAY_US = 86_400 * US
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fmt(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def day_ranges(draw: Any) -> list[list[str]]:
    """Disjoint ranges on a 30-minute grid (adjacent ones allowed), possibly none."""
    points = draw(st.lists(st.integers(0, 48), max_size=6, unique=True).map(sorted))
    ranges = [[fmt(a * 30), fmt(b * 30)] for a, b in zip(points[::2], points[1::2], strict=False)]
    if ranges and ranges[-1][1] != "24:00" and draw(st.booleans()):
        ranges.append([ranges[-1][1], "24:00"])  # adjacent ranges must merge cleanly
    return ranges


def dates_near_changes() -> st.SearchStrategy[date]:
    return st.builds(
        lambda base, days: base.date() + timedelta(days=days),
        st.sampled_from(CHANGES),
        st.integers(-5, 5),
    )


@st.composite
def blocks(draw: Any, min_exceptions: int = 0) -> dict[str, Any]:
    hours = {d: draw(day_ranges()) for d in WEEKDAYS}
    assume(any(hours.values()))
    dates = st.dates(date(2011, 1, 1), date(2028, 12, 31))
    excepted = draw(
        st.lists(
            st.one_of(dates_near_changes(), dates), min_size=min_exceptions, max_size=6, unique=True
        )
    )
    return {
        "timezone": draw(st.sampled_from(ZONES)),
        "hours": hours,
        "holidays": [d.isoformat() for d in draw(st.lists(dates, max_size=8))],
        "dates": {d.isoformat(): draw(day_ranges()) for d in excepted},
    }


with_exceptions = blocks(min_exceptions=1)


def near_change() -> st.SearchStrategy[datetime]:
    return st.builds(
        lambda base, us: base + timedelta(microseconds=us),
        st.sampled_from(CHANGES),
        st.integers(-4 * DAY_US, 4 * DAY_US),
    )


def anywhere() -> st.SearchStrategy[datetime]:
    zones = st.sampled_from([UTC, *(ZoneInfo(z) for z in ZONES)])
    naive = st.datetimes(datetime(2011, 1, 1), datetime(2028, 12, 31))
    return st.builds(lambda d, z: d.replace(tzinfo=z), naive, zones)


instants = st.one_of(near_change(), anywhere())


def durations(max_days: int) -> st.SearchStrategy[int]:
    """Microseconds at every scale: whole hours (they land on closing times) and ragged ones."""
    days = st.integers(0, max_days)
    whole_hours = st.builds(lambda d, h: d * DAY_US + h * 3600 * US, days, st.integers(0, 23))
    ragged = st.builds(
        lambda d, s, u: d * DAY_US + s * US + u,
        days,
        st.integers(0, 86_399),
        st.integers(0, US - 1),
    )
    return st.one_of(whole_hours, ragged)


short_us = durations(45)  # up to 45 days
long_us = durations(3 * 365)  # up to three years


def secs(us: int) -> float:
    return us / US


def to_us(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(microseconds=1)


def reference_elapsed_us(block: dict[str, Any], start: datetime, end: datetime) -> int:
    """Business microseconds by brute force: every local day's ranges, merged, clipped."""
    tz = ZoneInfo(block["timezone"])
    holidays = {date.fromisoformat(d) for d in block["holidays"]}
    exceptions = {date.fromisoformat(d): r for d, r in block.get("dates", {}).items()}
    day = start.astimezone(tz).date() - timedelta(days=2)
    last = end.astimezone(tz).date() + timedelta(days=2)
    intervals = []
    while day <= last:
        ranges = exceptions.get(day, block["hours"][WEEKDAYS[day.weekday()]])
        for a, b in [] if day in holidays else ranges:
            intervals.append((to_us(wall(day, a, tz)), to_us(wall(day, b, tz))))
        day += timedelta(days=1)
    lo, hi, total, reach = to_us(start), to_us(end), 0, None
    for s, e in sorted(intervals):
        s, e = max(s, lo, reach if reach is not None else s), min(e, hi)
        if e > s:
            total += e - s
            reach = e
    return total


def wall(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    if hhmm == "24:00":
        return datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(days=1)
    h, m = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=tz)


@PROFILE
@given(blocks(), instants, st.one_of(short_us, long_us))
def test_add_then_elapsed_round_trips(block: dict[str, Any], start: datetime, x: int) -> None:
    calendar = BusinessCalendar.from_dict(block)
    end = calendar.add(start, secs(x))
    assert end.tzinfo is calendar.timezone
    assert calendar.elapsed(start, end) == secs(x)
    assert calendar.elapsed_us(start, end) == x


@PROFILE
@given(st.one_of(blocks(), st.just("24x7")), instants, st.one_of(short_us, long_us), st.booleans())
def test_add_utc_is_add_on_the_utc_timeline(
    block: dict[str, Any] | str, start: datetime, x: int, in_utc: bool
) -> None:
    calendar = BusinessCalendar.from_dict(block)
    start = start.astimezone(UTC) if in_utc else start
    end = calendar.add_utc(start, secs(x))
    assert end.tzinfo is UTC
    assert repr(end) == repr(calendar.add(start, secs(x)).astimezone(UTC))


@PROFILE
@given(blocks(), instants, short_us.filter(lambda x: x > 0))
def test_add_is_the_first_instant_with_that_much_business_time(
    block: dict[str, Any], start: datetime, x: int
) -> None:
    # A deadline on a closing time stays there rather than moving to the next opening.
    calendar = BusinessCalendar.from_dict(block)
    end = calendar.add(start, secs(x)).astimezone(UTC)  # UTC: arithmetic on the timeline
    assert calendar.elapsed_us(start, end - timedelta(microseconds=1)) == x - 1


@PROFILE
@given(blocks(), instants, short_us, short_us)
def test_monotone_in_duration(block: dict[str, Any], start: datetime, x: int, y: int) -> None:
    calendar = BusinessCalendar.from_dict(block)
    x, y = min(x, y), max(x, y)
    # In UTC: two datetimes sharing a ZoneInfo compare by wall time, which a repeat reorders.
    early = calendar.add(start, secs(x)).astimezone(UTC)
    late = calendar.add(start, secs(y)).astimezone(UTC)
    assert early <= late
    if x < y:
        assert early < late


@PROFILE
@given(blocks(), instants, durations(60), durations(60))
def test_elapsed_additive_over_split(block: dict[str, Any], a: datetime, i: int, j: int) -> None:
    calendar = BusinessCalendar.from_dict(block)
    a = a.astimezone(UTC)  # timedelta arithmetic on a zoned datetime is wall-clock arithmetic
    m = a + timedelta(microseconds=min(i, j))
    b = a + timedelta(microseconds=max(i, j))
    assert calendar.elapsed_us(a, b) == calendar.elapsed_us(a, m) + calendar.elapsed_us(m, b)
    assert 0 <= calendar.elapsed_us(a, b) <= to_us(b) - to_us(a)


@PROFILE
@given(blocks(), instants, durations(40))
def test_elapsed_matches_day_by_day_reference(block: dict[str, Any], a: datetime, n: int) -> None:
    calendar = BusinessCalendar.from_dict(block)
    b = a.astimezone(UTC) + timedelta(microseconds=n)
    assert calendar.elapsed_us(a, b) == reference_elapsed_us(block, a, b)


@PROFILE
@given(blocks(), instants)
def test_next_open_is_open_and_nothing_accrues_before_it(
    block: dict[str, Any], at: datetime
) -> None:
    calendar = BusinessCalendar.from_dict(block)
    opening = calendar.next_open(at).astimezone(UTC)
    assert opening >= at
    assert calendar.elapsed_us(at, opening) == 0
    assert calendar.elapsed_us(opening, opening + timedelta(microseconds=1)) == 1
    # In UTC: PEP 495 makes == across zones False for a wall time in a repeated hour.
    assert calendar.add(at, 1e-6).astimezone(UTC) == opening + timedelta(microseconds=1)


def exception_instants() -> st.SearchStrategy[datetime]:
    """Instants around the DST changes, where the exception dates of `with_exceptions` lean."""
    return near_change()


@PROFILE
@given(with_exceptions, exception_instants(), st.one_of(short_us, long_us))
def test_round_trip_with_date_exceptions(block: dict[str, Any], start: datetime, x: int) -> None:
    calendar = BusinessCalendar.from_dict(block)
    end = calendar.add(start, secs(x)).astimezone(UTC)
    assert calendar.elapsed_us(start, end) == x
    if x > 0:
        assert calendar.elapsed_us(start, end - timedelta(microseconds=1)) == x - 1


@PROFILE
@given(with_exceptions, exception_instants(), short_us, short_us)
def test_monotone_with_date_exceptions(
    block: dict[str, Any], start: datetime, x: int, y: int
) -> None:
    calendar = BusinessCalendar.from_dict(block)
    x, y = min(x, y), max(x, y)
    early = calendar.add(start, secs(x)).astimezone(UTC)
    late = calendar.add(start, secs(y)).astimezone(UTC)
    assert early <= late and (x == y or early < late)


@PROFILE
@given(with_exceptions, exception_instants(), durations(20), durations(20))
def test_additive_and_exact_with_date_exceptions(
    block: dict[str, Any], a: datetime, i: int, j: int
) -> None:
    calendar = BusinessCalendar.from_dict(block)
    a = a.astimezone(UTC)
    m = a + timedelta(microseconds=min(i, j))
    b = a + timedelta(microseconds=max(i, j))
    assert calendar.elapsed_us(a, b) == calendar.elapsed_us(a, m) + calendar.elapsed_us(m, b)
    assert calendar.elapsed_us(a, b) == reference_elapsed_us(block, a, b)


@settings(deadline=None)
@given(instants, long_us)
def test_24x7_is_plain_elapsed_time(start: datetime, x: int) -> None:
    calendar = BusinessCalendar.from_dict("24x7")
    end = start.astimezone(UTC) + timedelta(microseconds=x)
    assert calendar.add(start, secs(x)) == end
    assert calendar.elapsed(start, end) == secs(x)
