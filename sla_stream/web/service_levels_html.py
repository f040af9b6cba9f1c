"""The dashboard's service-level card: each contract's levels per period, and credits owed."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from sla_stream.web.commitments import METRIC_WORDS


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _level_status(p: Mapping[str, Any]) -> str:
    if p["status"] != "in_progress":
        return str(p["status"])
    if p["headroom"] < 0:
        return "in progress, below target so far"
    more = p["headroom"] + 1
    return f"in progress: {more} more breach{'es' if more != 1 else ''} and it is missed"


def card(model: Mapping[str, Any]) -> str:
    """Each contract's service levels per month or quarter, and the credits owed per quarter."""
    from sla_stream.web.dashboard_html import rate_text  # the page's own (it imports this)

    data = model.get("service_levels") or {}
    if not data.get("periods"):
        return ""
    rows = "".join(
        f'<tr class="{"overdue" if p["status"] == "missed" else ""}" '
        f'data-contract="{_e(p["contract"])}" data-level="{_e(p["service_level"])}" '
        f'data-period="{_e(p["label"])}"><td>{_e(p["contract"])}</td><td>{_e(p["label"])}</td>'
        f"<td>{_e(p['service_level'])}: {_e('/'.join(p['severities']) or 'all')} "
        f"{METRIC_WORDS[p['metric']]}</td>"
        f'<td class="num">{p["objective_percent"]:g} %</td><td class="num">{rate_text(p)}</td>'
        f"<td>{_e(_level_status(p))}</td><td>{_e(p['clause_id'])} {_e(p['clause_title'])}</td>"
        "</tr>"
        for p in data["periods"]
    )
    credits = "".join(
        f'<tr data-contract="{_e(c["contract"])}" data-quarter="{_e(c["quarter"])}">'
        f"<td>{_e(c['contract'])}</td><td>{_e(c['quarter'])}</td>"
        f'<td class="num">{c["amount"]:,.2f} {_e(c["currency"] or "")}</td>'
        f'<td class="num">{c["misses"]}</td><td>{_e(", ".join(c["periods_missed"]) or "-")}</td>'
        "</tr>"
        for c in data["credits"]
    )
    credits_table = (
        '<table class="credits"><tr><th>contract</th><th>quarter</th><th class="num">credit owed'
        '</th><th class="num">missed</th><th>periods missed</th></tr>' + credits + "</table>"
        if credits
        else ""
    )
    return (
        '<section class="card" id="service-levels"><h2>Service levels and credits</h2>'
        '<p class="note">per month or quarter in the contract\'s zone: met ÷ settled against '
        "the objective; in progress, how many more breaches miss it; credits owed for ended "
        "periods</p>"
        '<div class="scroll"><table class="levels"><tr><th>contract</th><th>period</th>'
        '<th>service level</th><th class="num">objective</th><th class="num">figure</th>'
        "<th>status</th><th>clause</th></tr>"
        + rows
        + "</table></div>"
        + credits_table
        + "</section>"
    )
