"""Service levels over the adherence rollups: counts from buckets, JSON for reports, and the
watch that turns a rollup's changes into `target_missed` and `target_headroom` alerts.

The judging is `core/service_levels.py`'s; this module only feeds it bucket counts. The watch
is what both the worker's rollup agent and the offline replay call after each outcome they
count, so the two give the same alerts:

- after an outcome changes a period's counts, a service level covering its metric and severity
  whose headroom that change brought down to 1 or 0 gives `target_headroom`, emitted at the
  outcome's `settled_at`;
- the first outcome of a contract settled in a later period than the watch has seen, or the
  rollup's time passing `CLOSE_GRACE` after a period's end (the latest `settled_at` counted on
  the rollup's partition, of any contract: event time, so a backfill of old history closes its
  periods as it goes), closes the periods before: each missed service level of those gives
  `target_missed`, emitted at the period's end. A count landing in a closed period judges it
  again (a late event can make it missed). A watch that starts afresh (a restarted worker)
  closes only the period just before, and sends again what it may have sent (the ids are the
  same, so notifiers drop them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from itertools import product
from typing import Any

from sla_stream.analytics.adherence import Bucket, contract_zone
from sla_stream.core import service_levels as sl
from sla_stream.core.models import SEVERITIES, Alert, Outcome
from sla_stream.core.periods import next_period_start, period_start
from sla_stream.core.terms import ContractRecord

_TICK = timedelta(microseconds=1)
# A period is closed by time this long after its end in the rollup's time, so that clocks
# settled just before its end and counted a little out of order are in it first.
CLOSE_GRACE = timedelta(hours=1)


def counts_from(buckets: Iterable[Bucket]) -> sl.CountsOf:
    """A `CountsOf` over buckets of one contract (any metrics, severities and hours)."""
    index: dict[tuple[str, str], list[tuple[datetime, int, int]]] = {}
    for b in buckets:
        if b.count:
            index.setdefault((b.key.metric, b.key.severity), []).append(
                (b.key.hour_start, b.met, b.breached)
            )

    def counts_of(
        metric: str, severities: tuple[str, ...], start: datetime, end: datetime
    ) -> sl.Counts:
        met = breached = 0
        for (m, severity), rows in index.items():
            if m != metric or (severities and severity not in severities):
                continue
            for hour, n_met, n_breached in rows:
                if start <= hour < end:
                    met += n_met
                    breached += n_breached
        return sl.Counts(met, breached)

    return counts_of


def judgement_json(judgement: sl.Judgement) -> dict[str, Any]:
    """Service levels and credits as the adherence API, the report and the dashboard show them."""
    tz = judgement.timezone
    return {
        "periods": [
            {
                "service_level": j.level.id,
                "metric": j.level.metric,
                "severities": list(j.level.severities),
                "objective_percent": j.level.objective_percent,
                "period": j.level.period,
                "label": j.label,
                "start": j.start.isoformat(),
                "end": j.end.isoformat(),
                "rate": j.rate,
                "numerator": j.counts.met,
                "denominator": j.counts.settled,
                "status": j.status,
                "headroom": j.headroom if j.status == "in_progress" else None,
                "clause_id": j.level.clause_id,
                "clause_title": j.level.clause_title,
                "text": sl.describe(j),
            }
            for j in judgement.levels
        ],
        "credits": [
            {
                "period": c.period,
                "label": c.label,
                "misses": c.misses,
                "percent": c.percent,
                "amount": c.amount,
                "currency": c.currency,
                "fee": sl.period_fee(c.credit, c.period),
                "clause_id": c.credit.clause_id,
                "clause_title": c.credit.clause_title,
            }
            for c in judgement.credits
        ],
        "credits_per_quarter": sl.quarter_credits(judgement, tz),
    }


def service_levels_json(
    record: ContractRecord | None,
    tz: str,
    buckets: Iterable[Bucket],
    from_at: datetime,
    to_at: datetime,
    now: datetime,
) -> dict[str, Any] | None:
    """The service levels of the quarters [from_at, to_at) touches, or None if it has none."""
    if record is None or not has_levels(record):
        return None
    lo = period_start(from_at, tz, "quarter")
    hi = next_period_start(period_start(to_at - _TICK, tz, "quarter"), tz, "quarter")
    judgement = sl.evaluate(record, tz, lo, hi, now, counts_from(buckets))
    return judgement_json(judgement)


Loader = Callable[[str, str, str, datetime, datetime], sl.Counts]


class PeriodCounts:
    """Counts per (contract, metric, severity, month or quarter), kept up to date by deltas.

    With a `loader` (the worker's: a range read of its bucket table), a period not held yet is
    read once when first asked for and then follows the deltas; without one (the replay's, fed
    every outcome from the start), a period not held has nothing settled."""

    def __init__(self, loader: Loader | None = None) -> None:
        self.loader = loader
        self.cache: dict[tuple[str, str, str, datetime, datetime], sl.Counts] = {}

    def record(self, outcome: Outcome, tz: str, delta: sl.Counts) -> None:
        """Add what an outcome changed (after its bucket was written)."""
        for period in ("month", "quarter"):
            start, end = bounds(outcome.settled_at, tz, period)
            key = (outcome.contract_id, outcome.metric, outcome.severity, start, end)
            held = self.cache.get(key)
            if held is not None:
                self.cache[key] = sl.Counts(held.met + delta.met, held.breached + delta.breached)
            elif self.loader is None:
                self.cache[key] = delta
            # else: read (with this outcome in it) when first asked for

    def clear(self) -> None:
        self.cache.clear()

    def of(self, contract_id: str) -> sl.CountsOf:
        def counts_of(
            metric: str, severities: tuple[str, ...], start: datetime, end: datetime
        ) -> sl.Counts:
            met = breached = 0
            for severity in severities or SEVERITIES:
                key = (contract_id, metric, severity, start, end)
                held = self.cache.get(key)
                if held is None:
                    held = sl.Counts(0, 0)
                    if self.loader is not None:
                        held = self.cache[key] = self.loader(
                            contract_id, metric, severity, start, end
                        )
                met += held.met
                breached += held.breached
            return sl.Counts(met, breached)

        return counts_of


_BOUNDS: dict[tuple[str, str], tuple[datetime, datetime]] = {}


def bounds(at: datetime, tz: str, period: str) -> tuple[datetime, datetime]:
    """The start and end of the month or quarter holding `at` (the last one asked is kept per
    zone: outcomes come roughly in time order, and computing periods dominated the watch)."""
    held = _BOUNDS.get((tz, period))
    if held is not None and held[0] <= at < held[1]:
        return held
    start = period_start(at, tz, period)  # type: ignore[arg-type]
    found = (start, next_period_start(start, tz, period))  # type: ignore[arg-type]
    _BOUNDS[(tz, period)] = found
    return found


def has_levels(record: ContractRecord | None) -> bool:
    return record is not None and any(v.service_levels for v in record.versions)


class ServiceLevelWatch:
    """Alerts from a rollup's changes and from time passing, for contracts with service levels.

    `latest` holds, per contract and period length, the start of the period the watch counts
    as current: every period before it has been judged (closed)."""

    def __init__(self) -> None:
        self.sent: set[str] = set()
        self.latest: dict[tuple[str, str], datetime] = {}  # (contract, month|quarter) -> start
        self.latest_end: dict[tuple[str, str], datetime] = {}  # ... and that period's end

    def after_outcome(
        self,
        record: ContractRecord | None,
        tz: str,
        outcome: Outcome,
        delta: sl.Counts,
        counts_of: sl.CountsOf,
    ) -> list[Alert]:
        """What an outcome counted by the rollup (changing its bucket by `delta`) raises;
        `counts_of` reads the contract's counts after it. Repeats of sent ids are left out."""
        if record is None or not has_levels(record):
            return []
        alerts = self._headroom(record, tz, outcome, delta, counts_of)
        alerts += self._rejudged(record, tz, outcome.settled_at, counts_of)
        alerts += self._closed(record, tz, outcome.settled_at, counts_of)
        return self._fresh(alerts)

    def at_time(
        self, record: ContractRecord | None, tz: str, now: datetime, counts_of: sl.CountsOf
    ) -> list[Alert]:
        """Close the periods that ended `CLOSE_GRACE` or more before `now`, the rollup's time
        (the latest `settled_at` it counted, of any contract): a contract whose clocks went
        quiet has its missed periods alerted as the others' clocks move on."""
        if record is None or not has_levels(record):
            return []
        return self._fresh(self._closed(record, tz, now - CLOSE_GRACE, counts_of))

    def _fresh(self, alerts: list[Alert]) -> list[Alert]:
        fresh = [a for a in alerts if a.alert_id not in self.sent]
        self.sent.update(a.alert_id for a in fresh)
        return fresh

    def _headroom(
        self,
        record: ContractRecord,
        tz: str,
        outcome: Outcome,
        delta: sl.Counts,
        counts_of: sl.CountsOf,
    ) -> list[Alert]:
        out = []
        at = outcome.settled_at
        for period in ("month", "quarter"):
            start, end = bounds(at, tz, period)
            terms = sl.terms_for_period(record, start, end)
            if terms is None or start < self.latest.get((record.contract_id, period), start):
                continue  # a late count in a closed period: see `_rejudged`
            for level in terms.service_levels:
                if level.period != period or not level.covers(outcome.metric, outcome.severity):
                    continue
                after = counts_of(level.metric, level.severities, start, end)
                before = sl.Counts(after.met - delta.met, after.breached - delta.breached)
                if sl.headroom_crossed(level.objective_percent, before, after) is None:
                    continue
                judged = sl.judge(level, start, tz, after, at)
                out.append(sl.level_alert(terms, judged, "target_headroom", at))
        return out

    def _rejudged(
        self, record: ContractRecord, tz: str, at: datetime, counts_of: sl.CountsOf
    ) -> list[Alert]:
        """A count that lands in a period already closed (a late event, a re-settled clock)
        judges it again: a period it makes missed is alerted then."""
        out = []
        for period in ("month", "quarter"):
            start, end = bounds(at, tz, period)
            latest = self.latest.get((record.contract_id, period))
            if latest is not None and start < latest:
                judgement = sl.evaluate(record, tz, start, end, end, counts_of)
                out += _missed_alerts(judgement, period)
        return out

    def _closed(
        self, record: ContractRecord, tz: str, at: datetime, counts_of: sl.CountsOf
    ) -> list[Alert]:
        out = []
        for period in ("month", "quarter"):
            key = (record.contract_id, period)
            if at < self.latest_end.get(key, at):
                continue  # still inside the current period: the common case, kept cheap
            current = period_start(at, tz, period)  # type: ignore[arg-type]
            seen = self.latest.get(key)
            if seen is not None and seen >= current:
                continue
            self.latest[key] = current
            self.latest_end[key] = next_period_start(current, tz, period)  # type: ignore[arg-type]
            before = period_start(current - _TICK, tz, period)  # type: ignore[arg-type]
            first = seen if seen is not None else before
            judgement = sl.evaluate(record, tz, first, current, current, counts_of)
            out += _missed_alerts(judgement, period)
        return out


_PERIODS = ("month", "quarter")


def _missed_alerts(judgement: sl.Judgement, period: str) -> list[Alert]:
    credit_of = {(c.period, c.start): c.percent for c in judgement.credits}
    out = []
    for j in judgement.levels:
        if j.level.period != period or j.status != "missed":
            continue
        terms = judgement.terms[(period, j.start)]
        credit = credit_of.get((period, j.start)) if terms.service_credit else None
        out.append(sl.level_alert(terms, j, "target_missed", j.end, credit))
    return out


class ReplayLevels:
    """The replay's twin of the worker's rollup and watch, for contracts with service levels.

    Its time is the latest `settled_at` counted, as a rollup partition's is (the replay is one
    timeline: one partition)."""

    def __init__(self) -> None:
        self.counts = PeriodCounts()
        self.watch = ServiceLevelWatch()
        self.seen: dict[str, sl.Counts | None] = {}  # outcome id -> what it added (None: gone)
        self.contracts: dict[str, ContractRecord] = {}  # those with service levels, as counted
        self.time: datetime | None = None
        # No period of `contracts` closes before this instant (None: sweep). Period ends only
        # move on, so a stale value only costs a sweep that finds nothing.
        self.quiet_until: datetime | None = None
        self.swept = 0  # how many contracts the last sweep saw (a new one is swept at once)

    def after_outcome(self, outcome: Outcome, record: ContractRecord | None) -> list[Alert]:
        self.time = outcome.settled_at if self.time is None else max(self.time, outcome.settled_at)
        alerts: list[Alert] = []
        if record is not None and has_levels(record):
            delta = self._delta(outcome)
            if delta is not None:
                tz = contract_zone(record)
                self.contracts[record.contract_id] = record
                self.counts.record(outcome, tz, delta)
                counts_of = self.counts.of(outcome.contract_id)
                alerts += self.watch.after_outcome(record, tz, outcome, delta, counts_of)
        quiet = self.quiet_until is not None and self.time - CLOSE_GRACE < self.quiet_until
        if quiet and self.swept == len(self.contracts):
            return alerts  # a sweep now would close nothing: skipped (it ran per outcome)
        for contract_id, known in sorted(self.contracts.items()):
            counts_of = self.counts.of(contract_id)
            alerts += self.watch.at_time(known, contract_zone(known), self.time, counts_of)
        ends = [self.watch.latest_end.get(key) for key in product(self.contracts, _PERIODS)]
        self.quiet_until = None if not ends or None in ends else min(ends)  # type: ignore[type-var]
        self.swept = len(self.contracts)
        return alerts

    def _delta(self, outcome: Outcome) -> sl.Counts | None:
        """What an outcome changes, as the rollup's `Bucket.apply` counts it (None: nothing)."""
        if outcome.withdraws is not None:
            if outcome.withdraws in self.seen and self.seen[outcome.withdraws] is None:
                return None
            added = self.seen.get(outcome.withdraws)
            self.seen[outcome.withdraws] = None
            return None if added is None else sl.Counts(-added.met, -added.breached)
        if outcome.outcome_id in self.seen:
            return None
        added = sl.Counts(1, 0) if outcome.met else sl.Counts(0, 1)
        self.seen[outcome.outcome_id] = added
        return added
