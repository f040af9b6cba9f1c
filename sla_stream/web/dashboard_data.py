"""What the dashboard shows, computed from per-contract adherence reports (pure functions).

Each contract's figures come from `analytics.adherence.report`, run on the worker that owns the
contract's buckets (`series`, behind a `table_route`d endpoint), with the response-time
histograms beside it so that trends over several contracts are true quantiles of the merged
distribution, not averages of medians. Everything here combines those reports:

- portfolio adherence per period = sum of met / sum of settled over the contracts shown, with
  numerator and denominator kept (DESIGN "Adherence arithmetic"). Each contract's periods are
  taken in its own zone, so "2026-04-01" is that local day for every contract;
- breaches per calendar quarter per contract;
- median and p90 per category and period from the merged histograms: the charts draw the
  categories picked (`category=`, repeatable), else the `TOP_CATEGORIES` largest, and "all
  others" as one more series (quantiles of the rest's merged histograms); the table beneath
  lists every category over the whole range.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sla_stream.analytics import histogram
from sla_stream.analytics.adherence import Bucket, Query, contract_zone, rate_json, report
from sla_stream.core.models import METRICS, SEVERITIES
from sla_stream.core.periods import (
    STEPS,
    next_period_start,
    period_label,
    period_start,
    period_starts,
)
from sla_stream.core.terms import ContractRecord, ContractTerms
from sla_stream.web.adherence import BadRequest, TooManyPeriods, parse_query, read_bound
from sla_stream.web.page_budget import MAX_CHART_PERIODS, OTHERS, STEP_WORDS, TOP_CATEGORIES

NO_CATEGORY_LABEL = "(none)"  # how the stored empty category (analytics NO_CATEGORY) is shown
DEFAULT_DAYS = 90
# The category table's sort keys; "-" before one sorts descending.
SORT_KEYS = ("category", "count", "median", "p90")
DEFAULT_SORT = "-count"


class BadFilter(ValueError):
    """A filter value the page cannot use; the message names it."""


@dataclass(frozen=True)
class Filters:
    """The dashboard's filters, as given in the query string (empty means all)."""

    contract: str = ""
    tier: str = ""
    severity: str = ""
    step: str = "day"
    from_: str = ""  # empty: not given (the dashboard then finds the latest settled clocks)
    to: str = ""
    categories: tuple[str, ...] = ()  # the categories to chart; none: the largest
    sort: str = DEFAULT_SORT
    # The range was found (the latest settled clocks), not given: links leave it out, so a
    # drill-down finds its own contract's latest data.
    found: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Filters:
        """Validate the filters; `from` and `to` stay empty when not given."""
        severity = params.get("severity", "")
        if severity and severity not in SEVERITIES:
            raise BadFilter(f"'severity' must be one of {', '.join(SEVERITIES)}")
        step = params.get("step") or "day"
        if step not in STEPS:
            raise BadFilter(f"'step' must be one of {', '.join(STEPS)}")
        sort = params.get("sort") or DEFAULT_SORT
        if sort.removeprefix("-") not in SORT_KEYS:
            raise BadFilter(f"'sort' must be one of {', '.join(SORT_KEYS)} (or -key)")
        filters = cls(
            contract=params.get("contract", ""),
            tier=params.get("tier", ""),
            severity=severity,
            step=step,
            from_=params.get("from", ""),
            to=params.get("to", ""),
            categories=tuple(dict.fromkeys(c for c in _all(params, "category") if c)),
            sort=sort,
        )
        # Each contract reads the bounds in its own zone (`check_for`); their form is the same
        # in every zone, so a bound no contract could read is refused here.
        for name, text in (("from", filters.from_), ("to", filters.to)):
            try:
                if text:
                    read_bound(name, text, "UTC")
            except BadRequest as exc:
                raise BadFilter(str(exc)) from exc
        return filters

    def with_range(self, today: date) -> Filters:
        """A missing bound filled in: `from` `DEFAULT_DAYS` days back, `to` after today."""
        return replace(
            self,
            from_=self.from_ or (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
            to=self.to or (today + timedelta(days=1)).isoformat(),
        )

    def check_for(self, records: Iterable[ContractRecord]) -> tuple[Filters, str | None]:
        """Refuse a range some of `records` cannot report on (reversed or past the calendar),
        as its owner's `parse_query` would, checked once per zone (the range is); and fit it to
        a chart: at a coarser step when it has more than `MAX_CHART_PERIODS` periods. The
        filters to use, and what the reader is told about the step (None: as asked)."""
        records = list(records)
        fitted, count = self, 0
        for _ in STEPS:
            try:
                fitted._check_zones(records)
            except TooManyPeriods as exc:
                if exc.fits is None:
                    raise BadFilter(str(exc)) from exc
                fitted, count = replace(fitted, step=exc.fits), exc.count
                continue
            if fitted.step == self.step:
                return fitted, None
            return fitted, (
                f"This range has more {STEP_WORDS[self.step]} periods than the "
                f"{MAX_CHART_PERIODS} a chart shows: shown by {fitted.step} ({count} periods)."
            )
        raise AssertionError("every step was tried")  # pragma: no cover

    def _check_zones(self, records: list[ContractRecord]) -> None:
        zones: set[str] = set()
        for record in records:
            zone = contract_zone(record)
            if zone in zones:
                continue
            zones.add(zone)
            try:
                parse_query(
                    self.params(contract=record.contract_id), record, budget=MAX_CHART_PERIODS
                )
            except TooManyPeriods:
                raise
            except BadRequest as exc:
                raise BadFilter(f"{exc} (contract {record.contract_id!r})") from exc

    def params(self, **changes: str) -> dict[str, str]:
        """Query parameters of these filters for an owner (with `changes`), empty ones left
        out; the categories and the sort are the page's own."""
        values = {
            "contract": self.contract,
            "tier": self.tier,
            "severity": self.severity,
            "step": self.step,
            "from": self.from_,
            "to": self.to,
            **changes,
        }
        return {k: v for k, v in values.items() if v}

    def link(self, **changes: Any) -> list[tuple[str, str]]:
        """The page's query (with `changes`; `categories` a sequence) as (name, value) pairs."""
        categories = changes.pop("categories", self.categories)
        sort = changes.pop("sort", self.sort)
        if self.found:
            changes = {"from": "", "to": ""} | changes
        pairs = list(self.params(**changes).items())
        pairs += [("category", c) for c in categories]
        if sort != DEFAULT_SORT:
            pairs.append(("sort", sort))
        return pairs


def _all(params: Mapping[str, str], name: str) -> list[str]:
    """Every value of a repeated parameter (aiohttp's multidict, or a plain mapping)."""
    getall = getattr(params, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    value: str | Sequence[str] = params.get(name, "")
    return [value] if isinstance(value, str) else list(value)


def current_terms(record: ContractRecord, now: datetime) -> ContractTerms:
    """The version in force now, else the latest: what a contract's tier and customer are."""
    return record.for_incident_opened_at(now) or max(record.versions, key=lambda v: v.version)


def select_contracts(
    records: Iterable[ContractRecord], filters: Filters, now: datetime
) -> list[ContractRecord]:
    """The contracts the filters keep, by id."""
    kept = []
    for record in records:
        if filters.contract and record.contract_id != filters.contract:
            continue
        if filters.tier and current_terms(record, now).tier != filters.tier:
            continue
        kept.append(record)
    return sorted(kept, key=lambda r: r.contract_id)


# -- owner side: one contract's report plus its histograms -------------------------------------


def series(buckets: Iterable[Bucket], query: Query, severity: str | None) -> dict[str, Any]:
    """`report` over the buckets of one severity (or all), with per-period histograms."""
    kept = [b for b in buckets if severity is None or b.key.severity == severity]
    out = report(kept, query)
    tz, step = query.tz, query.step
    starts = period_starts(query.from_at, query.to_at, tz, step)
    first, end = starts[0], next_period_start(starts[-1], tz, step)
    hists: dict[str, dict[str, dict[str, dict[int, int]]]] = {m: {} for m in query.metrics()}
    for b in kept:
        k = b.key
        if k.metric not in hists or not b.count or not first <= k.hour_start < end:
            continue
        label = period_label(period_start(k.hour_start, tz, step), tz, step)
        cell = hists[k.metric].setdefault(k.category or NO_CATEGORY_LABEL, {}).setdefault(label, {})
        histogram.merge(cell, b.hist)
    out["histograms"] = {
        m: {c: {p: {str(i): n for i, n in h.items()} for p, h in cats[c].items()} for c in cats}
        for m, cats in hists.items()
    }
    out["severity"] = severity
    del out["trends"]  # per-category quantiles come from the histograms, merged over contracts
    return out


# -- dashboard side: combining contracts ---------------------------------------------------------


def _period_key(row: Mapping[str, Any], step: str) -> tuple[Any, str]:
    # Hours are labelled with their own offset: order them by instant. Days and quarters sort
    # by their labels, which every zone shares.
    if step == "hour":
        return (datetime.fromisoformat(row["start"]).astimezone(UTC), row["period"])
    return (row["period"], row["period"])


def portfolio(reports: Iterable[Mapping[str, Any]], step: str) -> dict[str, Any]:
    """Adherence per metric and period over the contracts, with numerators and denominators."""
    cells: dict[str, dict[str, list[int]]] = {m: {} for m in METRICS}
    order: dict[str, Any] = {}
    totals = {m: [0, 0] for m in METRICS}
    for rep in reports:
        for metric, data in rep["metrics"].items():
            totals[metric][0] += data["total"]["numerator"]
            totals[metric][1] += data["total"]["denominator"]
            for row in data["periods"]:
                key, label = _period_key(row, step)
                order.setdefault(label, key)
                cell = cells[metric].setdefault(label, [0, 0])
                cell[0] += row["numerator"]
                cell[1] += row["denominator"]
    labels = sorted(order, key=lambda label: order[label])
    return {
        "periods": labels,
        "metrics": {
            m: {
                "total": _rate(*totals[m]),
                "periods": [
                    _rate(*cells[m].get(label, [0, 0])) | {"period": label} for label in labels
                ],
            }
            for m in METRICS
        },
    }


def _rate(met: int, settled: int) -> dict[str, Any]:
    return rate_json(met, settled - met)


def breaches_by_quarter(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Breached clocks per contract and calendar quarter (the contract's zone), and totals."""
    quarters: set[str] = set()
    rows: dict[str, dict[str, int]] = {}
    for rep in reports:
        per = rows.setdefault(rep["contract"], {})
        for q in rep["breaches_per_quarter"]:
            quarters.add(q["quarter"])
            per[q["quarter"]] = per.get(q["quarter"], 0) + q["breaches"]
    ordered = sorted(quarters)
    return {
        "quarters": ordered,
        "contracts": {c: [per.get(q, 0) for q in ordered] for c, per in sorted(rows.items())},
        "totals": [sum(per.get(q, 0) for per in rows.values()) for q in ordered],
    }


def merge_histograms(
    reports: Iterable[Mapping[str, Any]],
) -> dict[str, dict[str, dict[str, dict[int, int]]]]:
    """metric -> category -> period -> the histogram merged over the contracts."""
    merged: dict[str, dict[str, dict[str, dict[int, int]]]] = {m: {} for m in METRICS}
    for rep in reports:
        for metric, cats in rep.get("histograms", {}).items():
            for category, per in cats.items():
                into = merged[metric].setdefault(category, {})
                for label, hist in per.items():
                    histogram.merge(
                        into.setdefault(label, {}), {int(i): n for i, n in hist.items()}
                    )
    return merged


def _whole_range(per: Mapping[str, dict[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for hist in per.values():
        histogram.merge(total, hist)
    return total


def trends(
    reports: Iterable[Mapping[str, Any]],
    periods: list[str],
    picked: Sequence[str] = (),
    top: int = TOP_CATEGORIES,
) -> dict[str, Any]:
    """Per metric, the charted categories' count, median and p90 per period: those `picked`,
    else the `top` largest over the range; the rest merged as `OTHERS` (true quantiles of
    their pooled clocks, not an average of theirs)."""
    out: dict[str, Any] = {}
    for metric, cats in merge_histograms(reports).items():
        sizes = {c: sum(_whole_range(per).values()) for c, per in cats.items()}
        if picked:
            charted = [c for c in picked if c in cats]
        else:
            charted = sorted(sorted(cats), key=lambda c: -sizes[c])[:top]
        rest: dict[str, dict[int, int]] = {}
        for category in set(cats) - set(charted):
            for label, hist in cats[category].items():
                histogram.merge(rest.setdefault(label, {}), hist)
        shown = {c: cats[c] for c in charted} | ({OTHERS: rest} if rest else {})
        out[metric] = {
            category: [_quantiles(label, per[label]) for label in periods if label in per]
            for category, per in shown.items()
        }
    return out


def category_table(reports: Iterable[Mapping[str, Any]], sort: str) -> dict[str, Any]:
    """Per metric, every category over the whole range (settled, median, p90), sorted by
    `sort` (a `SORT_KEYS` key, "-" first for descending; ties by name)."""
    key = {"category": "category", "count": "count", "median": "median_s", "p90": "p90_s"}[
        sort.removeprefix("-")
    ]
    out: dict[str, Any] = {}
    for metric, cats in merge_histograms(reports).items():
        rows = [
            {"category": c} | _quantiles("", _whole_range(per)) for c, per in sorted(cats.items())
        ]
        for row in rows:
            del row["period"]
        # Empty quantiles (None) sort last either way.
        present = [r for r in rows if r[key] is not None]
        present.sort(key=lambda r: r[key], reverse=sort.startswith("-"))
        out[metric] = present + [r for r in rows if r[key] is None]
    return out


def _quantiles(label: str, hist: dict[int, int]) -> dict[str, Any]:
    def q(x: float) -> float | None:
        v = histogram.quantile(hist, x)
        return None if v is None else round(v, 3)

    return {"period": label, "count": sum(hist.values()), "median_s": q(0.5), "p90_s": q(0.9)}


def contract_rows(
    reports: Iterable[Mapping[str, Any]], records: Mapping[str, ContractRecord], now: datetime
) -> list[dict[str, Any]]:
    """One row per contract for the drill-down list: who, tier, totals and breaches in range."""
    rows = []
    for rep in reports:
        terms = current_terms(records[rep["contract"]], now)
        rows.append(
            {
                "contract": rep["contract"],
                "customer": terms.customer_id,
                "tier": terms.tier,
                "timezone": rep["timezone"],
                **{m: rep["metrics"][m]["total"] for m in METRICS if m in rep["metrics"]},
                "breaches": sum(q["breaches"] for q in rep["breaches_per_quarter"]),
            }
        )
    return sorted(rows, key=lambda r: r["contract"])


# -- service levels: each contract's own targets, their status and the credits owed -------------


def adherence_targets(
    records: Sequence[ContractRecord], severity: str, default: float, now: datetime
) -> dict[str, float]:
    """The target line per metric: the objective of the service levels the contracts shown
    have for it (in the version in force now; with a severity filter, those covering it),
    when they all have one and it is the same; else `default` (SLA_ADHERENCE_TARGET)."""
    out = {}
    for metric in METRICS:
        found = set()
        for record in records:
            levels = [
                lv
                for lv in current_terms(record, now).service_levels
                if lv.metric == metric and (not severity or lv.covers(metric, severity))
            ]
            # The widest one when several measure the metric (all severities before some).
            levels.sort(key=lambda lv: len(lv.severities) or len(SEVERITIES) + 1, reverse=True)
            found.add(levels[0].objective_percent / 100 if levels else None)
        out[metric] = found.pop() if len(found) == 1 and None not in found else default
    return out


def service_level_rows(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Every contract's service levels per period, and its credits per quarter."""
    rows: list[dict[str, Any]] = []
    credits: list[dict[str, Any]] = []
    for rep in reports:
        levels = rep.get("service_levels") or {}
        rows += [{"contract": rep["contract"], **p} for p in levels.get("periods", [])]
        currency = next((c["currency"] for c in levels.get("credits", [])), None)
        for quarter, amount in levels.get("credits_per_quarter", {}).items():
            missed = [
                c
                for c in levels["credits"]
                if c["misses"] and c["label"][:4] == quarter[:4] and _in_quarter(c, quarter)
            ]
            credits.append(
                {
                    "contract": rep["contract"],
                    "quarter": quarter,
                    "amount": amount,
                    "currency": currency,
                    "misses": sum(c["misses"] for c in missed),
                    "periods_missed": [c["label"] for c in missed],
                }
            )
    return {"periods": rows, "credits": credits}


def _in_quarter(credit: Mapping[str, Any], quarter: str) -> bool:
    label = credit["label"]
    if "Q" in label:
        return bool(label == quarter)
    return f"{label[:4]}-Q{(int(label[5:7]) - 1) // 3 + 1}" == quarter
