"""Business calendars: exact business-time arithmetic across zones, holidays and DST.

Conventions (shared with the established business-time libraries' test suites):

- Each opening range of a local day is the real interval from its local opening instant to its
  local closing instant, resolved by zoneinfo with fold=0 (a wall time in a gap takes the
  offset before the change; a repeated wall time is its first occurrence). Business time is
  measured on that absolute timeline: 09:00-17:00 is 8 h on any day, a 00:00-24:00 day is
  23 h when clocks spring forward and 25 h when they fall back, a skipped hour never counts.
- Intervals are half-open: a calendar is open at its opening instant, closed at its closing
  instant. `add` returns the *first* instant at which the duration is done, so a deadline
  that lands on a closing time is that closing time, not the next opening.
- Holidays are whole local days: a holiday drops the ranges of that weekday (an overnight
  shift written as two ranges loses only the part on the holiday).
- Date exceptions (`dates`) replace the ranges of one local date (an empty list closes it);
  they are wall times like the weekly ranges, and a holiday on the same date still closes it.
- Business time is integer microseconds inside, so `elapsed(s, add(s, x)) == x` exactly for
  any x that is a whole number of microseconds.

- Results are in the calendar's zone. Compare or hash them as instants only after
  `.astimezone(UTC)`: two datetimes sharing a ZoneInfo compare by wall time, and by PEP 495 `==`
  across zones is False for a wall time inside a repeated hour (e.g. 02:30 on the fall-back
  day), even when the instants are equal. `elapsed_us` gives exact integer microseconds.

Cost: `from_dict` validates; weeks are built lazily in blocks of 64 (regular weeks share one
template; only weeks with a holiday, a date exception or a change of offset are computed range
by range), after which `add` and `elapsed` are a few bisections whatever the span.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from sla_stream.core.calendar_spec import CalendarSpec, country_holiday_dates, parse_block
from sla_stream.core.calendar_weeks import (
    BLOCK_WEEKS,
    EPOCH,
    US,
    Block,
    BlockBuilder,
    from_us,
    to_us,
    utc_week,
)

__all__ = ["BusinessCalendar", "calendar_for"]


class BusinessCalendar:
    """Opening hours in one time zone, minus holidays; build it with `from_dict`."""

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self.timezone: ZoneInfo = spec.timezone
        # Open every hour of every day with no holiday: business time is plain elapsed time.
        self._plain = (
            spec.always_open and not spec.holidays and spec.country is None and not spec.dates
        )
        self._holiday_years: dict[int, frozenset[date]] = {}
        self._builder = BlockBuilder(spec.timezone, spec.week, self._holidays_of_year, spec.dates)
        self._blocks: dict[int, Block] = {}
        # instant -> (microseconds, block, week, business position): a clock asks about the
        # same instants (its start, its last resume) at every schedule and stop.
        self._placed: dict[object, tuple[int, Block, int, int]] = {}

    @classmethod
    def from_dict(cls, block: Any) -> BusinessCalendar:
        """A calendar from a contracts-file block, or from the string "24x7" (open always, UTC).

        Raises `InvalidContract` with `path` (the field inside the block) and `value`.
        """
        return cls(parse_block(block))

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.timezone.key!r}, plain={self._plain})"

    def add(self, start: datetime, seconds: float) -> datetime:
        """The first instant at which `seconds` of business time have elapsed from `start`.

        `start` is aware (any offset); counting begins at the next opening if it is outside
        hours. The result is in the calendar's zone; `add(start, 0)` is `start`.
        """
        return from_us(self._add_us(start, seconds), self.timezone)

    def add_utc(self, start: datetime, seconds: float) -> datetime:
        """`add`, the result in UTC (what the engine keeps) without a detour through the zone."""
        if self._plain and start.tzinfo is UTC:  # the engine's instants on a 24x7 clock
            return start + timedelta(microseconds=_duration_us(seconds))
        return EPOCH + timedelta(microseconds=self._add_us(start, seconds))

    def _add_us(self, start: datetime, seconds: float) -> int:
        x = _duration_us(seconds)
        if x == 0 or self._plain:
            return to_us(start) + x
        _, blk, w, position = self._place(start)
        need = position + x
        while need > blk.total:
            need -= blk.total
            blk = self._block(blk.index + 1)
        w = bisect_left(blk.prefix, need) - 1
        return blk.bounds[w] + blk.shapes[w].offset_of(need - blk.prefix[w])

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Business seconds between two aware instants; 0.0 if `end <= start`."""
        return self.elapsed_us(start, end) / US

    def elapsed_us(self, start: datetime, end: datetime) -> int:
        """Business microseconds between two aware instants; 0 if `end <= start`."""
        if self._plain:
            return max(to_us(end) - to_us(start), 0)
        ts, bs, _, start_at = self._place(start)
        te, be, _, end_at = self._place(end)
        if te <= ts:
            return 0
        total = end_at - start_at
        for index in range(bs.index, be.index):
            total += self._block(index).total
        return total

    def next_open(self, at: datetime) -> datetime:
        """The instant business time next starts counting at or after `at` (`at` if open now).

        The result is in the calendar's zone.
        """
        t = to_us(at)
        if self._plain:
            return from_us(t, self.timezone)
        blk, w = self._locate(t)
        rel = blk.shapes[w].next_start(t - blk.bounds[w])
        while rel is None:
            w += 1
            if w == BLOCK_WEEKS:
                blk, w = self._block(blk.index + 1), 0
            rel = blk.shapes[w].next_start(0)
        return from_us(blk.bounds[w] + rel, self.timezone)

    def is_open(self, at: datetime) -> bool:
        """Whether business time is counting at instant `at`."""
        # Compared as instants: inside a repeated DST hour, Python's `==` on datetimes of
        # different zones says False for the same instant (PEP 495's fold rules).
        return to_us(self.next_open(at)) == to_us(at)

    def is_holiday(self, day: date) -> bool:
        """Whether the local date `day` is a holiday (listed, or a public holiday of the region)."""
        return day in self._holidays_of_year(day.year)

    # -- internals -------------------------------------------------------------------------

    def _block(self, index: int) -> Block:
        blk = self._blocks.get(index)
        if blk is None:
            blk = self._blocks[index] = self._builder.build(index)
        return blk

    def _place(self, instant: datetime) -> tuple[int, Block, int, int]:
        """`instant` in microseconds, its block and week, and its business position there."""
        # Equal datetimes of one zone can differ in `fold` (a repeated hour): keyed apart.
        key = instant if not instant.fold else (instant, 1)
        hit = self._placed.get(key)
        if hit is None:
            t = to_us(instant)
            blk, w = self._locate(t)
            if len(self._placed) >= _PLACED_MAX:
                self._placed.clear()
            hit = self._placed[key] = (t, blk, w, self._position(blk, w, t))
        return hit

    def _locate(self, t: int) -> tuple[Block, int]:
        """The block and week (index inside it) whose local week holds instant `t`."""
        week = utc_week(t)
        blk, w = self._block(week // BLOCK_WEEKS), week % BLOCK_WEEKS
        # The local week differs from the UTC date's week by at most one either way.
        while t < blk.bounds[w]:
            w -= 1
            if w < 0:
                blk, w = self._block(blk.index - 1), BLOCK_WEEKS - 1
        while t >= blk.bounds[w + 1]:
            w += 1
            if w == BLOCK_WEEKS:
                blk, w = self._block(blk.index + 1), 0
        return blk, w

    @staticmethod
    def _position(blk: Block, w: int, t: int) -> int:
        """Business microseconds from the start of `blk` to instant `t` (inside week `w`)."""
        return blk.prefix[w] + blk.shapes[w].position(t - blk.bounds[w])

    def _holidays_of_year(self, year: int) -> frozenset[date]:
        days = self._holiday_years.get(year)
        if days is None:
            days = frozenset(d for d in self.spec.holidays if d.year == year)
            if self.spec.country is not None:
                days |= country_holiday_dates(self.spec.country, self.spec.subdiv, year)
            self._holiday_years[year] = days
        return days


_PLACED_MAX = 65_536  # instants remembered per calendar (a few MB at most)


def _duration_us(seconds: float | int | timedelta) -> int:
    if isinstance(seconds, timedelta):
        us = (seconds.days * 86_400 + seconds.seconds) * US + seconds.microseconds
    elif isinstance(seconds, int) and not isinstance(seconds, bool):
        us = seconds * US
    elif isinstance(seconds, float) and math.isfinite(seconds):
        us = round(seconds * US)
    else:
        raise ValueError(f"a duration is a finite number of seconds, got {seconds!r}")
    if us < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds!r}")
    return us


@lru_cache(maxsize=1024)
def _calendar_for_key(key: bytes) -> BusinessCalendar:
    return BusinessCalendar.from_dict(orjson.loads(key))


def calendar_for(block: Any) -> BusinessCalendar:
    """A shared calendar for a block, cached on its canonical JSON (sorted keys).

    Calendars are immutable once built and fill their week cache as they are used, so the
    engine should resolve through here rather than call `from_dict` per incident.
    """
    try:
        key = orjson.dumps(block, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return BusinessCalendar.from_dict(block)  # not JSON: let validation say why
    return _calendar_for_key(key)
