"""Validation of a calendar block into a `CalendarSpec`: zone, weekly opening ranges, holidays,
and date exceptions (the ranges of one date replacing that weekday's)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_pkg

from sla_stream.core.errors import InvalidContract

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS = "24x7"
DAY_SECONDS = 86_400
# Keys a block may carry besides the ones that shape the calendar: informational only.
_INFO_KEYS = frozenset({"name", "description"})
_KEYS = frozenset({"timezone", "hours", "holidays", "country_holidays", "dates"}) | _INFO_KEYS
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")

# One opening range of a local day, in seconds since local midnight; end 86400 is "24:00".
Range = tuple[int, int]


@dataclass(frozen=True)
class CalendarSpec:
    """A validated calendar block. `week[i]` are the ranges of weekday i (0 = Monday)."""

    timezone: ZoneInfo
    week: tuple[tuple[Range, ...], ...]
    holidays: frozenset[date]
    country: str | None = None
    subdiv: str | None = None
    # Date exceptions: the ranges of a date replace its weekday's (empty: closed that day).
    dates: Mapping[date, tuple[Range, ...]] = field(default_factory=dict, hash=False)

    @property
    def always_open(self) -> bool:
        return all(day == ((0, DAY_SECONDS),) for day in self.week)


def parse_block(block: Any) -> CalendarSpec:
    """Validate a calendar block; raise `InvalidContract` naming the field and the value."""
    if block == ALWAYS:
        return CalendarSpec(ZoneInfo("UTC"), _always_week(), frozenset())
    if not isinstance(block, dict):
        raise InvalidContract("a calendar is a mapping or '24x7'", path="", value=block)
    for key in block:
        if key not in _KEYS:
            raise InvalidContract("unknown calendar field", path=str(key), value=key)
    if "timezone" not in block:
        raise InvalidContract("a calendar needs a timezone", path="timezone")
    tz = _parse_zone(block["timezone"])
    hours = block.get("hours")
    week = _always_week() if hours is None or hours == ALWAYS else _parse_hours(hours)
    days = _parse_holidays(block.get("holidays", []))
    country, subdiv = _parse_country(block.get("country_holidays"))
    dates = _parse_dates(block.get("dates", {}))
    return CalendarSpec(tz, week, days, country, subdiv, dates)


def _always_week() -> tuple[tuple[Range, ...], ...]:
    return tuple(((0, DAY_SECONDS),) for _ in WEEKDAYS)


def _parse_zone(value: Any) -> ZoneInfo:
    if not isinstance(value, str) or not value:
        raise InvalidContract("timezone must be an IANA zone name", path="timezone", value=value)
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidContract("unknown time zone", path="timezone", value=value) from exc


def _parse_hours(hours: Any) -> tuple[tuple[Range, ...], ...]:
    if not isinstance(hours, dict):
        raise InvalidContract("hours maps weekdays to ranges", path="hours", value=hours)
    for key in hours:
        if key not in WEEKDAYS:
            raise InvalidContract(
                f"unknown weekday (use {', '.join(WEEKDAYS)})", path=f"hours.{key}", value=key
            )
    week = tuple(_parse_day(f"hours.{day}", hours.get(day) or []) for day in WEEKDAYS)
    if not any(week):
        raise InvalidContract("a calendar must be open at some time", path="hours", value=hours)
    return week


def _parse_day(path: str, ranges: Any) -> tuple[Range, ...]:
    if not isinstance(ranges, list | tuple):
        raise InvalidContract("a weekday holds a list of [start, end]", path=path, value=ranges)
    parsed: list[tuple[Range, int]] = []
    for i, item in enumerate(ranges):
        where = f"{path}[{i}]"
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise InvalidContract("a range is [start, end]", path=where, value=item)
        start = _parse_time(where, item, item[0], allow_24=False)
        end = _parse_time(where, item, item[1], allow_24=True)
        if end <= start:
            raise InvalidContract(
                "a range must end after it starts (split an overnight shift at midnight)",
                path=where,
                value=item,
            )
        parsed.append(((start, end), i))
    parsed.sort()
    for (prev, _), (cur, i) in pairwise(parsed):
        if cur[0] < prev[1]:
            raise InvalidContract("overlapping ranges", path=f"{path}[{i}]", value=ranges[i])
    return tuple(r for r, _ in parsed)


def _parse_time(where: str, item: Any, text: Any, *, allow_24: bool) -> int:
    m = _TIME.match(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidContract("times are 'HH:MM' (or 'HH:MM:SS')", path=where, value=item)
    h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
    seconds = h * 3600 + mi * 60 + s
    if mi > 59 or s > 59 or seconds > DAY_SECONDS or (seconds == DAY_SECONDS) != (h == 24):
        raise InvalidContract("no such time of day", path=where, value=item)
    if seconds == DAY_SECONDS and not allow_24:
        raise InvalidContract("'24:00' can only end a range", path=where, value=item)
    return seconds


def _parse_holidays(values: Any) -> frozenset[date]:
    if not isinstance(values, list | tuple):
        raise InvalidContract("holidays is a list of dates", path="holidays", value=values)
    days: set[date] = set()
    for i, value in enumerate(values):
        day = _as_date(value)
        if day is None:
            raise InvalidContract(
                "a holiday is a date 'YYYY-MM-DD'", path=f"holidays[{i}]", value=value
            )
        days.add(day)
    return frozenset(days)


def _parse_dates(values: Any) -> dict[date, tuple[Range, ...]]:
    """`dates`: {"YYYY-MM-DD": [[start, end], ...]}, each replacing that weekday's ranges."""
    if not isinstance(values, dict):
        raise InvalidContract(
            "dates maps 'YYYY-MM-DD' to a list of [start, end]", path="dates", value=values
        )
    parsed: dict[date, tuple[Range, ...]] = {}
    for key, ranges in values.items():
        day = _as_date(key)
        if day is None:
            raise InvalidContract("a date is 'YYYY-MM-DD'", path=f"dates.{key}", value=key)
        if day in parsed:
            raise InvalidContract("a date given twice", path=f"dates.{key}", value=key)
        parsed[day] = _parse_day(f"dates.{day.isoformat()}", ranges)
    return parsed


def _as_date(value: Any) -> date | None:
    """A calendar date from 'YYYY-MM-DD', or from the date YAML makes of an unquoted one."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _parse_country(value: Any) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    path = "country_holidays"
    if not isinstance(value, dict) or "country" not in value:
        raise InvalidContract("country_holidays is {country, subdiv}", path=path, value=value)
    for key in value:
        if key not in ("country", "subdiv"):
            raise InvalidContract("unknown field", path=f"{path}.{key}", value=key)
    country, subdiv = value["country"], value.get("subdiv")
    if not isinstance(country, str):
        raise InvalidContract("unknown country", path=f"{path}.country", value=country)
    if subdiv is not None and not isinstance(subdiv, str):
        raise InvalidContract("unknown subdivision", path=f"{path}.subdiv", value=subdiv)
    try:
        holidays_pkg.country_holidays(country)
    except NotImplementedError as exc:
        raise InvalidContract("unknown country", path=f"{path}.country", value=country) from exc
    try:
        holidays_pkg.country_holidays(country, subdiv=subdiv)
    except NotImplementedError as exc:
        raise InvalidContract("unknown subdivision", path=f"{path}.subdiv", value=subdiv) from exc
    return country, subdiv


def country_holiday_dates(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    """The public holidays of a region in one year, from the `holidays` package."""
    return frozenset(holidays_pkg.country_holidays(country, subdiv=subdiv, years=year).keys())
