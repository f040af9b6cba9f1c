"""`sla-stream report`: adherence per period, breaches per quarter and trends, as table/csv/json.

Two sources, one aggregation: a running system (each contract's report from
`GET /api/v1/adherence`, which any worker forwards to the contract's owner), or the
`outcomes.jsonl` that `sla-stream replay` writes, rolled up in memory by the same `Rollup` and
`report` the worker uses. Range bounds given as dates or quarters are read in each contract's zone.
"""

from __future__ import annotations

import csv
import io
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from sla_stream.analytics.adherence import Query, Rollup, contract_zone, report
from sla_stream.analytics.service_levels import service_levels_json
from sla_stream.core.models import Outcome
from sla_stream.core.periods import Step, parse_bound
from sla_stream.core.terms import ContractRecord

FORMATS = ("table", "csv", "json")
CSV_COLUMNS = (
    "contract",
    "timezone",
    "section",
    "metric",
    "category",
    "severity",
    "period",
    "start",
    "end",
    "rate",
    "numerator",
    "denominator",
    "count",
    "median_s",
    "p90_s",
    "mean_s",
    "service_level",
    "objective_percent",
    "status",
    "headroom",
    "misses",
    "percent",
    "amount",
    "currency",
)


class ReportError(Exception):
    """The report cannot be made; the message says why (unknown contract, bad range, no API)."""


def rollup_file(path: Path, contracts: dict[str, ContractRecord]) -> Rollup:
    """Roll up a replay's `outcomes.jsonl` (withdrawals undone, repeats ignored)."""
    rollup = Rollup()
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                outcome = Outcome.from_json(line)
            except ValueError as exc:
                raise ReportError(f"{path}:{number}: not an outcome: {exc}") from exc
            record = contracts.get(outcome.contract_id)
            if record is None:
                raise ReportError(f"{path}:{number}: contract {outcome.contract_id!r} not known")
            rollup.apply(outcome, contract_zone(record, outcome.opened_at))
    return rollup


def reports_from_replay(
    replay_dir: Path,
    contracts: dict[str, ContractRecord],
    from_text: str,
    to_text: str,
    step: Step,
    contract_ids: Iterable[str] = (),
    metric: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Each contract's report (and its service levels as of `now`, default the wall clock)."""
    now = now or datetime.now(UTC)
    path = replay_dir / "outcomes.jsonl"
    if not path.is_file():
        raise ReportError(f"{path} not found: run `sla-stream replay` with --out {replay_dir}")
    rollup = rollup_file(path, contracts)
    wanted = list(contract_ids) or rollup.contracts()
    out = []
    for contract_id in wanted:
        record = contracts.get(contract_id)
        if record is None:
            raise ReportError(f"unknown contract {contract_id!r}")
        tz = contract_zone(record)
        try:
            from_at, to_at = parse_bound(from_text, tz), parse_bound(to_text, tz)
        except (ValueError, OverflowError) as exc:  # a year past the calendar overflows
            raise ReportError(str(exc)) from exc
        if to_at <= from_at:
            raise ReportError("--to must be after --from")
        query = Query(contract_id, tz, from_at, to_at, step, metric)
        rep = report(rollup.of_contract(contract_id), query)
        levels = service_levels_json(
            record, tz, rollup.of_contract(contract_id), from_at, to_at, now
        )
        if levels is not None:
            rep["service_levels"] = levels
        out.append(rep)
    return out


def _get_json(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=30
        ) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = orjson.loads(exc.read()).get("error", exc.reason)
        except (orjson.JSONDecodeError, AttributeError):
            detail = exc.reason
        raise ReportError(f"{url}: {exc.code} {detail}") from exc
    except OSError as exc:
        raise ReportError(f"cannot reach {url}: {exc}") from exc


def reports_from_api(
    base_url: str,
    from_text: str,
    to_text: str,
    step: Step,
    contract_ids: Iterable[str] = (),
    metric: str | None = None,
    token: str | None = None,
) -> list[dict[str, Any]]:
    """Reports from a worker's adherence API; `token` is a viewer token, when it needs one."""
    base = base_url.rstrip("/")
    contracts_url = f"{base}/api/v1/adherence/contracts"
    wanted = list(contract_ids) or _get_json(contracts_url, token)["contracts"]
    out = []
    for contract_id in wanted:
        params = {"contract": contract_id, "from": from_text, "to": to_text, "step": step}
        if metric:
            params["metric"] = metric
        out.append(_get_json(f"{base}/api/v1/adherence?{urllib.parse.urlencode(params)}", token))
    return out


# -- rendering ------------------------------------------------------------------------------


def render(reports: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(reports, option=orjson.OPT_INDENT_2).decode()
    if fmt == "csv":
        return render_csv(reports)
    return "\n\n".join(render_table(r) for r in reports)


def csv_rows(rep: dict[str, Any]) -> Iterable[dict[str, Any]]:
    base = {"contract": rep["contract"], "timezone": rep["timezone"]}
    for metric, m in rep["metrics"].items():
        for p in m["periods"]:
            yield {**base, "section": "adherence", "metric": metric, **p}
    for q in rep["breaches_per_quarter"]:
        for metric, n in {"all": q["breaches"], **q["by_metric"]}.items():
            yield {
                **base,
                "section": "breaches",
                "metric": metric,
                "period": q["quarter"],
                "count": n,
            }
    for metric, categories in rep["trends"].items():
        for category, rows in categories.items():
            for row in rows:
                yield {**base, "section": "trend", "metric": metric, "category": category, **row}
    for metric, per in rep.get("by_severity", {}).items():
        for severity, r in per.items():
            yield {**base, "section": "severity", "metric": metric, "severity": severity, **r}
    levels = rep.get("service_levels") or {}
    for p in levels.get("periods", []):
        yield {
            **base,
            "section": "service_level",
            "metric": p["metric"],
            "severity": "/".join(p["severities"]),
            "period": p["label"],
            **{k: p[k] for k in ("start", "end", "rate", "numerator", "denominator")},
            **{k: p[k] for k in ("service_level", "objective_percent", "status", "headroom")},
        }
    for c in levels.get("credits", []):
        yield {
            **base,
            "section": "credit",
            "period": c["label"],
            **{k: c[k] for k in ("misses", "percent", "amount", "currency")},
        }


def render_csv(reports: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for rep in reports:
        for row in csv_rows(rep):
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue().rstrip("\n")


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.2f} %"


def duration(seconds: float | None) -> str:
    """Seconds as people read them: 45.2s, 12m 05s, 3h 07m, 2d 03h."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def _grid(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    return [
        "  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def _rate_cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    return f"{percent(r['rate'])} ({r['numerator']}/{r['denominator']})"


def render_table(rep: dict[str, Any]) -> str:
    lines = [
        f"{rep['contract']} ({rep['timezone']}) {rep['from']} .. {rep['to']}, by {rep['step']}"
    ]
    for metric, m in rep["metrics"].items():
        t = m["total"]
        lines.append(
            f"\n{m['title']} ({metric}): {percent(t['rate'])} "
            f"({t['numerator']} met / {t['denominator']} settled)"
        )
        rows = [
            (p["period"], percent(p["rate"]), f"{p['numerator']} / {p['denominator']}")
            for p in m["periods"]
        ]
        lines += _grid(("period", "rate", "met / settled"), rows)
    by_severity = rep.get("by_severity", {})
    severities = sorted({sev for per in by_severity.values() for sev in per})
    if severities:
        lines.append("\nadherence per priority (met / settled over the range)")
        rows = [
            (
                sev,
                *(_rate_cell(by_severity[m].get(sev)) for m in rep["metrics"]),
            )
            for sev in severities
        ]
        lines += _grid(("priority", *rep["metrics"]), rows)
    lines.append("\nbreaches per quarter")
    metrics = list(rep["metrics"])
    rows = [
        (q["quarter"], str(q["breaches"]), *(str(q["by_metric"][m]) for m in metrics))
        for q in rep["breaches_per_quarter"]
    ]
    lines += _grid(("quarter", "breaches", *metrics), rows)
    lines += service_levels_table(rep.get("service_levels"))
    for metric, categories in rep["trends"].items():
        lines.append(f"\nresponse-time trend, {metric} (median and p90 of business time)")
        rows = [
            (category, r["period"], str(r["count"]), duration(r["median_s"]), duration(r["p90_s"]))
            for category, trend in categories.items()
            for r in trend
        ]
        lines += _grid(("category", "period", "count", "median", "p90"), rows) if rows else ["  -"]
    return "\n".join(lines)


def _status_text(p: dict[str, Any]) -> str:
    if p["status"] != "in_progress":
        return p["status"]
    if p["headroom"] < 0:
        return "in progress, below target so far"
    more = p["headroom"] + 1
    return f"in progress: {more} more breach{'es' if more != 1 else ''} and it is missed"


def service_levels_table(levels: dict[str, Any] | None) -> list[str]:
    """Service levels per period (objective, figure, status) and the credits per quarter."""
    if not levels:
        return []
    lines = ["\nservice levels (objective; met / settled in the period)"]
    rows = [
        (
            p["label"],
            p["service_level"],
            "/".join(p["severities"]) or "all",
            p["metric"],
            f"{p['objective_percent']:g} %",
            _rate_cell(p),
            _status_text(p),
        )
        for p in levels["periods"]
    ]
    lines += _grid(
        ("period", "service level", "severity", "metric", "objective", "figure", "status"), rows
    )
    credits = levels.get("credits", [])
    if credits:
        clause = f"clause {credits[0]['clause_id']} {credits[0]['clause_title']}"
        lines.append(f"\nservice credits per quarter ({clause})")
        quarters = levels.get("credits_per_quarter", {})
        currency = credits[0]["currency"] or ""
        rows = []
        for quarter, amount in quarters.items():
            missed = [
                f"{c['label']} ({c['misses']} missed, {c['percent']:g} %)"
                for c in credits
                if c["misses"] and _quarter_of_label(c["label"]) == quarter
            ]
            rows.append((quarter, f"{amount:,.2f} {currency}".strip(), ", ".join(missed) or "-"))
        lines += _grid(("quarter", "credit", "periods missed"), rows)
    return lines


def _quarter_of_label(label: str) -> str:
    """'2026-02' -> '2026-Q1'; a quarter's label is itself."""
    if "Q" in label:
        return label
    year, month = label.split("-")
    return f"{year}-Q{(int(month) - 1) // 3 + 1}"
