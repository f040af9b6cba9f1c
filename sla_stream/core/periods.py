"""Reporting periods (hour, day, calendar quarter) taken in a contract's time zone, DST-correct.

Every function returns a period's first instant as an aware datetime in UTC: instants compare
and hash safely (two local wall times that differ only by `fold` compare equal in Python when
they share a tzinfo, so local datetimes make poor keys). Use `.astimezone(zone)` or
`period_label` for the local view.

- An hour is a real hour: the local wall-clock hour the instant falls in, with the DST fold
  kept, so the repeated 02:00-03:00 of an autumn night in Berlin is two buckets, and the spring
  night has no 02:00 bucket.
- A day is a local calendar day: from the first instant of the local date to the first instant
  of the next one (23 h or 25 h on DST days). When a zone skips local midnight, the day starts at
  the instant of the change (zoneinfo's fold=0 reading of the missing wall time).
- A month is a calendar month of local dates (service-level targets are judged per month or
  quarter); it is not a step of the adherence reports.
- A quarter is a calendar quarter of local dates: Q1 starts at the first instant of 1 January,
  Q2 of 1 April, Q3 of 1 July, Q4 of 1 October, in the zone.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal, get_args
from zoneinfo import ZoneInfo

Step = Literal["hour", "day", "quarter"]
STEPS: tuple[str, ...] = get_args(Step)
Period = Literal["hour", "day", "month", "quarter"]

_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)


@lru_cache(maxsize=256)
def zone_of(tz: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name (cached: periods are computed once per outcome)."""
    return ZoneInfo(tz)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else zone_of(tz)


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"a period needs an aware instant, got naive {instant.isoformat()}")


def start_of_local_date(day: date, tz: str | ZoneInfo) -> datetime:
    """The first instant (UTC) of local date `day` in `tz`."""
    local = datetime(day.year, day.month, day.day, tzinfo=_zone(tz))  # fold=0: see module doc
    return local.astimezone(UTC)


def quarter_number(day: date) -> int:
    return (day.month - 1) // 3 + 1


def quarter_first_day(year: int, quarter: int) -> date:
    return date(year, 3 * (quarter - 1) + 1, 1)


def period_start(instant: datetime, tz: str | ZoneInfo, step: Period) -> datetime:
    """First instant (UTC) of the hour, local day, month or quarter containing `instant`."""
    _require_aware(instant)
    local = instant.astimezone(_zone(tz))  # fromutc sets fold=1 on the repeated hour
    if step == "hour":
        # replace() keeps fold, so the second 02:00 of a fall-back night stays the second one.
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    if step == "day":
        return start_of_local_date(local.date(), tz)
    if step == "month":
        return start_of_local_date(local.date().replace(day=1), tz)
    if step == "quarter":
        first = quarter_first_day(local.year, quarter_number(local.date()))
        return start_of_local_date(first, tz)
    raise ValueError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")


def next_period_start(start: datetime, tz: str | ZoneInfo, step: Period) -> datetime:
    """First instant (UTC) of the period after the one that starts at `start`."""
    if step == "hour":
        # One real hour later, floored again: right even where an offset change is not 1 h.
        # Where a fall-back repeats only part of an hour (Lord Howe's 30 minutes), that local
        # hour lasts longer than one real hour: step on until the floor moves.
        probe = start + timedelta(hours=1)
        following = period_start(probe, tz, "hour")
        while following <= start:
            probe += timedelta(minutes=15)
            following = period_start(probe, tz, "hour")
        return following
    local_day = start.astimezone(_zone(tz)).date()
    if step == "day":
        return start_of_local_date(local_day + timedelta(days=1), tz)
    if step == "month":
        year, month = divmod(local_day.year * 12 + local_day.month, 12)  # month is 0-based here
        return start_of_local_date(date(year, month + 1, 1), tz)
    if step == "quarter":
        q = quarter_number(local_day)
        year, q = (local_day.year + 1, 1) if q == 4 else (local_day.year, q + 1)
        return start_of_local_date(quarter_first_day(year, q), tz)
    raise ValueError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")


def period_starts(
    from_at: datetime, to_at: datetime, tz: str | ZoneInfo, step: Period
) -> list[datetime]:
    """Starts (UTC) of every period that intersects the half-open range [from_at, to_at)."""
    starts: list[datetime] = []
    if to_at <= from_at:
        return starts
    start = period_start(from_at, tz, step)
    while start < to_at:
        starts.append(start)
        start = next_period_start(start, tz, step)
    return starts


def quarter_of(instant: datetime, tz: str | ZoneInfo) -> str:
    """The calendar quarter of `instant` in `tz`, as `YYYY-Qn`."""
    _require_aware(instant)
    local = instant.astimezone(_zone(tz)).date()
    return f"{local.year}-Q{quarter_number(local)}"


def period_label(start: datetime, tz: str | ZoneInfo, step: Period) -> str:
    """How a period reads in its zone: `2026-10-25T02:00+01:00`, `2026-04-01`, `2026-04` or
    `2026-Q2`."""
    local = start.astimezone(_zone(tz))
    if step == "hour":
        return local.isoformat(timespec="minutes")
    if step == "day":
        return local.date().isoformat()
    if step == "month":
        return local.date().isoformat()[:7]
    return quarter_of(start, tz)


def parse_bound(text: str, tz: str | ZoneInfo) -> datetime:
    """A range bound: an RFC 3339 instant with offset, a local date, or a quarter `2026-Q2`.

    Dates and quarters are read in `tz` (the contract's zone) and mean their first instant.
    A date-time without an offset is refused: "which midnight" is a question for the caller.
    """
    text = text.strip()
    quarter = _QUARTER.match(text)
    if quarter:
        return start_of_local_date(quarter_first_day(int(quarter[1]), int(quarter[2])), tz)
    if len(text) == 10:
        return start_of_local_date(date.fromisoformat(text), tz)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; give one, or a plain date")
    return parsed.astimezone(UTC)
