"""The dashboard's charts as inline SVG, drawn on the server by pygal.

No JavaScript and nothing fetched: pygal's tooltip script (which it would load from a CDN) is
turned off with `js=[]`, so the page works with no internet access. The figures a chart plots
are also in the table under it, with numerators and denominators; the adherence chart labels
each point with its `met/settled` when there are few enough points to read them.

Readable at real density: at most `MAX_SERIES` series a chart (the largest and "all others"),
about a dozen x labels, rotated, however many periods; an empty period is a gap in the line
(None, `allow_interruptions`), not a zero. Without the tooltip script pygal's per-point tooltip
text and hover classes are dead weight, and its coordinates' many decimals all but one: they
go (a dense chart shrinks by about two thirds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pygal
from pygal.style import Style

from sla_stream.web.commitments import METRIC_WORDS, short_duration
from sla_stream.web.page_budget import MAX_SERIES, OTHERS

MAX_LABELLED_POINTS = 24
MAX_X_LABELS = 12
# Points in a line past which its dots and line are drawn thin (big dots hide the lines).
DENSE_POINTS = 60
_SCRIPT = re.compile(r"<script\b.*?</script>|<!--.*?-->", re.DOTALL)
_TOOLTIP = re.compile(r'<desc class="[^"]*">[^<]*</desc>')
_REACTIVE = re.compile(r" (?:reactive|tooltip-trigger)\b")
# pygal writes coordinates with 6 to 15 decimals; one is a tenth of a pixel. (No label has 4.)
_PRECISE = re.compile(r"(\.\d)\d{3,}")
PALETTE = (
    "#1f6feb",  # blue
    "#d9480f",  # orange
    "#2f9e44",  # green
    "#7048e8",  # violet
    "#c2255c",  # pink
    "#0c8599",  # teal
    "#e67700",  # amber
    "#495057",  # grey
    "#5c940d",  # lime
    "#862e9c",  # grape
    "#1098ad",  # cyan
)
OTHERS_COLOUR = "#adb5bd"
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
    svg = _TOOLTIP.sub("", _SCRIPT.sub("", chart.render(is_unicode=True)))
    return _PRECISE.sub(r"\1", _REACTIVE.sub("", svg))


def _short(label: str) -> str:
    # An hour reads `2016-04-01T09:00-03:00`; on an axis `04-01 09:00` is enough.
    return label[5:16].replace("T", " ") if "T" in label else label


def _x_labels(chart: Any, labels: list[str]) -> None:
    shown = [_short(label) for label in labels]
    chart.x_labels = shown
    if len(shown) > MAX_X_LABELS:  # every label would overlap; about a dozen, all in the table
        every = -(-len(shown) // MAX_X_LABELS)
        chart.x_labels_major = shown[::every]
        chart.show_minor_x_labels = False
    if len(shown) > 6:
        chart.x_label_rotation = 30


def _dots(points: int) -> float:
    return 4 if points <= MAX_LABELLED_POINTS else 2.5 if points <= DENSE_POINTS else 1.2


def adherence_chart(data: Mapping[str, Any], target: float | Mapping[str, float]) -> str:
    """Portfolio adherence per period for each metric, in %, and the target as a black line:
    one target for all, or one per metric (a contract's own service levels) when they differ.
    Update cycles are drawn only where some settled in the range (few contracts keep them)."""
    labels = data["periods"]
    labelled = len(labels) <= MAX_LABELLED_POINTS
    metrics = {
        m: rows
        for m, rows in data["metrics"].items()
        if m != "update" or any(r["denominator"] for r in rows["periods"])
    }
    targets = target if isinstance(target, Mapping) else dict.fromkeys(metrics, target)
    targets = {m: v for m, v in targets.items() if m in metrics}
    distinct = sorted(set(targets.values()), reverse=True)
    chart = pygal.Line(
        **_config(
            (*PALETTE[: len(metrics)], *([TARGET_COLOUR, "#868e96"][: len(distinct)])),
            range=(0, 100),
            print_labels=labelled,
            value_formatter=lambda v: f"{v:.0f} %",
            dots_size=_dots(len(labels)),
        )
    )
    _x_labels(chart, labels)
    for metric, rows in metrics.items():
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
    for value in distinct:
        named = [METRIC_WORDS[m] for m, v in targets.items() if v == value]
        title = f"target {100 * value:g} %"
        if len(distinct) > 1:
            title = f"{' and '.join(named)} target {100 * value:g} %"
        chart.add(
            title,
            [100 * value] * len(labels),
            show_dots=False,
            print_labels=False,
            stroke_style={"width": 2.5},  # solid: the guide lines are dashed
        )
    return _render(chart)


def breaches_chart(data: Mapping[str, Any]) -> str:
    """Breached clocks per calendar quarter, one bar per contract (the most breached, and the
    rest as "all others" past `MAX_SERIES`)."""
    contracts = dict(data["contracts"])
    if len(contracts) > MAX_SERIES:
        ranked = sorted(contracts, key=lambda c: (-sum(contracts[c]), c))
        rest = ranked[MAX_SERIES - 1 :]
        others = [sum(contracts[c][i] for c in rest) for i in range(len(data["quarters"]))]
        contracts = {c: contracts[c] for c in ranked[: MAX_SERIES - 1]} | {OTHERS: others}
    top = max([c for counts in contracts.values() for c in counts], default=0)
    chart = pygal.Bar(
        **_config(print_values=True, value_formatter=lambda v: f"{v:g}", range=(0, max(top, 1)))
    )
    if contracts:  # pygal fails on y labels of a chart with no series (no reports)
        chart.y_labels = _integer_ticks(max(top, 1))
    chart.x_labels = data["quarters"]
    for contract, counts in contracts.items():
        chart.add(contract, [c or None for c in counts])
    return _render(chart)


def _integer_ticks(top: int, most: int = 8) -> list[int]:
    step = max(1, -(-top // most))
    return list(range(0, top + step, step))


UNITS = (("min", 60.0, 2 * 3600.0), ("h", 3600.0, 72 * 3600.0), ("days", 86400.0, float("inf")))


def _unit(seconds: float) -> tuple[str, float]:
    """Minutes, hours or days: whichever keeps the axis numbers readable."""
    return next((name, size) for name, size, below in UNITS if seconds < below)


# Axis ticks of response times, in seconds: decades of seconds, minutes, hours and days.
TIME_TICKS_S = (1, 10, 60, 600, 3600, 36_000, 86_400, 864_000, 8_640_000)
FASTEST_SHOWN_S = 60.0  # the axis floor unless everything is faster


def trend_chart(
    per_category: Mapping[str, list[dict[str, Any]]], periods: list[str], key: str = "median_s"
) -> str:
    """One quantile (`median_s` or `p90_s`) of response time per category, per period; a
    category's colour is the same in every chart of the page, "all others" is grey.

    On a logarithmic axis: response times span minutes to weeks, and on a linear one a few
    slow days flatten every other line onto the floor. Times under a minute (a clock stopped
    before much business time passed) sit on the axis floor. The logarithm is taken here and
    the axis labelled in durations: pygal's own logarithmic mode bridges gaps (empty periods)."""
    names = list(per_category)[:MAX_SERIES]
    colors = tuple(
        OTHERS_COLOUR if name == OTHERS else PALETTE[i % len(PALETTE)]
        for i, name in enumerate(names)
    )
    rows = [{r["period"]: r[key] for r in per_category[name]} for name in names]
    positive = [v for row in rows for v in row.values() if v]
    top = max(positive, default=3600.0)
    floor = FASTEST_SHOWN_S if top > 10 * FASTEST_SHOWN_S else min(positive, default=1.0)
    ticks = [t for t in TIME_TICKS_S if floor <= t <= top * 1.5] or [floor, top]
    chart = pygal.Line(
        **_config(
            colors or PALETTE,
            value_formatter=lambda v: short_duration(10**v),
            dots_size=_dots(len(periods)),
            stroke_style={"width": 1.2 if len(periods) > DENSE_POINTS else 2},
            range=(math.log10(floor), math.log10(max(top * 1.2, ticks[-1]))),
            height=300,
        )
    )
    if names:  # pygal fails on y labels of a chart with no series (nothing settled in range)
        chart.y_labels = [{"value": math.log10(t), "label": short_duration(t)} for t in ticks]
    _x_labels(chart, periods)
    for name, row in zip(names, rows, strict=True):
        values = [
            None if row.get(p) is None else round(math.log10(max(floor, row[p])), 4)
            for p in periods
        ]
        extra = {"stroke_style": {**DASHED, "width": 1.5}} if name == OTHERS else {}
        chart.add(name, values, **extra)
    return _render(chart)
