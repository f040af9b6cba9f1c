"""The dashboard's charts as inline SVG, drawn on the server by pygal.

No JavaScript and nothing fetched: pygal's tooltip script (which it would load from a CDN) is
turned off with `js=[]`, so the page works with no internet access. The figures a chart plots
are also in the table under it, with numerators and denominators; the adherence chart labels
each point with its `met/settled` when there are few enough points to read them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pygal
from pygal.style import Style

from sla_stream.web.commitments import METRIC_WORDS

MAX_LABELLED_POINTS = 24
_SCRIPT = re.compile(r"<script\b.*?</script>|<!--.*?-->", re.DOTALL)
PALETTE = (
    "#1f6feb",  # blue
    "#d9480f",  # orange
    "#2f9e44",  # green
    "#7048e8",  # violet
    "#c2255c",  # pink
    "#0c8599",  # teal
    "#e67700",  # amber
    "#495057",  # grey
)
STYLE_ARGS: dict[str, Any] = dict(
    background="white",
    plot_background="white",
    foreground="#212529",
    foreground_strong="#212529",
    foreground_subtle="#868e96",
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    value_font_size=11,
    value_label_font_size=11,
    title_font_size=14,
)
DASHED = {"width": 2, "dasharray": "6, 4"}
TARGET_COLOUR = "#111111"


def _config(colors: tuple[str, ...] = PALETTE, **extra: Any) -> dict[str, Any]:
    return {
        "js": [],  # no tooltip script: it would come from a CDN
        "disable_xml_declaration": True,  # inline in HTML
        "style": Style(colors=colors, **STYLE_ARGS),
        "width": 640,
        "height": 330,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 3,
        "truncate_legend": -1,
        "truncate_label": -1,
        "allow_interruptions": True,
        "margin": 10,
        "margin_right": 36,  # room for the last x label and point label
        **extra,
    }


def _render(chart: Any) -> str:
    # pygal misplaces a bottom legend (below the picture) when it has fewer entries than
    # columns, so use as many columns as entries, at most three.
    chart.legend_at_bottom_columns = max(1, min(3, len(chart.raw_series)))
    # pygal still inlines the configuration its tooltip script would read; without the script
    # it is dead weight, and the page is meant to carry no script at all. Its comments (a
    # generation date, project links) go too.
    return _SCRIPT.sub("", chart.render(is_unicode=True))


def _x_labels(chart: Any, labels: list[str]) -> None:
    chart.x_labels = labels
    if len(labels) > 12:  # every label would overlap; show about a dozen, all still in the table
        every = -(-len(labels) // 12)
        chart.x_labels_major = labels[::every]
        chart.show_minor_x_labels = False
        chart.x_label_rotation = 30


def adherence_chart(data: Mapping[str, Any], target: float) -> str:
    """Portfolio adherence per period for each metric, in %, and the target as a black line."""
    labels = data["periods"]
    labelled = len(labels) <= MAX_LABELLED_POINTS
    chart = pygal.Line(
        **_config(
            (*PALETTE[:2], TARGET_COLOUR),
            range=(0, 100),
            print_labels=labelled,
            value_formatter=lambda v: f"{v:.0f} %",
            dots_size=4 if labelled else 2,
        )
    )
    _x_labels(chart, labels)
    for metric, rows in data["metrics"].items():
        values = [
            {"value": None}
            if r["rate"] is None
            else {
                "value": round(100 * r["rate"], 1),
                "label": f"{r['numerator']}/{r['denominator']}",
            }
            for r in rows["periods"]
        ]
        chart.add(METRIC_WORDS[metric], values)
    chart.add(
        f"target {100 * target:g} %",
        [100 * target] * len(labels),
        show_dots=False,
        print_labels=False,
        stroke_style={"width": 2.5},  # solid: the guide lines are dashed
    )
    return _render(chart)


def breaches_chart(data: Mapping[str, Any]) -> str:
    """Breached clocks per calendar quarter, one bar per contract."""
    top = max([c for counts in data["contracts"].values() for c in counts], default=0)
    chart = pygal.Bar(
        **_config(print_values=True, value_formatter=lambda v: f"{v:g}", range=(0, max(top, 1)))
    )
    if data["contracts"]:  # pygal fails on y labels of a chart with no series (no reports)
        chart.y_labels = _integer_ticks(max(top, 1))
    chart.x_labels = data["quarters"]
    for contract, counts in data["contracts"].items():
        chart.add(contract, [c or None for c in counts])
    return _render(chart)


def _integer_ticks(top: int, most: int = 8) -> list[int]:
    step = max(1, -(-top // most))
    return list(range(0, top + step, step))


UNITS = (("min", 60.0, 2 * 3600.0), ("h", 3600.0, 72 * 3600.0), ("days", 86400.0, float("inf")))


def _unit(seconds: float) -> tuple[str, float]:
    """Minutes, hours or days: whichever keeps the axis numbers readable."""
    return next((name, size) for name, size, below in UNITS if seconds < below)


def trend_chart(per_category: Mapping[str, list[dict[str, Any]]], periods: list[str]) -> str:
    """Median (solid) and p90 (dashed) response time per category, per period."""
    # A category's median and p90 share its colour; the p90 is dashed.
    colors = tuple(c for i in range(len(per_category)) for c in [PALETTE[i % len(PALETTE)]] * 2)
    top = max((r["p90_s"] or 0 for rows in per_category.values() for r in rows), default=0)
    unit, size = _unit(top)
    headroom = round(1.1 * top / size, 3)
    chart = pygal.Line(
        **_config(
            colors or PALETTE,
            value_formatter=lambda v: f"{v:.3g} {unit}",
            dots_size=3 if len(periods) <= MAX_LABELLED_POINTS else 1.5,
            range=(0, headroom or 1),
        )
    )
    _x_labels(chart, periods)
    for category, rows in per_category.items():
        by_period = {r["period"]: r for r in rows}
        for key, name, extra in (
            ("median_s", "median", {}),
            ("p90_s", "p90", {"stroke_style": DASHED}),
        ):
            values = [
                round(by_period[p][key] / size, 3) if p in by_period else None for p in periods
            ]
            chart.add(f"{category} {name}", values, **extra)
    return _render(chart)
