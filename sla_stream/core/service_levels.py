"""Aggregate service levels and service credits, judged from adherence counts (pure).

A service level commits to `objective_percent` % of one metric's clocks (at some severities, or
all) settled within their allowance in each month or quarter, taken in the contract's zone. Its
figures are those of the adherence rollups (DESIGN "Adherence arithmetic"): met ÷ (met +
breached) over the clocks settled in the period, a met clock at its stop instant, a breached one
at its breach instant. Everything here is a function of those counts and an instant:

- **Status.** `in_progress` while the period has not ended; after its end `met` when the figure
  reaches the objective (or nothing settled: nothing failed), else `missed`.
- **Headroom.** How many more breaches, with no further met clock, the period can take and still
  meet the objective: floor(met * 100 / objective) - met - breached. Negative when the figure is
  already below. One more breach than the headroom misses the target ("2 more P1 breaches this
  month and the target is missed" is a headroom of 1).
- **Credit.** Per period, the service levels of that period length that were missed: either
  `percent_per_miss` * misses, or the percent of the highest step whose `misses` is reached;
  at most `cap_percent`; of the period's fee (the monthly fee, three of them for a quarter).
- **Terms.** A period is judged under the contract version in force at its first instant, else
  the first version that comes into force during it.
- **Alerts.** `target_missed` once a period is judged missed; `target_headroom` when a change of
  counts brings the headroom down to 1 or to 0. Ids are deterministic in (contract, service
  level, period, kind, headroom), so a re-send or a replay repeats them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from functools import lru_cache
from typing import Literal, NamedTuple

from sla_stream.core.models import SEVERITIES, Alert
from sla_stream.core.periods import next_period_start, period_label, period_start, period_starts
from sla_stream.core.terms import ContractRecord, ContractTerms, ServiceCredit, ServiceLevel

Status = Literal["met", "missed", "in_progress"]
HEADROOM_ALERT_LEVELS = (1, 0)
MONTHS_IN = {"month": 1, "quarter": 3}


class Counts(NamedTuple):
    """Clocks settled in a period: within their allowance, and breached."""

    met: int
    breached: int

    @property
    def settled(self) -> int:
        return self.met + self.breached


# (metric, severities or () for all, period start, period end) -> the counts settled in it.
CountsOf = Callable[[str, tuple[str, ...], datetime, datetime], Counts]


@lru_cache(maxsize=256)
def _percent(objective_percent: float) -> Fraction:
    # Exact: 99.9 is 999/10, not the binary float nearest to it.
    return Fraction(str(objective_percent))


def headroom(objective_percent: float, counts: Counts) -> int:
    """Breaches the period can still take (no further met clock) and meet the objective."""
    objective = _percent(objective_percent) / 100
    return int(counts.met / objective) - counts.met - counts.breached  # floor: both >= 0


def meets(objective_percent: float, counts: Counts) -> bool:
    """The figure reaches the objective (exactly, without float rounding); vacuous at 0/0."""
    return counts.met * 100 >= _percent(objective_percent) * counts.settled


@dataclass(frozen=True)
class LevelPeriod:
    """One service level in one period: its figure with numerator and denominator, its status,
    and while in progress the breaches it can still take."""

    level: ServiceLevel
    start: datetime
    end: datetime
    label: str
    counts: Counts
    status: Status
    headroom: int

    @property
    def rate(self) -> float | None:
        return self.counts.met / self.counts.settled if self.counts.settled else None


def judge(
    level: ServiceLevel, start: datetime, tz: str, counts: Counts, now: datetime
) -> LevelPeriod:
    """`level` over the period starting at `start` (UTC, in zone `tz`), as of `now`."""
    end = next_period_start(start, tz, level.period)
    if now < end:
        status: Status = "in_progress"
    else:
        status = "met" if meets(level.objective_percent, counts) else "missed"
    return LevelPeriod(
        level=level,
        start=start,
        end=end,
        label=period_label(start, tz, level.period),
        counts=counts,
        status=status,
        headroom=headroom(level.objective_percent, counts),
    )


def credit_percent(credit: ServiceCredit, misses: int) -> float:
    """Percent of the period's fee owed for `misses` missed service levels."""
    if misses <= 0:
        return 0.0
    if credit.percent_per_miss is not None:
        percent = credit.percent_per_miss * misses
    else:
        percent = max((s.percent for s in credit.steps if misses >= s.misses), default=0.0)
    return percent if credit.cap_percent is None else min(percent, credit.cap_percent)


def period_fee(credit: ServiceCredit, period: str) -> float:
    return credit.monthly_fee * MONTHS_IN[period]


@dataclass(frozen=True)
class PeriodCredit:
    """The credit owed for one period: which service levels it counts and what it comes to."""

    period: str  # month or quarter
    label: str
    start: datetime
    end: datetime
    misses: int
    percent: float
    amount: float
    currency: str | None
    credit: ServiceCredit


def terms_for_period(
    record: ContractRecord, start: datetime, end: datetime
) -> ContractTerms | None:
    """The version a period is judged under (see the module doc); remembered per record and
    period, as the rollup asks for every outcome it counts."""
    key = (id(record), start, end)
    hit = _PERIOD_TERMS.get(key)
    if hit is not None and hit[0] is record:  # holding the record keeps its id from reuse
        return hit[1]
    found = record.for_incident_opened_at(start)
    if found is None:
        later = [
            v
            for v in record.versions
            if v.effective_from is not None and start < v.effective_from < end
        ]
        found = min(later, key=lambda v: (v.effective_from, -v.version), default=None)
    if len(_PERIOD_TERMS) >= 4096:
        _PERIOD_TERMS.clear()
    _PERIOD_TERMS[key] = (record, found)
    return found


_PERIOD_TERMS: dict[
    tuple[int, datetime, datetime], tuple[ContractRecord, ContractTerms | None]
] = {}


@dataclass(frozen=True)
class Judgement:
    """Every service level of a contract over a range, and the credits of its ended periods."""

    contract_id: str
    timezone: str
    levels: tuple[LevelPeriod, ...]
    credits: tuple[PeriodCredit, ...]
    # By (month or quarter, period start): the version each period was judged under.
    terms: dict[tuple[str, datetime], ContractTerms]


def evaluate(
    record: ContractRecord,
    tz: str,
    from_at: datetime,
    to_at: datetime,
    now: datetime,
    counts_of: CountsOf,
) -> Judgement:
    """Every period (month or quarter, per service level) intersecting [from_at, to_at)."""
    levels: list[LevelPeriod] = []
    credits: list[PeriodCredit] = []
    terms_of: dict[tuple[str, datetime], ContractTerms] = {}
    for period in ("month", "quarter"):
        for start in period_starts(from_at, to_at, tz, period):  # type: ignore[arg-type]
            end = next_period_start(start, tz, period)  # type: ignore[arg-type]
            terms = terms_for_period(record, start, end)
            if terms is None:
                continue
            judged = [
                judge(level, start, tz, counts_of(level.metric, level.severities, start, end), now)
                for level in terms.service_levels
                if level.period == period
            ]
            if not judged:
                continue
            terms_of[(period, start)] = terms
            levels += judged
            credit = terms.service_credit
            if credit is not None and now >= end:
                misses = sum(1 for j in judged if j.status == "missed")
                percent = credit_percent(credit, misses)
                amount = round(period_fee(credit, period) * percent / 100, 2)
                credits.append(
                    PeriodCredit(
                        period,
                        judged[0].label,
                        start,
                        end,
                        misses,
                        percent,
                        amount,
                        terms.currency,
                        credit,
                    )
                )
    levels.sort(key=lambda j: (j.start, j.level.id))
    credits.sort(key=lambda c: (c.start, c.period))
    return Judgement(record.contract_id, tz, tuple(levels), tuple(credits), terms_of)


def quarter_credits(judgement: Judgement, tz: str) -> dict[str, float]:
    """Credit owed per calendar quarter (its months' credits and its own), in the zone."""
    out: dict[str, float] = {}
    for c in judgement.credits:
        label = period_label(period_start(c.start, tz, "quarter"), tz, "quarter")
        out[label] = round(out.get(label, 0.0) + c.amount, 2)
    return out


# -- alerts -------------------------------------------------------------------------------------


def headroom_crossed(objective_percent: float, before: Counts, after: Counts) -> int | None:
    """The headroom level (1 or 0) that a change of counts brought the headroom down to."""
    was, now = headroom(objective_percent, before), headroom(objective_percent, after)
    if now in HEADROOM_ALERT_LEVELS and was > now:
        return now
    return None


def alert_id(contract_id: str, level_id: str, label: str, kind: str, level: int | None) -> str:
    text = "\x1f".join(("service_level", contract_id, level_id, label, kind, str(level)))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def level_alert(
    terms: ContractTerms,
    judged: LevelPeriod,
    kind: Literal["target_missed", "target_headroom"],
    emitted_at: datetime,
    credit: float | None = None,
) -> Alert:
    """A service-level alert. Of the per-clock fields it fills what has a meaning for a
    period: no incident (empty id), the highest severity measured, the period's length as the
    allowance and the part of it gone by as elapsed, its end as the deadline, the objective as
    the threshold."""
    level = judged.level
    length_s = (judged.end - judged.start).total_seconds()
    gone_s = min(max((emitted_at - judged.start).total_seconds(), 0.0), length_s)
    severities = level.severities or SEVERITIES
    return Alert(
        alert_id=alert_id(
            terms.contract_id,
            level.id,
            judged.label,
            kind,
            judged.headroom if kind == "target_headroom" else None,
        ),
        kind=kind,
        incident_id="",
        contract_id=terms.contract_id,
        customer_id=terms.customer_id,
        metric=level.metric,
        severity=severities[0],  # type: ignore[arg-type]
        threshold=level.objective_percent / 100,
        allowance_s=length_s,
        elapsed_s=gone_s,
        deadline=judged.end,
        clause_id=level.clause_id,
        clause_title=level.clause_title,
        emitted_at=emitted_at,
        service_level=level.id,
        severities=tuple(severities),  # type: ignore[arg-type]
        period=judged.label,
        numerator=judged.counts.met,
        denominator=judged.counts.settled,
        headroom=judged.headroom,
        credit_percent=credit,
    )


def describe(judged: LevelPeriod) -> str:
    """One line a person reads: '95 % of P1/P2 first responses within target (2026-03): ...'."""
    level = judged.level
    which = "/".join(level.severities) + " " if level.severities else ""
    figure = "n/a" if judged.rate is None else f"{100 * judged.rate:.2f} %"
    head = (
        f"{level.objective_percent:g} % of {which}{level.metric.replace('_', ' ')}s within "
        f"target ({judged.label}): {figure} ({judged.counts.met}/{judged.counts.settled})"
    )
    if judged.status != "in_progress":
        return f"{head}, {judged.status}"
    if judged.headroom < 0:
        return f"{head}, below target so far"
    more = judged.headroom + 1
    return f"{head}; {more} more breach{'es' if more != 1 else ''} and the target is missed"


def levels_of(record: ContractRecord) -> Iterable[ServiceLevel]:
    """Every service level of any version of a contract (to know whether to watch it)."""
    return (level for v in record.versions for level in v.service_levels)
