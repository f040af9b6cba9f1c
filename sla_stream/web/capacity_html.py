"""The capacity page as HTML: teams, the staffing heat map, adherence vs agents, contracts at risk.

Self-contained like the dashboard: inline CSS, the chart as inline SVG drawn by pygal, no script.
The backtest's error is printed beside every recommendation: in the heading of the heat map, in
each cell's tooltip, in a column of the table of short hours and in the chart's band. Elements
tests look for carry `id` or `data-*` attributes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import urlencode

import pygal
from pygal.style import Style

from sla_stream.web.charts import PALETTE, STYLE_ARGS, TARGET_COLOUR
from sla_stream.web.page_css import FRAME_CSS

CSS = (
    """
:root { --ink:#212529; --muted:#6c757d; --line:#dee2e6; --bg:#f1f3f5; }
"""
    + FRAME_CSS
    + """
.notice { background:#fff4e6; border:1px solid #ffd8a8; padding:8px 12px; border-radius:6px;
  margin:10px 0; }
section.card { background:#fff; border:1px solid var(--line); border-radius:6px;
  padding:10px 14px; margin-top:12px; min-width:0; }
section.card h2 { font-size:15px; margin:0 0 6px; }
p.note { color:var(--muted); margin:0 0 6px; font-size:12px; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(560px, 1fr)); gap:12px; }
.grid section.card { margin-top:0; }
svg { width:100%; height:auto; display:block; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); }
th { color:var(--muted); font-weight:600; background:#f8f9fa; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr.chosen td { background:#e7f5ff; }
table.heat { table-layout:fixed; font-size:11px; }
table.heat th, table.heat td { padding:2px 1px; text-align:center; border:1px solid #fff; }
table.heat th.day { width:40px; }
table.heat td a { color:inherit; text-decoration:none; display:block; }
table.heat td.chosen { outline:2px solid #1864ab; outline-offset:-2px; }
table.heat td { white-space:nowrap; }
.ok { background:#d3f9d8; } .short1 { background:#ffe8cc; } .short2 { background:#ffc078; }
.short3 { background:#ff8787; } .unreachable { background:#c92a2a; color:#fff; }
.none { background:#f8f9fa; color:#adb5bd; }
.legend span { display:inline-block; padding:1px 8px; margin-right:6px; font-size:12px; }
div.scroll { max-height:420px; overflow:auto; }
pre { background:#f8f9fa; padding:8px; white-space:pre-wrap; }
a { color:#1864ab; }
"""
)
_SCRIPT = re.compile(r"<script\b.*?</script>|<!--.*?-->", re.DOTALL)
LEGEND = (
    ("ok", "staffed for the target"),
    ("short1", "short by up to 1 agent"),
    ("short2", "short by 1-3"),
    ("short3", "short by more than 3"),
    ("unreachable", "target not reached at any staffing tried"),
    ("none", "no incidents"),
)


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f} %"


def _pts(points: float | None) -> str:
    return "-" if points is None else f"{points:.1f}"


def _when(cell: Mapping[str, Any]) -> str:
    return f"{cell['day']} {cell['hour']:02d}:00"


def _needed(cell: Mapping[str, Any]) -> str:
    return "-" if cell["needed"] is None else str(cell["needed"])


def _link(team: str, hour_of_week: int | None = None) -> str:
    params: dict[str, Any] = {"team": team}
    if hour_of_week is not None:
        params["hour_of_week"] = hour_of_week
    return "/capacity?" + urlencode(params)


def backtest_words(model: Mapping[str, Any]) -> str:
    """The backtest's error, as printed beside every recommendation."""
    bt = model["backtest"]
    low, high = bt["band_points"]
    return (
        f"backtest MAE {_pts(bt['group_week_mae'])} pts per team-week, "
        f"{_pts(bt['hour_of_week_mae'])} per hour-of-week cell; band {low:+.1f}/{high:+.1f} pts"
    )


def error_words(model: Mapping[str, Any]) -> str:
    """The backtest's error, short enough for a table cell."""
    bt = model["backtest"]
    low, high = bt["band_points"]
    return f"MAE {_pts(bt['group_week_mae'])} pts; band {low:+.1f}/{high:+.1f} pts"


def _band(cell: Mapping[str, Any]) -> str:
    return f"{100 * cell['low']:.1f}-{100 * cell['high']:.1f} %"


def heat_class(cell: Mapping[str, Any] | None) -> str:
    if cell is None:
        return "none"
    if cell["status"] != "short":
        return cell["status"]
    return "short1" if cell["shortfall"] <= 1 else "short2" if cell["shortfall"] <= 3 else "short3"


def _heat_cell(team: str, cell: Mapping[str, Any] | None, chosen: int | None, bt: str) -> str:
    if cell is None:
        return '<td class="none">·</td>'
    how = cell["hour_of_week"]
    title = (
        f"{_when(cell)}: {cell['arrivals_per_week']:g} incidents/week; now {cell['current']:g} "
        f"agents, predicted {_pct(cell['predicted'])} ({_band(cell)})"
        f"; needed {_needed(cell)}; one more agent {100 * cell['marginal']:+.1f} pts; {bt}"
    )
    classes = heat_class(cell) + (" chosen" if how == chosen else "")
    return (
        f'<td class="{classes}" data-hour-of-week="{how}" data-current="{cell["current"]}" '
        f'data-needed="{_needed(cell)}" title="{_e(title)}"><a href="{_e(_link(team, how))}">'
        f"{cell['current']:.1f}<br>{_needed(cell)}</a></td>"
    )


def heat_map(team: Mapping[str, Any], chosen: int | None, bt: str) -> str:
    """7 days x 24 hours; each cell today's agents over the agents needed, coloured by the gap."""
    by_hour = {c["hour_of_week"]: c for c in team["cells"]}
    head = '<tr><th class="day"></th>' + "".join(f"<th>{h:02d}</th>" for h in range(24)) + "</tr>"
    rows = []
    for day_index, day in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")):
        cells = "".join(
            _heat_cell(team["team"], by_hour.get(day_index * 24 + h), chosen, bt) for h in range(24)
        )
        rows.append(f'<tr data-day="{day}"><th class="day">{day}</th>{cells}</tr>')
    legend = "".join(f'<span class="{c}">{_e(w)}</span>' for c, w in LEGEND)
    return f'<table class="heat">{head}{"".join(rows)}</table><p class="note legend">{legend}</p>'


def curve_chart(selected: Mapping[str, Any], target: float, band: list[float]) -> str:
    """Predicted adherence (%) by agents on duty, the band, today's staffing and the need."""
    points = selected["curve"]
    chart = pygal.XY(
        js=[],
        disable_xml_declaration=True,
        style=Style(
            colors=(PALETTE[0], "#74c0fc", "#74c0fc", PALETTE[1], PALETTE[2], TARGET_COLOUR),
            **STYLE_ARGS,
        ),
        width=640,
        height=330,
        range=(0, 100),
        xrange=(0, points[-1]["agents"]),
        legend_at_bottom=True,
        legend_at_bottom_columns=2,
        truncate_legend=-1,
        x_title="agents on duty",
        y_title="predicted adherence %",
        value_formatter=lambda v: f"{v:.0f}",
        dots_size=3,
        margin=10,
    )
    chart.add("predicted", [(p["agents"], 100 * p["predicted"]) for p in points])
    low, high = band
    for name, key in ((f"band {low:+.1f} pts", "low"), (f"band {high:+.1f} pts", "high")):
        chart.add(
            name,
            [(p["agents"], 100 * p[key]) for p in points],
            show_dots=False,
            stroke_style={"width": 1.5, "dasharray": "5, 4"},
        )
    today = selected["current"]
    chart.add(
        f"today: {today:g} agents, {_pct(selected['predicted'])}",
        [(today, 100 * selected["predicted"])],
        dots_size=8,
    )
    needed = selected["needed"]
    if needed is not None:
        at_needed = points[min(needed, len(points) - 1)]["predicted"]
        chart.add(
            f"needed: {needed} agents, {_pct(at_needed)}", [(needed, 100 * at_needed)], dots_size=8
        )
    else:
        chart.add("needed: target not reached", [])
    chart.add(
        f"target {100 * target:g} %",
        [(0, 100 * target), (points[-1]["agents"], 100 * target)],
        show_dots=False,
        stroke_style={"width": 2},
    )
    return _SCRIPT.sub("", chart.render(is_unicode=True))


def teams_table(model: Mapping[str, Any], chosen: str | None) -> str:
    rows = "".join(
        f'<tr data-team="{_e(t["team"])}"{" class=chosen" if t["team"] == chosen else ""}>'
        f'<td><a href="{_e(_link(t["team"]))}">{_e(t["team"])}</a></td>'
        f'<td class="num">{_pct(t["predicted"])}</td><td class="num">{t["hours"]}</td>'
        f'<td class="num">{t["hours_short"]}</td><td class="num">{t["hours_unreachable"]}</td>'
        f'<td class="num">{t["agent_hours_short"]:g}</td></tr>'
        for t in model["teams"]
    )
    return (
        '<table><tr><th>team</th><th class="num">predicted today</th>'
        '<th class="num">hours with incidents</th><th class="num">hours short</th>'
        '<th class="num">unreachable</th><th class="num">agent-hours short / week</th></tr>'
        f"{rows}</table>"
    )


def recommendations_table(team: Mapping[str, Any], bt: str) -> str:
    """The team's hours short of the target, each with the backtest's error beside it."""
    short = [c for c in team["cells"] if c["status"] != "ok"]
    if not short:
        return '<p class="note">Every hour with incidents is staffed for the target.</p>'
    rows = "".join(
        f'<tr data-hour-of-week="{c["hour_of_week"]}">'
        f'<td><a href="{_e(_link(team["team"], c["hour_of_week"]))}">{_when(c)}</a></td>'
        f'<td class="num">{c["arrivals_per_week"]:g}</td><td class="num">{c["current"]:g}</td>'
        f'<td class="num">{_needed(c)}</td><td class="num">{_pct(c["predicted"])}</td>'
        f'<td class="num">{100 * c["marginal"]:+.1f} pts</td>'
        f'<td class="num">{_band(c)}</td><td>{_e(bt)}</td></tr>'
        for c in short
    )
    return (
        '<div class="scroll"><table><tr><th>hour</th><th class="num">incidents / week</th>'
        '<th class="num">agents now</th><th class="num">agents needed</th>'
        '<th class="num">predicted now</th><th class="num">one more agent</th>'
        '<th class="num">band</th><th>backtest error</th></tr>'
        f"{rows}</table></div>"
    )


def contracts_table(model: Mapping[str, Any]) -> str:
    if not model["contracts_at_risk"]:
        return '<p class="note">No contract is predicted under the target.</p>'
    rows = "".join(
        f'<tr data-contract="{_e(c["contract"])}"><td>{_e(c["contract"])}</td>'
        f'<td class="num">{c["incidents"]}</td><td class="num">{_pct(c["predicted"])}</td>'
        "<td>"
        + _e(", ".join(f"{t['team']} {100 * t['share']:.0f} %" for t in c["teams_under_target"]))
        + "</td></tr>"
        for c in model["contracts_at_risk"]
    )
    return (
        '<table><tr><th>contract</th><th class="num">incidents</th>'
        '<th class="num">predicted adherence</th><th>share of its incidents in teams under '
        "target</th></tr>"
        f"{rows}</table>"
    )


def _document(title: str, header: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{CSS}</style></head><body><header>{header}</header><main>{body}</main>"
        "</body></html>"
    )


def no_report(message: str) -> str:
    """The page without a report: what is missing and the commands that make one."""
    header = '<h1>Capacity</h1><a href="/">adherence dashboard</a>'
    return _document(
        "SLA capacity · no report",
        header,
        f'<section class="card" id="no-report"><h2>No capacity report to show</h2>'
        f"<pre>{_e(message)}</pre></section>",
    )


def page(model: Mapping[str, Any], notice: str | None = None) -> str:
    """The whole page for the view model of `capacity.capacity_view`."""
    selected = model["selected"]
    chosen_team = selected["team"] if selected else None
    team = next((t for t in model["teams"] if t["team"] == chosen_team), None)
    bt = backtest_words(model)
    header = (
        f"<h1>Capacity · target {100 * model['target']:g} % "
        f"{_e(model['metric'].replace('_', ' '))}</h1>"
        f'<span class="asof">report {_e(model["source"]["modified_at"][:19])} UTC</span>'
        '<a href="/">adherence dashboard</a>'
    )
    parts = [f'<div class="notice" id="notice">{_e(notice)}</div>' if notice else ""]
    parts.append(
        f'<p class="note" id="backtest">{_e(bt)}; band: 10th-90th percentile of '
        f"team-week residuals from {_e(model['backtest']['cut'][:10])}</p>"
    )
    parts.append(
        f'<section class="card" id="teams"><h2>Teams</h2>{teams_table(model, chosen_team)}'
        "</section>"
    )
    if team is not None:
        parts.append(
            f'<section class="card" id="heat-map"><h2>{_e(team["team"])}: agents today over '
            f"agents needed, per hour of the week</h2><p class=note>{_e(bt)}</p>"
            f"{heat_map(team, selected['hour_of_week'], bt)}</section>"
        )
    chart = ""
    if selected is not None:
        drawn = (
            curve_chart(selected, model["target"], model["backtest"]["band_points"])
            if selected["curve"]
            else '<p class="note">This report has no curves: write it again with this '
            "version of `sla-stream capacity`.</p>"
        )
        chart = (
            f'<section class="card" id="curve" data-hour-of-week="{selected["hour_of_week"]}">'
            f"<h2>{_e(selected['team'])} · {_when(selected)}: predicted adherence by agents"
            f"</h2><p class=note>{_e(bt)}</p>{drawn}</section>"
        )
    risk = (
        '<section class="card" id="contracts-at-risk"><h2>Contracts at risk</h2>'
        f"{contracts_table(model)}</section>"
    )
    parts.append(f'<div class="grid">{chart}{risk}</div>')
    if team is not None:
        parts.append(
            f'<section class="card" id="recommendations"><h2>{_e(team["team"])}: hours short '
            f"of the target</h2>{recommendations_table(team, error_words(model))}</section>"
        )
    return _document(f"SLA capacity · {chosen_team or 'no teams'}", header, "".join(parts))
