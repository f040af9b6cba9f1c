"""Business calendar arithmetic: add and elapsed calls per second over short and long spans."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sla_stream.core.calendar import BusinessCalendar

TITLE = "Business calendar arithmetic"

OFFICE = {
    "timezone": "Europe/Berlin",
    "hours": {d: [["09:00", "12:00"], ["13:00", "17:00"]] for d in ("mon", "tue", "wed", "thu")}
    | {"fri": [["09:00", "15:00"]]},
    "holidays": ["2026-12-24", "2026-12-31", "2027-12-24", "2027-12-31"],
    "country_holidays": {"country": "DE", "subdiv": "BE"},
}
# (label, business seconds of one business day on that calendar)
CALENDARS = [("office hours, Berlin, DE-BE holidays", OFFICE, 7 * 3600), ("24x7", "24x7", 86_400)]
SPANS = [("2 hours", 2 * 3600, None), ("2 days", None, 2), ("120 days", None, 120)]
STARTS = 1_000  # distinct start instants, spread over a year and every time of day
MIN_SECONDS = 0.3  # each timing runs at least this long
REPEATS = 3


def _starts() -> list[datetime]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(days=365) / STARTS + timedelta(minutes=7)  # drifts through the hours
    return [base + i * step for i in range(STARTS)]


def _rate(call: Callable[[], object]) -> float:
    """Calls per second of `call` (which makes `STARTS` calls), best of `REPEATS` timings.

    The best rather than the mean: other processes on the machine only ever slow a run down.
    """
    best = 0.0
    for _ in range(REPEATS):
        runs, took, started = 0, 0.0, time.perf_counter()
        while took < MIN_SECONDS:
            call()
            runs += 1
            took = time.perf_counter() - started
        best = max(best, runs * STARTS / took)
    return best


def _cold_cost(block: object) -> tuple[float, float]:
    """Milliseconds of `from_dict`, and of the first `add` (which builds the weeks it needs)."""
    started = time.perf_counter()
    calendar = BusinessCalendar.from_dict(block)
    built = time.perf_counter()
    calendar.add(datetime(2026, 6, 1, tzinfo=UTC), 3600)
    used = time.perf_counter()
    return (built - started) * 1e3, (used - built) * 1e3


def run() -> str:
    starts = _starts()
    rows = [
        "| calendar | span | add / s | elapsed / s |",
        "|---|---|---:|---:|",
    ]
    for label, block, day_seconds in CALENDARS:
        calendar = BusinessCalendar.from_dict(block)
        for span_label, seconds, business_days in SPANS:
            span = seconds if seconds is not None else business_days * day_seconds
            ends = [calendar.add(s, span) for s in starts]  # also warms the week cache
            pairs = list(zip(starts, ends, strict=True))
            add_rate = _rate(lambda c=calendar, x=span: [c.add(s, x) for s in starts])
            elapsed_rate = _rate(lambda c=calendar, p=pairs: [c.elapsed(s, e) for s, e in p])
            rows.append(f"| {label} | {span_label} | {add_rate:,.0f} | {elapsed_rate:,.0f} |")
    office_ms, first_ms = _cold_cost(OFFICE)
    notes = (
        f"\n{STARTS:,} start instants spread over 2026 at every time of day; a business day is "
        "7 h on the office calendar (Mon-Thu 09-12 and 13-17, Fri 09-15) and 24 h on 24x7. "
        "Weeks are cached after first use (the figures are warm); on a fresh calendar "
        f"`from_dict` took {office_ms:.1f} ms and the first `add` {first_ms:.1f} ms (it builds "
        "a block of 64 weeks and that year's public holidays).\n"
    )
    return "\n".join(rows) + "\n" + notes
