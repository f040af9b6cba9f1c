"""Why business time counts or not across an interval of one calendar: its open stretches, and
its closed ones labelled outside hours, holiday or date exception (a calendar `dates` entry).

Each stretch's business microseconds come from the calendar itself (`elapsed_us`), so they sum
to the calendar's count over the whole interval; the labels only say why. Wall times resolve as
the calendar resolves them (`BlockBuilder.local_us`, fold=0), so DST days are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise

from sla_stream.core.calendar import BusinessCalendar
from sla_stream.core.calendar_spec import Range
from sla_stream.core.calendar_weeks import BlockBuilder, from_us, to_us

COUNTING, OUTSIDE_HOURS, HOLIDAY, EXCEPTION = "counting", "outside_hours", "holiday", "exception"
# Where labelled intervals overlap (a neighbour day's range across a DST change), the first wins.
_PRIORITY = {COUNTING: 0, HOLIDAY: 1, EXCEPTION: 2}


@dataclass(frozen=True)
class Stretch:
    """A maximal piece of [start, end) with one reason; `note` names the date that decided it
    (the holiday, or the `dates` entry that closed or opened it)."""

    kind: str
    start_at: datetime
    end_at: datetime
    business_us: int
    note: str | None = None


def stretches(cal: BusinessCalendar, start: datetime, end: datetime) -> list[Stretch]:
    """The stretches of [start, end) on `cal`, in order, contiguous; empty if end <= start."""
    ts, te = to_us(start), to_us(end)
    if te <= ts:
        return []
    labelled = sorted(_labelled(cal, ts, te))
    cuts = sorted({ts, te, *(x for s, e, _, _ in labelled for x in (s, e) if ts < x < te)})
    pieces: list[tuple[int, int, str, str | None]] = []
    active: list[tuple[int, int, str, str | None]] = []
    nxt = 0
    for a, b in pairwise(cuts):
        # A sweep: the intervals covering [a, b) are those started by `a` and not yet ended.
        while nxt < len(labelled) and labelled[nxt][0] <= a:
            active.append(labelled[nxt])
            nxt += 1
        active = [x for x in active if x[1] > a]
        kind, note = _label_at(active, a)
        if pieces and pieces[-1][2:] == (kind, note):
            pieces[-1] = (pieces[-1][0], b, kind, note)
        else:
            pieces.append((a, b, kind, note))
    tz = cal.timezone
    return [
        Stretch(
            kind,
            from_us(a, tz),
            from_us(b, tz),
            cal.elapsed_us(from_us(a, tz), from_us(b, tz)),
            note,
        )
        for a, b, kind, note in pieces
    ]


def _label_at(labelled: list[tuple[int, int, str, str | None]], t: int) -> tuple[str, str | None]:
    best: tuple[str, str | None] | None = None
    for s, e, kind, note in labelled:
        if s <= t < e and (best is None or _PRIORITY[kind] < _PRIORITY[best[0]]):
            best = (kind, note)
    return best if best is not None else (OUTSIDE_HOURS, None)


def _labelled(cal: BusinessCalendar, ts: int, te: int) -> list[tuple[int, int, str, str | None]]:
    """Open, holiday and exception intervals of every local day touching [ts, te]."""
    spec = cal.spec
    walls = BlockBuilder(cal.timezone, spec.week, lambda year: frozenset(), spec.dates)
    first = from_us(ts, cal.timezone).date() - timedelta(days=1)
    last = from_us(te, cal.timezone).date() + timedelta(days=1)
    out: list[tuple[int, int, str, str | None]] = []
    day = first
    while day <= last:
        ranges = walls.ranges_on(day)
        excepted = day in spec.dates
        if cal.is_holiday(day):
            out += _instants(walls, day, ranges, HOLIDAY, f"holiday {day.isoformat()}")
        else:
            note = f"dates {day.isoformat()}" if excepted else None
            out += _instants(walls, day, ranges, COUNTING, note)
            if excepted:
                closed = _minus(spec.week[day.weekday()], ranges)
                out += _instants(walls, day, closed, EXCEPTION, f"dates {day.isoformat()}")
        day += timedelta(days=1)
    return [(max(s, ts), min(e, te), k, n) for s, e, k, n in out if s < te and e > ts]


def _instants(
    walls: BlockBuilder, day: date, ranges: tuple[Range, ...], kind: str, note: str | None
) -> list[tuple[int, int, str, str | None]]:
    found = []
    for a, b in ranges:
        s, e = walls.local_us(day, a), walls.local_us(day, b)
        if e > s:
            found.append((s, e, kind, note))
    return found


def _minus(week_ranges: tuple[Range, ...], kept: tuple[Range, ...]) -> tuple[Range, ...]:
    """The parts of a weekday's ranges that a date's own ranges leave closed (seconds of day)."""
    out: list[Range] = []
    for a, b in week_ranges:
        pieces = [(a, b)]
        for c, d in kept:
            pieces = [p for s, e in pieces for p in ((s, min(e, c)), (max(s, d), e)) if p[1] > p[0]]
        out += pieces
    return tuple(out)
