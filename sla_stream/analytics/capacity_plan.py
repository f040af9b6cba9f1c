"""Staffing a target needs, per team and hour of the week, from a fitted adherence model.

For each hour of the week a team had incidents in the fitted window, those incidents are
predicted again as if the team had n agents (n = 0..max_agents): the cell's curve. From it:
the agents needed for the target, the predicted adherence at today's staffing (roster, else
the mean of active agents), the marginal adherence of one more agent, and a band from the
backtest's residuals. What-ifs change the inputs, not the model:

- arrivals x k scales the team's and desk's arrivals and carry-over backlog;
- handle time x k and shrinkage s make n agents work like n (1 - s) / k;
- moving a shift rotates a team's current staffing by whole hours;
- merging two teams pools their incidents, arrivals and agents.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sla_stream.analytics.capacity_backtest import Fitted
from sla_stream.analytics.capacity_history import HOURS_PER_WEEK, IncidentRecord, hour_of_week
from sla_stream.analytics.capacity_model import (
    DESK_ARRIVALS,
    TEAM_AGENTS,
    TEAM_ARRIVALS,
    TEAM_BACKLOG,
    feature_rows,
    with_agents,
)


@dataclass(frozen=True)
class WhatIf:
    arrivals: float = 1.0
    handle_time: float = 1.0
    shrinkage: float = 0.0
    shift_hours: dict[str, int] = field(default_factory=dict)
    merge: tuple[str, str] | None = None

    def effective(self, agents: np.ndarray) -> np.ndarray:
        return agents * (1.0 - self.shrinkage) / self.handle_time

    def as_dict(self) -> dict[str, Any]:
        return {
            "arrivals": self.arrivals,
            "handle_time": self.handle_time,
            "shrinkage": self.shrinkage,
            "shift_hours": self.shift_hours,
            "merge": list(self.merge) if self.merge else None,
        }


def cell_curve(fitted: Fitted, rows: np.ndarray, agents: np.ndarray) -> np.ndarray:
    """Mean predicted adherence of `rows` at each staffing in `agents`; never decreasing."""
    stacked = np.vstack([with_agents(rows, n) for n in agents])
    predicted = fitted.model.predict(stacked).reshape(len(agents), len(rows)).mean(axis=1)
    # Nobody answers with no one on duty; the model, which never saw an hour without an agent
    # on an incident's team, would extrapolate flat from one.
    predicted[agents <= 0] = 0.0
    return np.maximum.accumulate(predicted)  # exact monotonicity, whatever float rounding does


def typical(rows: np.ndarray) -> np.ndarray:
    """A cell's incidents with the carry-over a typical week leaves, not each past day's.

    The recommendation is for the hour as planned, every other hour as usual: the carry-over at
    the hour's start is the cell's median, so one past day with an unusual backlog (left by an
    understaffed morning) does not set the plan. The next hour's agents stay as they were
    (setting them to today's did not help on the simulated desks, docs/capacity.md).
    """
    planned = rows.copy()
    planned[:, TEAM_BACKLOG] = np.median(rows[:, TEAM_BACKLOG])
    return planned


def _current(
    fitted: Fitted, team: str, records: list[IncidentRecord], roster: dict[str, list[int]] | None
) -> list[float]:
    if roster is not None and team in roster:
        return [float(a) for a in roster[team]]
    rows = feature_rows(records, fitted.load, fitted.known)
    sums, counts = np.zeros(HOURS_PER_WEEK), np.zeros(HOURS_PER_WEEK)
    for r, agents in zip(records, rows[:, TEAM_AGENTS], strict=True):
        how = hour_of_week(r.opened_at, fitted.load.history.zone)
        sums[how] += agents
        counts[how] += 1
    return [float(s / c) if c else 0.0 for s, c in zip(sums, counts, strict=True)]


def plan(
    fitted: Fitted,
    target: float,
    *,
    teams: list[str],
    roster: dict[str, list[int]] | None = None,
    what_if: WhatIf | None = None,
    band: tuple[float, float] = (0.0, 0.0),
    max_agents: int = 40,
) -> dict[str, Any]:
    """The recommendation for `teams` (JSON-ready; adherence as fractions, band in points)."""
    what_if = what_if or WhatIf()
    zone = fitted.load.history.zone
    by_team: dict[str, list[IncidentRecord]] = defaultdict(list)
    for r in fitted.train:
        by_team[r.team].append(r)
    weeks = max(1.0, (fitted.train[-1].opened_at - fitted.train[0].opened_at).days / 7)
    chosen = list(teams)
    merged_from: dict[str, list[str]] = {t: [t] for t in chosen}
    if what_if.merge:
        a, b = what_if.merge
        chosen = [t for t in chosen if t not in (a, b)] + [f"{a}+{b}"]
        merged_from[f"{a}+{b}"] = [a, b]
    agents = np.arange(max_agents + 1, dtype=float)
    result = []
    predicted_by_team: dict[str, dict[int, float]] = {}
    for team in chosen:
        parts = merged_from[team]
        records = [r for p in parts for r in by_team.get(p, [])]
        if not records:
            continue
        current = np.sum([_current(fitted, p, by_team.get(p, []), roster) for p in parts], axis=0)
        current = np.roll(current, what_if.shift_hours.get(team, 0))
        rows = feature_rows(records, fitted.load, fitted.known)
        rows[:, [TEAM_ARRIVALS, DESK_ARRIVALS, TEAM_BACKLOG]] *= what_if.arrivals
        hours = np.array([hour_of_week(r.opened_at, zone) for r in records])
        if len(parts) > 1:  # pooled: each hour's arrivals are both teams'
            for how in set(hours.tolist()):
                rows[hours == how, TEAM_ARRIVALS] = rows[hours == how, TEAM_ARRIVALS].sum() / weeks
        cells, team_predicted = [], {}
        for how in sorted(set(hours.tolist())):
            cell_rows = typical(rows[hours == how])
            curve = cell_curve(fitted, cell_rows, what_if.effective(agents))
            per_week = int((hours == how).sum()) / weeks
            cell = _cell(how, per_week, float(current[how]), curve, target)
            cell.update(_band(cell["predicted"], band))
            team_predicted[how] = cell["predicted"]
            cells.append(cell)
        predicted_by_team[team] = team_predicted
        weight = np.array([c["arrivals_per_week"] for c in cells])
        overall = float(np.average([c["predicted"] for c in cells], weights=weight))
        result.append({"team": team, "predicted": round(overall, 4), "cells": cells})
    return {
        "target": target,
        "what_if": what_if.as_dict(),
        "teams": result,
        "contracts_at_risk": contracts_at_risk(fitted, predicted_by_team, merged_from, target),
    }


def _cell(
    how: int, per_week: float, now: float, curve: np.ndarray, target: float
) -> dict[str, Any]:
    """One hour of the week: today's agents, the fewest reaching `target`, and the curve."""
    agents = np.arange(len(curve), dtype=float)
    at_now = float(np.interp(now, agents, curve))
    at_more = float(np.interp(now + 1, agents, curve))
    reaching = np.nonzero(curve >= target)[0]
    return {
        "hour_of_week": how,
        "arrivals_per_week": round(per_week, 2),
        "current": round(now, 2),
        "needed": int(reaching[0]) if len(reaching) else None,
        "predicted": round(at_now, 4),
        "marginal": round(at_more - at_now, 4),
        "curve": _trimmed(curve),
    }


def _band(predicted: float, band: tuple[float, float]) -> dict[str, float]:
    """The backtest's error band (points) around a prediction, within 0..1."""
    return {
        "low": round(max(0.0, predicted + band[0] / 100), 4),
        "high": round(min(1.0, predicted + band[1] / 100), 4),
    }


def _trimmed(curve: np.ndarray) -> list[float]:
    """Predicted adherence at 0, 1, 2, ... agents, up to where it stops changing (flat after)."""
    values = [round(float(v), 4) for v in curve]
    while len(values) > 1 and values[-1] == values[-2]:
        values.pop()
    return values


def contracts_at_risk(
    fitted: Fitted,
    predicted: dict[str, dict[int, float]],
    merged_from: dict[str, list[str]],
    target: float,
) -> list[dict[str, Any]]:
    """Contracts whose incidents go to team-hours predicted under the target, worst first."""
    team_of = {p: t for t, parts in merged_from.items() for p in parts}
    zone = fitted.load.history.zone
    totals, under, sums = Counter(), defaultdict(Counter), defaultdict(float)
    for r in fitted.train:
        team = team_of.get(r.team)
        if team is None or team not in predicted:
            continue
        value = predicted[team].get(hour_of_week(r.opened_at, zone))
        if value is None:
            continue
        totals[r.contract_id] += 1
        sums[r.contract_id] += value
        if value < target:
            under[r.contract_id][team] += 1
    rows = []
    for contract, n in totals.items():
        adherence = sums[contract] / n
        if adherence >= target:
            continue
        rows.append(
            {
                "contract": contract,
                "incidents": n,
                "predicted": round(adherence, 4),
                "teams_under_target": [
                    {"team": t, "share": round(k / n, 3)} for t, k in under[contract].most_common()
                ],
            }
        )
    return sorted(rows, key=lambda row: row["predicted"])
