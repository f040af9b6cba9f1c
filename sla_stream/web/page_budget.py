"""How much a page or an answer may hold: periods per chart, series per chart, default ranges.

The rule, for the dashboard and the adherence API alike: a range is shown at the step asked
for when it has at most a budget of periods (`MAX_CHART_PERIODS` on the page, `MAX_API_PERIODS`
from the API); otherwise at the finest step that fits. The page then says which step it used;
the API refuses and names that step (a client asked for a shape; it should not get another one
silently). A chart draws at most `MAX_SERIES` series: the largest few and "all others".

With no `from`/`to`, both show the periods up to the last one holding settled clocks, not an
empty current period: a desk whose data is historical sees its data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sla_stream.core.periods import STEPS, Step, next_period_start, period_label, period_start

# 200 periods keep a 640-pixel chart at >= 3 px a period and the whole page under ~1 MB (a
# six-month daily view is 184 periods; an hourly quarter, 2,200, is shown by day).
MAX_CHART_PERIODS = 200
# The API answers machines, but its report repeats per-category trends per period: 1,000
# periods (41 days of hours, nearly three years of days) keep an answer around 1 MB (measured
# on sn-standard, the busiest ServiceNow contract: 0.99 MB for 984 hours, 0.60 MB for 1,000
# days).
MAX_API_PERIODS = 1_000
MAX_SERIES = 12
TOP_CATEGORIES = 8
OTHERS = "all others"
STEP_WORDS = {"hour": "hourly", "day": "daily", "quarter": "quarterly"}
# Default span per step, ending with the last period that holds settled clocks.
DEFAULT_PERIODS: dict[str, int] = {"hour": 168, "day": 90, "quarter": 8}


def count_periods(from_at: datetime, to_at: datetime, tz: str, step: Step, limit: int) -> int:
    """Periods of `step` intersecting [from_at, to_at) in `tz`, counting no further than
    `limit` (so a silly range costs nothing)."""
    count, start = 0, period_start(from_at, tz, step)
    while start < to_at and count < limit:
        count += 1
        start = next_period_start(start, tz, step)
    return count


def fitting_step(
    from_at: datetime, to_at: datetime, zones: Iterable[str], step: Step, limit: int
) -> tuple[Step | None, int]:
    """The finest step, `step` or coarser, with at most `limit` periods in every zone, and its
    count; (None, count at quarters) when not even quarters fit."""
    zones = list(dict.fromkeys(zones)) or ["UTC"]
    count = 0
    for candidate in STEPS[STEPS.index(step) :]:
        count = max(count_periods(from_at, to_at, z, candidate, limit + 1) for z in zones)  # type: ignore[arg-type]
        if count <= limit:
            return candidate, count  # type: ignore[return-value]
    return None, count


def too_many_text(step: Step, count: int, limit: int) -> str:
    shown = f"{count:,}" if count <= limit else f"more than {limit:,}"
    return f"{shown} {STEP_WORDS[step]} periods"


def default_range(latest: datetime, tz: str, step: Step) -> tuple[str, str]:
    """(`from`, `to`) texts of the `DEFAULT_PERIODS[step]` periods ending with the one holding
    `latest`, as dates or quarters read in `tz` (hours: whole local days, a week of them)."""
    if step == "quarter":
        end = next_period_start(period_start(latest, tz, "quarter"), tz, "quarter")
        start = end
        for _ in range(DEFAULT_PERIODS["quarter"]):
            start = period_start(start - timedelta(days=1), tz, "quarter")
        return period_label(start, tz, "quarter"), period_label(end, tz, "quarter")
    days = DEFAULT_PERIODS["day"] if step == "day" else DEFAULT_PERIODS["hour"] // 24
    last_day = datetime.fromisoformat(period_label(latest, tz, "day")).date()
    end_day = last_day + timedelta(days=1)
    return (end_day - timedelta(days=days)).isoformat(), end_day.isoformat()


def default_range_text(step: Step, latest: datetime | None, tz: str) -> str:
    """What a reader is told when no `from`/`to` was given."""
    n = DEFAULT_PERIODS[step] if step != "hour" else DEFAULT_PERIODS["hour"] // 24
    unit = {"hour": "days", "day": "days", "quarter": "quarters"}[step]
    if latest is None:
        return f"No from/to given and no settled clocks yet: showing the last {n} {unit}."
    last = period_label(latest, tz, "quarter" if step == "quarter" else "day")
    return f"No from/to given: showing the {n} {unit} up to {last}, the latest with settled clocks."
