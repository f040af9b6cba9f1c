"""Forecast alerts against fixed-fraction warnings at an equal number of alerted incidents.

Every incumbent warns when a clock has used a fixed fraction of its allowance. Over the test
incidents' decision points: the fixed-fraction rule alerts an incident at its first decision
point where the resolution clock has used `WARN_FRACTION` of its allowance; the forecast alerts
at its first decision point where the probability reaches a level, the level set so that as
many incidents are alerted as by the rule. Then: how many eventual breaches each flagged, and
how early (hours after opening; the earlier, the more time to act).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sla_stream.analytics.forecast_data import DecisionRow

WARN_FRACTION = 0.5


def alert_budget(
    rows: Sequence[DecisionRow], probabilities: np.ndarray, breached: dict[str, bool]
) -> dict[str, Any]:
    """The comparison over `rows` (decision rows of the test incidents) and their forecasts."""
    decisions: dict[str, list[tuple[float, float, float]]] = {}
    for row, p in zip(rows, probabilities, strict=True):
        age = float(row.features["age_h"] or 0.0)  # type: ignore[arg-type]
        fraction = float(row.features["res_fraction"] or 0.0)  # type: ignore[arg-type]
        decisions.setdefault(row.incident_id, []).append((age, float(p), fraction))
    fixed = {
        i: min(age for age, _, f in ds if f >= WARN_FRACTION)
        for i, ds in decisions.items()
        if any(f >= WARN_FRACTION for _, _, f in ds)
    }
    if not fixed:
        return {"alerts": 0}
    peaks = sorted((max(p for _, p, _ in ds) for ds in decisions.values()), reverse=True)
    level = peaks[len(fixed) - 1]
    forecast = {
        i: min(age for age, p, _ in ds if p >= level)
        for i, ds in decisions.items()
        if any(p >= level for _, p, _ in ds)
    }
    breaches = {i for i in decisions if breached[i]}
    both = [i for i in breaches if i in fixed and i in forecast]
    return {
        "incidents": len(decisions),
        "breaches": len(breaches),
        "level": level,
        "fixed_fraction": _flagged(fixed, breaches),
        "forecast": _flagged(forecast, breaches),
        "hours_earlier_mean": (
            float(np.mean([fixed[i] - forecast[i] for i in both])) if both else None
        ),
    }


def _flagged(alerts: dict[str, float], breaches: set[str]) -> dict[str, Any]:
    hits = [alerts[i] for i in alerts if i in breaches]
    return {
        "alerts": len(alerts),
        "breaches_flagged": len(hits),
        "mean_hours_after_opening": float(np.mean(hits)) if hits else None,
    }


def render_budget(budget: dict[str, Any]) -> str:
    if not budget.get("alerts", 1):
        return "alert budget: the fixed-fraction rule alerted no incident"
    fixed, fc = budget["fixed_fraction"], budget["forecast"]
    earlier = budget["hours_earlier_mean"]
    return (
        f"at an equal alert budget ({fixed['alerts']} fixed-fraction alerts at "
        f"{WARN_FRACTION:.0%} of the allowance, {fc['alerts']} forecast alerts at p >= "
        f"{budget['level']:.2f}), of {budget['breaches']} eventual breaches the fixed fraction "
        f"flagged {fixed['breaches_flagged']} (on average {_hours(fixed)} after opening), the "
        f"forecast {fc['breaches_flagged']} ({_hours(fc)}); of breaches flagged by both, the "
        f"forecast's alert came {_sooner(earlier)} on average"
    )


def _sooner(hours: float | None) -> str:
    if hours is None:
        return "-"
    return f"{hours:.1f} h earlier" if hours >= 0 else f"{-hours:.1f} h later"


def _hours(flagged: dict[str, Any]) -> str:
    value = flagged["mean_hours_after_opening"]
    return "-" if value is None else f"{value:.1f} h"
