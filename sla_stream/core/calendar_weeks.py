"""Business intervals of local weeks on the absolute timeline, built lazily in blocks of weeks.

Instants are integer microseconds since 1970-01-01T00:00Z, so sums and differences are exact.
A week runs from local Monday 00:00 (fold=0) to the next one. A week whose UTC offset is
constant from the day before it to the day after it, and that has no holiday on an open day,
is *regular*: its intervals are the weekly template shifted by the week's start. Only the other
weeks (a DST change, a holiday) are computed range by range, and only once per block.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sla_stream.core.calendar_spec import DAY_SECONDS, Range

US = 1_000_000
DAY_US = DAY_SECONDS * US
BLOCK_WEEKS = 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Offsets are sampled this often to tell a steady day from one with a change of offset. No zone
# of tzdata (2026.6, checked over every zone and its whole history) has two changes of offset
# less than 48 hours apart, so a change cannot hide between samples.
_SAMPLE_US = 6 * 3600 * US


def to_us(instant: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (naive ones are refused)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant!r}: give an offset or a zone")
    d = instant - EPOCH
    return (d.days * DAY_SECONDS + d.seconds) * US + d.microseconds


def from_us(t: int, tz: ZoneInfo) -> datetime:
    """The instant `t` (microseconds since the epoch) as a datetime in zone `tz`."""
    return (EPOCH + timedelta(microseconds=t)).astimezone(tz)


def utc_week(t: int) -> int:
    """Index of the Monday-based week holding the UTC date of `t` (week 0 starts 0001-01-01)."""
    return (t // DAY_US + EPOCH_ORDINAL - 1) // 7


def monday_of(week: int) -> date:
    return date.fromordinal(7 * week + 1)


@dataclass(frozen=True, slots=True)
class WeekShape:
    """Disjoint, sorted business intervals of one week, relative to its start (microseconds)."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    cum: tuple[int, ...]  # business microseconds up to the end of each interval

    @classmethod
    def from_intervals(cls, intervals: Iterable[tuple[int, int]]) -> WeekShape:
        merged: list[list[int]] = []
        for s, e in sorted(intervals):
            if e <= s:
                continue
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        cum, total = [], 0
        for s, e in merged:
            total += e - s
            cum.append(total)
        return cls(tuple(s for s, _ in merged), tuple(e for _, e in merged), tuple(cum))

    @property
    def total(self) -> int:
        return self.cum[-1] if self.cum else 0

    def position(self, rel: int) -> int:
        """Business microseconds of this week before offset `rel`."""
        i = bisect_right(self.starts, rel) - 1
        if i < 0:
            return 0
        return self.cum[i] - max(0, self.ends[i] - rel)

    def offset_of(self, need: int) -> int:
        """The first offset at which `need` (0 < need <= total) business microseconds are done."""
        i = bisect_left(self.cum, need)
        return self.ends[i] - (self.cum[i] - need)

    def next_start(self, rel: int) -> int | None:
        """The first offset >= `rel` inside an interval, or None if the week has no more."""
        i = bisect_right(self.starts, rel) - 1
        if i >= 0 and rel < self.ends[i]:
            return rel
        return self.starts[i + 1] if i + 1 < len(self.starts) else None


def template_shape(week: tuple[tuple[Range, ...], ...]) -> WeekShape:
    """The shape of a week with a constant UTC offset and no holiday."""
    return WeekShape.from_intervals(
        (i * DAY_US + a * US, i * DAY_US + b * US) for i, day in enumerate(week) for a, b in day
    )


@dataclass(frozen=True, slots=True)
class Block:
    """`BLOCK_WEEKS` consecutive weeks from week `BLOCK_WEEKS * index`."""

    index: int
    bounds: tuple[int, ...]  # start instant of each week, and of the week after the last
    shapes: tuple[WeekShape, ...]
    prefix: tuple[int, ...]  # business microseconds of the block before each week

    @property
    def total(self) -> int:
        return self.prefix[-1]


class BlockBuilder:
    """Builds the blocks of one calendar: zone, weekly ranges and a holiday lookup by year."""

    def __init__(
        self,
        tz: ZoneInfo,
        week: tuple[tuple[Range, ...], ...],
        holidays_of_year: Callable[[int], frozenset[date]],
    ) -> None:
        self.tz = tz
        self.week = week
        self.template = template_shape(week)
        self.holidays_of_year = holidays_of_year

    def local_us(self, day: date, seconds: int) -> int:
        """The instant of a local wall time (fold=0, as zoneinfo resolves gaps and repeats)."""
        if seconds == DAY_SECONDS:
            day, seconds = day + timedelta(days=1), 0
        h, rest = divmod(seconds, 3600)
        wall = datetime(day.year, day.month, day.day, h, rest // 60, rest % 60, tzinfo=self.tz)
        return to_us(wall)

    def build(self, index: int) -> Block:
        first = monday_of(index * BLOCK_WEEKS)
        # Days from the Sunday before the block to the Monday after the week after it.
        days = [first + timedelta(days=j - 1) for j in range(BLOCK_WEEKS * 7 + 3)]
        mids = [self.local_us(d, 0) for d in days]
        steady = [self._steady(mids[j], mids[j + 1]) for j in range(len(days) - 1)]
        holidays = self._holidays(days)
        bounds = tuple(mids[7 * w + 1] for w in range(BLOCK_WEEKS + 1))
        shapes, prefix = [], [0]
        for w in range(BLOCK_WEEKS):
            week_days = days[7 * w + 1 : 7 * w + 8]
            closed = any(d in holidays and self.week[d.weekday()] for d in week_days)
            if all(steady[7 * w : 7 * w + 9]) and not closed:
                shape = self.template
            else:
                shape = self._exception(days[7 * w : 7 * w + 9], holidays, bounds[w : w + 2])
            shapes.append(shape)
            prefix.append(prefix[-1] + shape.total)
        return Block(index, bounds, tuple(shapes), tuple(prefix))

    def _steady(self, start: int, end: int) -> bool:
        """Whether the UTC offset is the same over the whole local day [start, end]."""
        if end - start != DAY_US:
            return False
        offset = from_us(end, self.tz).utcoffset()
        return all(from_us(t, self.tz).utcoffset() == offset for t in range(start, end, _SAMPLE_US))

    def _holidays(self, days: list[date]) -> frozenset[date]:
        years = range(days[0].year, days[-1].year + 1)
        return frozenset().union(*(self.holidays_of_year(y) for y in years))

    def _exception(
        self, days: list[date], holidays: frozenset[date], bounds: tuple[int, ...]
    ) -> WeekShape:
        """A week computed range by range from local wall times; `days` include one either side.

        The neighbours matter only when a change of offset moves one of their ranges across
        the week's bounds; the union of every day's intervals is clipped to the week.
        """
        lo, hi = bounds
        intervals = []
        for d in days:
            if d in holidays:
                continue
            for a, b in self.week[d.weekday()]:
                s, e = max(self.local_us(d, a), lo), min(self.local_us(d, b), hi)
                if e > s:
                    intervals.append((s - lo, e - lo))
        return WeekShape.from_intervals(intervals)
