"""Business calendar arithmetic: table-driven cases with hand-derived expectations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla_stream.core.calendar import BusinessCalendar, calendar_for
from sla_stream.core.errors import InvalidContract

H = 3600
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def office(tz: str, ranges=(("09:00", "17:00"),), days=WEEKDAYS, **extra) -> BusinessCalendar:
    hours = {d: [list(r) for r in ranges] for d in days}
    return BusinessCalendar.from_dict({"timezone": tz, "hours": hours, **extra})


def at(tz: str, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(tz), fold=fold)


BERLIN = office("Europe/Berlin", holidays=["2026-12-25"])


def test_add_inside_hours_same_day() -> None:
    # Tue 2026-03-10 10:00 + 2 h = 12:00, well before 17:00.
    assert BERLIN.add(at("Europe/Berlin", 2026, 3, 10, 10), 2 * H) == at(
        "Europe/Berlin", 2026, 3, 10, 12
    )


def test_add_over_weekend() -> None:
    # Fri 2026-03-06 16:00: 1 h left on Friday, 1 h more from Mon 09:00 -> Mon 10:00.
    assert BERLIN.add(at("Europe/Berlin", 2026, 3, 6, 16), 2 * H) == at(
        "Europe/Berlin", 2026, 3, 9, 10
    )


def test_deadline_on_closing_time_is_that_closing_time() -> None:
    # Fri 16:00 + 1 h = Fri 17:00 exactly (closing), not Mon 09:00.
    got = BERLIN.add(at("Europe/Berlin", 2026, 3, 6, 16), H)
    assert got == at("Europe/Berlin", 2026, 3, 6, 17)


def test_elapsed_and_zero_and_reverse() -> None:
    s, e = at("Europe/Berlin", 2026, 3, 6, 16), at("Europe/Berlin", 2026, 3, 9, 10)
    assert BERLIN.elapsed(s, e) == 2 * H  # Fri 16-17 and Mon 09-10
    assert BERLIN.elapsed(e, s) == 0.0
    assert BERLIN.add(s, 0) == s


def test_holiday_is_skipped() -> None:
    # Thu 2026-12-24 09:00 + 16 h: Thu 8 h, Fri 25th holiday, weekend, Mon 28th 8 h -> 17:00.
    assert BERLIN.add(at("Europe/Berlin", 2026, 12, 24, 9), 16 * H) == at(
        "Europe/Berlin", 2026, 12, 28, 17
    )


def test_24x7_is_plain_elapsed_time_in_utc() -> None:
    cal = BusinessCalendar.from_dict("24x7")
    s = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert cal.add(s, 10 * H) == s + timedelta(hours=10)
    assert cal.add(s, 10 * H).utcoffset() == timedelta(0)


def test_naive_input_is_refused() -> None:
    with pytest.raises(ValueError):
        BERLIN.add(datetime(2026, 3, 6, 16), H)


def test_invalid_range_names_path_and_value() -> None:
    block = {
        "timezone": "Europe/Berlin",
        "hours": {"tue": [["09:00", "12:00"], ["13:00", "12:30"]]},
    }
    with pytest.raises(InvalidContract) as err:
        BusinessCalendar.from_dict(block)
    assert err.value.path == "hours.tue[1]"
    assert err.value.value == ["13:00", "12:30"]


def test_calendar_for_reuses_one_calendar() -> None:
    block = {"timezone": "Europe/Berlin", "hours": {"mon": [["09:00", "17:00"]]}}
    same = {"hours": {"mon": [["09:00", "17:00"]]}, "timezone": "Europe/Berlin"}
    assert calendar_for(block) is calendar_for(same)
