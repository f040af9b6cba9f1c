"""Adherence rollups (pure): hourly buckets of settled clocks, and the queries leaders read.

A bucket holds the clocks of one (contract, metric, severity, category) that settled in one real
hour of the contract's zone: met and breached counts, the elapsed-time histogram, its count and
sum. A clock belongs to the hour of its `settled_at` (met: its stop instant; breached: its breach
instant). Days and quarters are sums of hours, grouped in the contract's zone.

Exactly once on an at-least-once log: a bucket remembers the outcome ids it counted (with what it
added) and the ids withdrawn from it. A repeated outcome changes nothing; a withdrawal record
(an Outcome with `withdraws=<id>`, its other fields mirroring the withdrawn outcome, so it lands in
the same bucket) subtracts exactly what that id added, once; a withdrawal that arrives before its
outcome leaves a tombstone so the late outcome is not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

import orjson

from sla_stream.analytics import histogram
from sla_stream.core.models import Outcome
from sla_stream.core.periods import (
    Step,
    next_period_start,
    period_label,
    period_start,
    period_starts,
    zone_of,
)
from sla_stream.core.terms import ContractRecord

SEP = "\x1f"  # unit separator: cannot clash with ids that people type
NO_CATEGORY = ""
HOUR_FORMAT = "%Y-%m-%dT%H:%MZ"  # minutes kept: half-hour zones start their hours at :30 UTC


def contract_zone(record: ContractRecord | None, opened_at: datetime | None = None) -> str:
    """The zone periods are taken in: the version in force at `opened_at`, else the latest."""
    if record is None or not record.versions:
        return "UTC"
    if opened_at is not None:
        pinned = record.for_incident_opened_at(opened_at)
        if pinned is not None:
            return pinned.timezone
    return max(record.versions, key=lambda v: v.version).timezone


@dataclass(frozen=True, order=True)
class BucketKey:
    """Where an outcome is counted; `encode()` sorts by contract, metric, then hour."""

    contract_id: str
    metric: str
    hour_start: datetime  # UTC instant of the contract-zone hour
    severity: str
    category: str

    @classmethod
    def of(cls, outcome: Outcome, tz: str) -> BucketKey:
        return cls(
            outcome.contract_id,
            outcome.metric,
            period_start(outcome.settled_at, tz, "hour"),
            outcome.severity,
            outcome.category or NO_CATEGORY,
        )

    def encode(self) -> str:
        hour = self.hour_start.astimezone(UTC).strftime(HOUR_FORMAT)
        return SEP.join((self.contract_id, self.metric, hour, self.severity, self.category))

    @classmethod
    def decode(cls, text: str) -> BucketKey:
        contract_id, metric, hour, severity, category = text.split(SEP)
        return cls(contract_id, metric, _hour(hour), severity, category)


def key_prefix(contract_id: str, metric: str | None = None) -> str:
    """Prefix of every encoded key of a contract (and metric): one contiguous key range."""
    return SEP.join((contract_id, metric)) + SEP if metric else contract_id + SEP


def hour_key_text(hour_start: datetime) -> str:
    return hour_start.astimezone(UTC).strftime(HOUR_FORMAT)


@lru_cache(maxsize=65536)
def _hour(text: str) -> datetime:
    # Cached: every bucket of an hour shares its text, and strptime dominated decoding.
    return datetime.fromisoformat(text)


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def mark_seen(outcome: Outcome, seen: Seen) -> None:
    """Record in `seen` what `outcome` leaves behind: a counted outcome's verdict and elapsed
    microseconds (what its withdrawal takes back), or None for a withdrawn one."""
    if outcome.withdraws is None:
        seen[outcome.outcome_id] = (outcome.met, _micros(outcome.elapsed_s))
    else:
        seen[outcome.withdraws] = None


# What a rollup remembers of each outcome id, kept beside the buckets rather than inside them
# (a bucket that listed its ids grew with every outcome of its hour: quadratic cost, and past
# about 20k outcomes a record over Kafka's 1 MB limit): (met, elapsed µs) for a counted
# outcome, None for a withdrawn one (also a tombstone when the withdrawal arrives first).
class Seen(Protocol):
    """A dict does; the worker's is a view on its bucket table (`stream/rollups.py`)."""

    def __contains__(self, oid: object) -> bool: ...
    def __getitem__(self, oid: str) -> tuple[bool, int] | None: ...
    def __setitem__(self, oid: str, value: tuple[bool, int] | None) -> None: ...
    def get(self, oid: str) -> tuple[bool, int] | None: ...


@dataclass
class Bucket:
    """Counts of one key: met, breached, summed elapsed and a histogram of elapsed."""

    key: BucketKey
    met: int = 0
    breached: int = 0
    elapsed_us: int = 0
    hist: dict[int, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return self.met + self.breached

    def apply(self, outcome: Outcome, seen: Seen) -> bool:
        """Count an outcome or undo a withdrawn one; False when it changes nothing (a repeat).

        `seen` remembers outcome ids across buckets (re-sent outboxes and redeliveries repeat
        them); this records into it."""
        if outcome.withdraws is not None:
            oid = outcome.withdraws
            if oid in seen and seen[oid] is None:
                return False
            added = seen.get(oid)
            if added is not None:
                self._add(added[0], added[1], -1)
        elif outcome.outcome_id in seen:
            return False
        else:
            self._add(outcome.met, _micros(outcome.elapsed_s), +1)
        mark_seen(outcome, seen)
        return True

    def _add(self, met: bool, us: int, sign: int) -> None:
        if met:
            self.met += sign
        else:
            self.breached += sign
        self.elapsed_us += sign * us
        histogram.merge(self.hist, {histogram.bin_of(us / 1_000_000): 1}, sign)

    def to_bytes(self) -> bytes:
        k = self.key
        return orjson.dumps(
            {
                "k": [k.contract_id, k.metric, hour_key_text(k.hour_start), k.severity, k.category],
                "met": self.met,
                "br": self.breached,
                "us": self.elapsed_us,
                "h": {str(i): c for i, c in self.hist.items()},
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Bucket:
        d: dict[str, Any] = orjson.loads(raw)
        contract_id, metric, hour, severity, category = d["k"]
        return cls(
            BucketKey(contract_id, metric, _hour(hour), severity, category),
            met=d["met"],
            breached=d["br"],
            elapsed_us=d["us"],
            hist={int(i): c for i, c in d["h"].items()},
        )


def encode_seen(value: tuple[bool, int] | None) -> bytes:
    return b"w" if value is None else (b"m" if value[0] else b"b") + str(value[1]).encode()


def decode_seen(raw: bytes) -> tuple[bool, int] | None:
    return None if raw == b"w" else (raw[:1] == b"m", int(raw[1:]))


class Rollup:
    """Buckets in memory: the offline twin of the worker's table, fed by the same `apply`."""

    def __init__(self) -> None:
        self.buckets: dict[BucketKey, Bucket] = {}
        self.seen: dict[str, tuple[bool, int] | None] = {}

    def apply(self, outcome: Outcome, tz: str) -> Bucket | None:
        """Apply one outcome in the zone `tz`; the changed bucket, or None for a repeat."""
        key = BucketKey.of(outcome, tz)
        bucket = self.buckets.get(key) or Bucket(key)
        if not bucket.apply(outcome, self.seen):
            return None
        self.buckets[key] = bucket
        return bucket

    def of_contract(self, contract_id: str) -> Iterator[Bucket]:
        return (b for k, b in self.buckets.items() if k.contract_id == contract_id)

    def contracts(self) -> list[str]:
        return sorted({k.contract_id for k in self.buckets})


def totals(buckets: Iterable[Bucket]) -> dict[tuple[str, str], tuple[int, int]]:
    """(contract, metric) -> (met, breached) over the buckets: what the adherence gauge shows."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for b in buckets:
        met, breached = out.get((b.key.contract_id, b.key.metric), (0, 0))
        out[(b.key.contract_id, b.key.metric)] = (met + b.met, breached + b.breached)
    return out


def ratio(met: int, breached: int) -> float | None:
    """met / (met + breached), or None when nothing settled."""
    total = met + breached
    return met / total if total else None


METRIC_TITLES = {
    "first_response": "first response time adherence",
    "resolution": "resolution within SLA window",
    "update": "customer updates on time (per cycle)",
}


@dataclass(frozen=True)
class Query:
    """One contract over the periods of `step` that intersect [from_at, to_at), in zone `tz`.

    Periods are whole: a range that starts mid-day with step=day starts at that local midnight.
    Breaches per quarter always cover the whole calendar quarters the range touches.
    """

    contract_id: str
    tz: str
    from_at: datetime
    to_at: datetime
    step: Step = "day"
    metric: str | None = None

    def metrics(self) -> tuple[str, ...]:
        return (self.metric,) if self.metric else tuple(METRIC_TITLES)


@dataclass
class _Cell:
    met: int = 0
    breached: int = 0
    elapsed_us: int = 0
    hist: dict[int, int] = field(default_factory=dict)

    def add(self, b: Bucket) -> None:
        self.met += b.met
        self.breached += b.breached
        self.elapsed_us += b.elapsed_us
        histogram.merge(self.hist, b.hist)


def rate_json(met: int, breached: int) -> dict[str, Any]:
    """A rate with its numerator and denominator, as every figure shown must state them."""
    return {"rate": ratio(met, breached), "numerator": met, "denominator": met + breached}


def _trend_json(label: str, cell: _Cell) -> dict[str, Any]:
    n = cell.met + cell.breached

    def q(x: float) -> float | None:
        v = histogram.quantile(cell.hist, x)
        return None if v is None else round(v, 3)

    return {
        "period": label,
        "count": n,
        "median_s": q(0.5),
        "p90_s": q(0.9),
        "mean_s": round(cell.elapsed_us / n / 1_000_000, 3) if n else None,
    }


def report(buckets: Iterable[Bucket], query: Query) -> dict[str, Any]:
    """Adherence per period and metric, breaches per quarter, response-time trends per category."""
    tz, step = query.tz, query.step
    starts = period_starts(query.from_at, query.to_at, tz, step)
    quarters = period_starts(query.from_at, query.to_at, tz, "quarter")
    if not starts:
        raise ValueError("empty range: 'to' must be after 'from'")
    end = next_period_start(starts[-1], tz, step)
    q_end = next_period_start(quarters[-1], tz, "quarter")
    wanted = set(query.metrics())
    periods: dict[tuple[str, datetime], _Cell] = {}
    trends: dict[tuple[str, str, datetime], _Cell] = {}
    severities: dict[tuple[str, str], _Cell] = {}  # (metric, severity) over the whole range
    breaches: dict[tuple[datetime, str], int] = {}
    period_of: dict[tuple[datetime, str], datetime] = {}  # hour -> period start, per step

    def of(hour: datetime, s: Step) -> datetime:
        found = period_of.get((hour, s))
        if found is None:
            found = period_of[(hour, s)] = period_start(hour, tz, s)
        return found

    for b in buckets:
        k = b.key
        if k.contract_id != query.contract_id or k.metric not in wanted:
            continue
        if not quarters[0] <= k.hour_start < q_end:
            continue
        if b.breached:
            qk = (of(k.hour_start, "quarter"), k.metric)
            breaches[qk] = breaches.get(qk, 0) + b.breached
        if starts[0] <= k.hour_start < end and b.count:
            p = of(k.hour_start, step)
            periods.setdefault((k.metric, p), _Cell()).add(b)
            trends.setdefault((k.metric, k.category, p), _Cell()).add(b)
            severities.setdefault((k.metric, k.severity), _Cell()).add(b)
    return {
        "contract": query.contract_id,
        "timezone": tz,
        "step": step,
        "from": starts[0].astimezone(zone_of(tz)).isoformat(),
        "to": end.astimezone(zone_of(tz)).isoformat(),
        "metrics": {m: _metric_json(m, starts, periods, tz, step, end) for m in query.metrics()},
        "breaches_per_quarter": _breaches_json(breaches, quarters, tz, query.metrics()),
        "trends": {m: _trends_json(m, starts, trends, tz, step) for m in query.metrics()},
        "by_severity": {m: _severity_json(severities, m) for m in query.metrics()},
    }


def _severity_json(severities: dict[tuple[str, str], _Cell], metric: str) -> dict[str, Any]:
    return {
        sev: rate_json(c.met, c.breached)
        for (m, sev), c in sorted(severities.items())
        if m == metric
    }


def _breaches_json(
    breaches: dict[tuple[datetime, str], int], quarters: list[datetime], tz: str, metrics: Any
) -> list[dict[str, Any]]:
    return [
        {
            "quarter": period_label(qs, tz, "quarter"),
            "breaches": sum(breaches.get((qs, m), 0) for m in metrics),
            "by_metric": {m: breaches.get((qs, m), 0) for m in metrics},
        }
        for qs in quarters
    ]


def _metric_json(
    metric: str,
    starts: list[datetime],
    cells: dict[tuple[str, datetime], _Cell],
    tz: str,
    step: Step,
    end: datetime,
) -> dict[str, Any]:
    rows = []
    total = _Cell()
    for i, s in enumerate(starts):
        cell = cells.get((metric, s), _Cell())
        total.met += cell.met
        total.breached += cell.breached
        stop = starts[i + 1] if i + 1 < len(starts) else end
        rows.append(
            {
                "period": period_label(s, tz, step),
                "start": s.astimezone(zone_of(tz)).isoformat(),
                "end": stop.astimezone(zone_of(tz)).isoformat(),
                **rate_json(cell.met, cell.breached),
            }
        )
    return {
        "title": METRIC_TITLES.get(metric, metric),
        "total": rate_json(total.met, total.breached),
        "periods": rows,
    }


def _trends_json(
    metric: str,
    starts: list[datetime],
    cells: dict[tuple[str, str, datetime], _Cell],
    tz: str,
    step: Step,
) -> dict[str, list[dict[str, Any]]]:
    """Per category, the periods that have settled clocks (empty periods are left out)."""
    categories = sorted({c for m, c, _ in cells if m == metric})
    return {
        category or "(none)": [
            _trend_json(period_label(s, tz, step), cells[(metric, category, s)])
            for s in starts
            if (metric, category, s) in cells
        ]
        for category in categories
    }
