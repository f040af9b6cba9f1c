"""The dashboard page as HTML: filters, headline rates, charts, tables and the drill-down.

Self-contained: the CSS is inline, the charts are inline SVG, there is no script, so the page
needs nothing but the worker that serves it. Every rate is printed with its numerator and
denominator ("50.0 % (1/2)"). Elements tests look for carry `data-*` or `id` attributes. The
category tables sort on the server: their headings are links with `sort=`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from sla_stream.core.models import METRICS, SEVERITIES
from sla_stream.core.periods import STEPS
from sla_stream.web import charts, service_levels_html
from sla_stream.web.commitments import METRIC_WORDS, short_duration
from sla_stream.web.dashboard_data import DEFAULT_SORT, Filters
from sla_stream.web.explain_path import explain_path
from sla_stream.web.page_budget import OTHERS
from sla_stream.web.page_css import FRAME_CSS

CSS = (
    """
:root { --ink:#212529; --muted:#6c757d; --line:#dee2e6; --bad:#c92a2a; --warn:#e67700;
  --ok:#2b8a3e; --bg:#f1f3f5; }
"""
    + FRAME_CSS
    + """
form.filters { display:flex; flex-wrap:wrap; gap:10px 14px; align-items:end; background:#fff;
  border:1px solid var(--line); border-radius:6px; padding:10px 14px; }
form.filters label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); }
form.filters select, form.filters input { font-size:14px; padding:3px 6px; min-width:120px; }
form.filters button { font-size:14px; padding:5px 14px; }
.notice { background:#fff4e6; border:1px solid #ffd8a8; padding:8px 12px; border-radius:6px;
  margin:10px 0; }
.kpis { display:grid; grid-template-columns:repeat(auto-fit, minmax(210px, 1fr)); gap:12px;
  margin:12px 0; }
.kpi { background:#fff; border:1px solid var(--line); border-radius:6px; padding:10px 14px; }
.kpi .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.03em; }
.kpi .value { font-size:26px; font-weight:600; }
.kpi .sub { color:var(--muted); }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(560px, 1fr)); gap:12px; }
section.card { background:#fff; border:1px solid var(--line); border-radius:6px;
  padding:10px 14px; margin-top:12px; min-width:0; }
.grid section.card { margin-top:0; }
section.card h2 { font-size:15px; margin:0 0 6px; }
section.card p.note { color:var(--muted); margin:0 0 6px; font-size:12px; }
svg { width:100%; height:auto; display:block; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { color:var(--muted); font-weight:600; background:#f8f9fa; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr.overdue td { color:var(--bad); }
tr.soon td.left { color:var(--warn); font-weight:600; }
details > summary { cursor:pointer; color:var(--muted); margin:4px 0; }
a { color:#1864ab; }
.muted { color:var(--muted); }
.scroll { max-height:260px; overflow:auto; }
.notice.info { background:#e7f5ff; border-color:#a5d8ff; }
form.filters select[multiple] { min-width:170px; }
th a { color:inherit; text-decoration:none; }
th a.on { color:var(--ink); }
"""
)


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def rate_text(rate: Mapping[str, Any]) -> str:
    """'50.0 % (1/2)'; 'n/a (0/0)' when nothing settled."""
    n, d = rate["numerator"], rate["denominator"]
    if rate["rate"] is None:
        return f"n/a ({n}/{d})"
    return f"{100 * rate['rate']:.1f} % ({n}/{d})"


def _link(filters: Filters, **changes: Any) -> str:
    return "/?" + urlencode(filters.link(**changes))


def _select(name: str, label: str, options: Iterable[tuple[str, str]], chosen: str) -> str:
    opts = "".join(
        f'<option value="{_e(v)}"{" selected" if v == chosen else ""}>{_e(t)}</option>'
        for v, t in options
    )
    return f'<label>{label}<select name="{name}">{opts}</select></label>'


def _bound(name: str, label: str, value: str, found: bool) -> str:
    # A found range is a placeholder: submitting the form keeps looking for the latest data.
    shown = f'placeholder="{_e(value)}"' if found else f'value="{_e(value)}"'
    return f'<label>{label}<input name="{name}" {shown} size="12"></label>'


def _categories_select(filters: Filters, categories: Sequence[str]) -> str:
    opts = "".join(
        f'<option value="{_e(c)}"{" selected" if c in filters.categories else ""}>{_e(c)}</option>'
        for c in categories
    )
    return (
        '<label>Categories charted (none: the largest)<select name="category" multiple size="3">'
        f"{opts}</select></label>"
    )


def filters_form(
    filters: Filters,
    contracts: list[str],
    tiers: list[str],
    categories: Sequence[str] = (),
) -> str:
    sort = "" if filters.sort == DEFAULT_SORT else filters.sort
    return (
        '<form class="filters" method="get" action="/">'
        + _select(
            "contract",
            "Contract",
            [("", "all contracts")] + [(c, c) for c in contracts],
            filters.contract,
        )
        + _select("tier", "Tier", [("", "all tiers")] + [(t, t) for t in tiers], filters.tier)
        + _select(
            "severity", "Severity", [("", "all")] + [(s, s) for s in SEVERITIES], filters.severity
        )
        + _select("step", "Period step", [(s, s) for s in STEPS], filters.step)
        + _bound("from", "From", filters.from_, filters.found)
        + _bound("to", "To (exclusive)", filters.to, filters.found)
        + _categories_select(filters, categories)
        + (f'<input type="hidden" name="sort" value="{_e(sort)}">' if sort else "")
        + '<button type="submit">Apply</button>'
        + '<span class="muted">dates, quarters (2026-Q2) or instants; in each contract\'s zone'
        + "</span></form>"
    )


def kpis(model: Mapping[str, Any]) -> str:
    port = model["portfolio"]["metrics"]
    cards = []
    for metric in METRICS:
        total = port[metric]["total"]
        value = "n/a" if total["rate"] is None else f"{100 * total['rate']:.1f} %"
        cards.append(
            f'<div class="kpi" data-kpi="{metric}"><div class="label">{METRIC_WORDS[metric]} '
            f'adherence</div><div class="value">{value}</div><div class="sub">'
            f"{total['numerator']} met / {total['denominator']} settled</div></div>"
        )
    breaches = sum(model["breaches"]["totals"])
    cards.append(
        f'<div class="kpi" data-kpi="breaches"><div class="label">breaches</div>'
        f'<div class="value">{breaches}</div><div class="sub">in the quarters shown</div></div>'
    )
    open_ = model["open_incidents"]
    cards.append(
        f'<div class="kpi" data-kpi="open"><div class="label">open incidents</div>'
        f'<div class="value">{open_["count"]}</div><div class="sub">'
        f"{_plural(open_['breached_clocks'], 'clock')} breached, still running</div></div>"
    )
    return f'<div class="kpis">{"".join(cards)}</div>'


def adherence_card(model: Mapping[str, Any]) -> str:
    port = model["portfolio"]
    rows = "".join(
        f"<tr><td>{_e(label)}</td>"
        + "".join(
            f'<td class="num">{rate_text(port["metrics"][m]["periods"][i])}</td>' for m in METRICS
        )
        + "</tr>"
        for i, label in enumerate(port["periods"])
    )
    heads = "".join(f'<th class="num">{METRIC_WORDS[m]}</th>' for m in METRICS)
    return (
        '<section class="card" id="adherence"><h2>Adherence over time</h2>'
        '<p class="note">met ÷ settled per period (a met clock counts at its stop, a breached '
        "one at its breach); black line: target (the contracts' own service level, else the "
        "default)</p>"
        + charts.adherence_chart(port, model.get("targets") or model["target"])
        # Always open: when the chart has too many points to label, this is where each rate
        # stands next to its numerator and denominator.
        + '<details open><summary>figures</summary><div class="scroll"><table><tr><th>period</th>'
        + heads
        + "</tr>"
        + rows
        + "</table></div></details></section>"
    )


def breaches_card(model: Mapping[str, Any], filters: Filters) -> str:
    data = model["breaches"]
    heads = "".join(f'<th class="num">{_e(q)}</th>' for q in data["quarters"])
    rows = "".join(
        f'<tr data-contract="{_e(c)}"><td><a href="{_e(_link(filters, contract=c))}">{_e(c)}</a>'
        "</td>" + "".join(f'<td class="num">{n}</td>' for n in counts) + "</tr>"
        for c, counts in data["contracts"].items()
    )
    totals = "".join(f'<td class="num"><b>{n}</b></td>' for n in data["totals"])
    return (
        '<section class="card" id="breaches"><h2>Breaches per quarter, per contract</h2>'
        '<p class="note">breached clocks by the calendar quarter of the breach instant, in the '
        "contract's zone</p>"
        + charts.breaches_chart(data)
        + f"<table><tr><th>contract</th>{heads}</tr>{rows}<tr><td><b>all</b></td>{totals}</tr>"
        + "</table></section>"
    )


QUANTILES = (("median_s", "median"), ("p90_s", "p90"))


def _sort_head(filters: Filters, key: str, label: str, metric: str, num: bool = True) -> str:
    # Descending first for figures, ascending first for names; a second click reverses.
    first = key if key == "category" else f"-{key}"
    current = filters.sort
    target = (key if current == f"-{key}" else f"-{key}") if current.lstrip("-") == key else first
    arrow = ("▼" if current.startswith("-") else "▲") if current.lstrip("-") == key else ""
    href = _link(filters, sort=target) + f"#trend-{metric}"
    cls = ' class="num"' if num else ""
    on = ' class="on"' if arrow else ""
    return f'<th{cls}><a{on} href="{_e(href)}" data-sort="{target}">{label} {arrow}</a></th>'


def trend_card(metric: str, model: Mapping[str, Any]) -> str:
    per_category = model["trends"][metric]
    periods = model["portfolio"]["periods"]
    filters: Filters = model["filters"]
    charted = set(per_category)
    rows = "".join(
        f'<tr data-category="{_e(r["category"])}"><td>{_e(r["category"])}'
        f"{' ●' if r['category'] in charted else ''}</td>"
        f'<td class="num">{r["count"]}</td>'
        f'<td class="num">{short_duration(r["median_s"])}</td>'
        f'<td class="num">{short_duration(r["p90_s"])}</td></tr>'
        for r in model["categories"][metric]
    )
    picked = "the categories picked" if filters.categories else "the largest categories"
    charts_html = "".join(
        f'<div class="chart" data-quantile="{name}"><p class="note">{name}</p>'
        + charts.trend_chart(per_category, periods, key)
        + "</div>"
        for key, name in QUANTILES
    )
    heads = (
        _sort_head(filters, "category", "category", metric, num=False)
        + _sort_head(filters, "count", "settled", metric)
        + _sort_head(filters, "median", "median", metric)
        + _sort_head(filters, "p90", "p90", metric)
    )
    return (
        f'<section class="card" id="trend-{metric}"><h2>{METRIC_WORDS[metric].capitalize()} '
        "time by category: median and p90</h2>"
        f'<p class="note">business time on the target\'s calendar; {picked} and '
        f"{OTHERS!r} (the rest pooled); every category in the table (● charted)</p>"
        + charts_html
        + '<div class="scroll"><table class="categories"><tr>'
        + heads
        + "</tr>"
        + rows
        + "</table></div></section>"
    )


def _left(row: Mapping[str, Any]) -> str:
    if row["state"] == "paused":
        return f"paused, {short_duration(row['remaining_s'])} left"
    left = row["time_left_s"]
    if left < 0:
        return f"overdue {short_duration(-left)}"
    return short_duration(left)


def at_risk_card(model: Mapping[str, Any]) -> str:
    open_ = model["open_incidents"]
    rows = []
    for r in open_["at_risk"]:
        cls = "overdue" if r["state"] == "breached" or (r["time_left_s"] or 0) < 0 else ""
        if not cls and r["time_left_s"] is not None and r["time_left_s"] < 3600:
            cls = "soon"
        rows.append(
            f'<tr class="{cls}" data-incident="{_e(r["incident_id"])}" data-metric="{r["metric"]}">'
            f'<td><a href="{_e(explain_path(r["incident_id"]))}" title="how the deadline was '
            f'derived">{_e(r["incident_id"])}</a></td><td>{_e(r["contract_id"])}</td>'
            f"<td>{_e(r['severity'])}</td><td>{METRIC_WORDS[r['metric']]}</td>"
            f"<td>{_e((r['due_at'] or '')[:16].replace('T', ' '))}</td>"
            f'<td class="num left">{_left(r)}</td>'
            f"<td>{_e(r['clause_id'])} {_e(r['clause_title'])}</td><td>{_e(r['status'])}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="8" class="muted">no open clocks</td></tr>'
    warn = ""
    if open_["missing"]:
        warn = (
            '<p class="notice">Partitions without an answer (rebalancing or a worker down): '
            f"{_e(', '.join(map(str, open_['missing'])))}; the list may be short.</p>"
        )
    return (
        '<section class="card" id="at-risk"><h2>Open incidents nearest their deadline</h2>'
        '<p class="note">running clocks by time to deadline (overdue first), then paused ones by '
        "business time left; deadlines in UTC</p>"
        + warn
        + "<table><tr><th>incident</th><th>contract</th><th>sev</th><th>clock</th>"
        '<th>deadline (UTC)</th><th class="num">time left</th><th>clause</th><th>status</th></tr>'
        + body
        + "</table></section>"
    )


def contracts_card(model: Mapping[str, Any], filters: Filters) -> str:
    rows = "".join(
        f'<tr data-contract="{_e(r["contract"])}"><td><a href="'
        f'{_e(_link(filters, contract=r["contract"]))}">{_e(r["contract"])}</a></td>'
        f"<td>{_e(r['customer'])}</td><td>{_e(r['tier'])}</td><td>{_e(r['timezone'])}</td>"
        + "".join(f'<td class="num">{rate_text(r[m])}</td>' for m in METRICS if m in r)
        + f'<td class="num">{r["breaches"]}</td></tr>'
        for r in model["contracts"]
    )
    heads = "".join(f'<th class="num">{METRIC_WORDS[m]}</th>' for m in METRICS)
    return (
        '<section class="card" id="contracts"><h2>Contracts</h2>'
        '<p class="note">select one for its drill-down: its own charts, commitments and '
        "incidents</p><table><tr><th>contract</th><th>customer</th><th>tier</th><th>zone</th>"
        + heads
        + '<th class="num">breaches</th></tr>'
        + rows
        + "</table></section>"
    )


def commitments_card(commitments: Mapping[str, Any]) -> str:
    parts = []
    for version in commitments["versions"]:
        state = "in force" if version["in_force"] else f"from {version['effective_from']}"
        rows = "".join(
            f"<tr><td>{_e(t['plain'])}</td><td>{_e(t['clause_id'])}</td>"
            f"<td>{_e(t['clause_title'])}</td></tr>"
            for t in version["targets"]
        ) + "".join(
            f'<tr data-level="{_e(lv["id"])}"><td>{_e(lv["plain"])}</td>'
            f"<td>{_e(lv['clause_id'])}</td><td>{_e(lv['clause_title'])}</td></tr>"
            for lv in version.get("service_levels", [])
        )
        credit = version.get("service_credit")
        if credit:
            rows += (
                f'<tr data-credit="1"><td>service credit: {_e(credit["plain"])}</td>'
                f"<td>{_e(credit['clause_id'])}</td><td>{_e(credit['clause_title'])}</td></tr>"
            )
        clauses = "".join(
            f"<li><b>{_e(c['id'])} {_e(c['title'])}</b>: {_e(c['text'])}</li>"
            for c in version["clauses"]
        )
        parts.append(
            f"<h3>version {version['version']} ({_e(state)}), tier {_e(version['tier'])}</h3>"
            f"<table><tr><th>commitment</th><th>clause</th><th>title</th></tr>{rows}</table>"
            f"<ul>{clauses}</ul>"
        )
    return (
        f'<section class="card" id="commitments"><h2>Commitments of '
        f"{_e(commitments['contract_id'])} ({_e(commitments['customer_id'])})</h2>"
        + "".join(parts)
        + "</section>"
    )


def page(model: Mapping[str, Any]) -> str:
    """The whole dashboard page for a model built by `dashboard.Dashboard.model`."""
    filters: Filters = model["filters"]
    title = f"contract {filters.contract}" if filters.contract else "portfolio"
    errors = "".join(f'<p class="notice">{_e(e)}</p>' for e in model["errors"])
    errors += "".join(f'<p class="notice info">{_e(n)}</p>' for n in model.get("notices", ()))
    drill = commitments_card(model["commitments"]) if model.get("commitments") else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>SLA adherence · {_e(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>SLA adherence · {_e(title)}</h1>"
        f'<span class="asof">as of {_e(model["as_of"][:19].replace("T", " "))} UTC · '
        f"{len(model['contracts'])} contracts · {_e(filters.from_)} to {_e(filters.to)}, by "
        f"{_e(filters.step)}</span>"
        + (' <a href="/">all contracts</a>' if filters.contract else "")
        + "</header><main>"
        + filters_form(
            filters,
            model["all_contracts"],
            model["all_tiers"],
            sorted({r["category"] for rows in model["categories"].values() for r in rows}),
        )
        + errors
        + kpis(model)
        + '<div class="grid">'
        + adherence_card(model)
        + breaches_card(model, filters)
        # Update cycles are charted only where some settled: most desks keep none, and two
        # empty charts would say nothing.
        + "".join(
            trend_card(m, model) for m in METRICS if m != "update" or model["categories"].get(m)
        )
        + "</div>"
        + at_risk_card(model)
        + service_levels_html.card(model)
        + drill
        + contracts_card(model, filters)
        + "</main></body></html>"
    )
