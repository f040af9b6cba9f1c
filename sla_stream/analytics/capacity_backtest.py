"""The capacity backtest: fit before a cut, predict each later cell's first-response adherence.

Protocol (docs/capacity.md): incidents opened in [cut - fit_days, cut) train the model and the
Erlang C reference; incidents opened in [cut, end) are scored, in two sets of cells:

- group x ISO week: the `top_groups` teams with most training incidents, weeks with at least
  `min_cell` scored incidents; "same as last week" is the team's rate the ISO week before;
- hour of the week (168 cells, the whole desk): "same as last week" is that hour's rate in the
  last week before the cut (the training rate where that hour had no incident).

Each cell is predicted from its incidents' actual arrivals and staffing: the median of the
Poisson-binomial of their probabilities (`capacity_error`), the forecast with the least expected
absolute error; the error is the mean absolute difference in adherence points (0-100) over the
cells, printed beside the noise floor of each cell set.

The fitted window is chosen without looking at the scored period (`select_fit_days`): each
candidate is fitted before a validation cut `validation_days` before the cut, scored on
[validation cut, cut), and the best is refitted up to the cut and scored once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from sla_stream.analytics.capacity_erlang import ErlangReference
from sla_stream.analytics.capacity_error import expected_abs_error, median_rate
from sla_stream.analytics.capacity_history import History, IncidentRecord, hour_of_week
from sla_stream.analytics.capacity_model import (
    DESK_AGENTS,
    DESK_ARRIVALS,
    TEAM_AGENTS,
    TEAM_ARRIVALS,
    AdherenceModel,
    Load,
    feature_rows,
    iso_week,
    labels,
    met,
    rates,
)
from sla_stream.analytics.capacity_open import IncidentModel, OpenState


@dataclass(frozen=True)
class Protocol:
    cut: datetime
    end: datetime
    fit_days: float = 30.0  # the most recent regime: March 2016 was a backlog the desk cleared
    within_s: float = 3600.0
    top_groups: int = 10
    min_cell: int = 20
    erlang_fit_days: float = 61.0
    validation_days: float = 16.0  # 2016: fit up to mid-April, validate on late April


FIT_DAYS_CANDIDATES = (30.0, 45.0)  # the window before the validation cut must fit in history


@dataclass
class Fitted:
    """What a backtest (or a plan) fitted: the models, the rates they knew, Erlang C beside them.

    `model` (staffing only, monotone) answers what-ifs; `incident` forecasts the scored cells.
    """

    model: AdherenceModel
    load: Load
    known: Any
    erlang_team: ErlangReference
    erlang_desk: ErlangReference
    train: list[IncidentRecord]
    incident: IncidentModel


def _cells(keys: list[Any]) -> dict[Any, np.ndarray]:
    grouped: dict[Any, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        grouped[key].append(i)
    return {k: np.array(v) for k, v in grouped.items()}


def fit(history: History, protocol: Protocol, seed: int = 0) -> Fitted:
    """Fit the model on [cut - fit_days, cut) and Erlang C on [cut - erlang_fit_days, cut)."""
    start = protocol.cut - timedelta(days=protocol.fit_days)
    train = history.between(start, protocol.cut)
    if not train:
        raise ValueError(f"no incident opened between {start} and {protocol.cut}")
    known = rates(train, history.incidents, protocol.within_s)
    load = Load(history)
    rows, y = feature_rows(train, load, known), labels(train, protocol.within_s)
    model = AdherenceModel(protocol.within_s, seed).fit(rows, y)
    state = OpenState(history, protocol.within_s)
    incident = IncidentModel(state, seed).fit(train, rows, y)
    erlang_start = protocol.cut - timedelta(days=protocol.erlang_fit_days)
    wide = history.between(erlang_start, protocol.cut)
    wide_rows, wide_y = feature_rows(wide, load, known), labels(wide, protocol.within_s)
    team_cells = list(_cells([(r.team, iso_week(r.opened_at)) for r in wide]).values())
    desk_cells = list(_cells([hour_of_week(r.opened_at, history.zone) for r in wide]).values())
    within_min = protocol.within_s / 60.0
    erlang_team = ErlangReference(within_min).fit(
        wide_rows[:, TEAM_ARRIVALS], wide_rows[:, TEAM_AGENTS], team_cells, wide_y
    )
    erlang_desk = ErlangReference(within_min).fit(
        wide_rows[:, DESK_ARRIVALS], wide_rows[:, DESK_AGENTS], desk_cells, wide_y
    )
    return Fitted(model, load, known, erlang_team, erlang_desk, train, incident)


def _score(
    cells: dict[Any, np.ndarray],
    y: np.ndarray,
    predicted: np.ndarray,
    staffing: np.ndarray,
    erlang: np.ndarray,
    last_week: dict[Any, float],
    label: Any,
) -> dict[str, Any]:
    rows = []
    for key, index in sorted(cells.items(), key=lambda kv: str(kv[0])):
        rows.append(
            {
                "cell": label(key),
                "n": len(index),
                "actual": round(100 * float(y[index].mean()), 2),
                "predicted": round(100 * median_rate(predicted[index]), 2),
                "staffing_model": round(100 * median_rate(staffing[index]), 2),
                "last_week": round(100 * last_week[key], 2),
                "erlang_c": round(100 * float(erlang[index].mean()), 2),
            }
        )

    def mae(column: str) -> float:
        return round(float(np.mean([abs(r[column] - r["actual"]) for r in rows])), 2)

    # The floors: a forecaster knowing each cell's distribution still misses by E|X/n - median|.
    # "binomial": every incident at the cell's realized rate; "model": the model's p_i taken
    # as true (sharper per-incident chances would make it lower).
    binomial = [expected_abs_error(np.full(len(i), y[i].mean())) for i in cells.values()]
    sharp = [expected_abs_error(predicted[i]) for i in cells.values()]
    return {
        "mae": mae("predicted"),
        "staffing_model_mae": mae("staffing_model"),
        "last_week_mae": mae("last_week"),
        "erlang_c_mae": mae("erlang_c"),
        "noise_floor": {
            "binomial": round(100 * float(np.mean(binomial)), 2),
            "model": round(100 * float(np.mean(sharp)), 2),
        },
        "cells": rows,
    }


def run(history: History, protocol: Protocol, seed: int = 0) -> dict[str, Any]:
    """Both cell sets, with the baselines from the same run; figures in points (0-100)."""
    fitted = fit(history, protocol, seed)
    test = history.between(protocol.cut, protocol.end)
    if not test:
        raise ValueError(f"no incident opened between {protocol.cut} and {protocol.end}")
    rows, y = feature_rows(test, fitted.load, fitted.known), labels(test, protocol.within_s)
    staffing = fitted.model.predict(rows)
    predicted = fitted.incident.predict(test, rows)
    known = fitted.known
    top = {t for t, _ in Counter(r.team for r in fitted.train).most_common(protocol.top_groups)}
    group_week = {
        k: v
        for k, v in _cells([(r.team, iso_week(r.opened_at)) for r in test]).items()
        if k[0] in top and len(v) >= protocol.min_cell
    }
    team_erlang = fitted.erlang_team.predict(rows[:, TEAM_ARRIVALS], rows[:, TEAM_AGENTS])
    hours = _cells([hour_of_week(r.opened_at, history.zone) for r in test])
    desk_erlang = fitted.erlang_desk.predict(rows[:, DESK_ARRIVALS], rows[:, DESK_AGENTS])
    return {
        "protocol": {
            "fit_from": (protocol.cut - timedelta(days=protocol.fit_days)).isoformat(),
            "cut": protocol.cut.isoformat(),
            "end": protocol.end.isoformat(),
            "within_s": protocol.within_s,
            "train_incidents": len(fitted.train),
            "test_incidents": len(test),
            "erlang_c_team": {
                "aht_min": fitted.erlang_team.aht_min,
                "on_queue": fitted.erlang_team.on_queue,
            },
            "erlang_c_desk": {
                "aht_min": fitted.erlang_desk.aht_min,
                "on_queue": fitted.erlang_desk.on_queue,
            },
        },
        "incidents": _sharpness(y, predicted, staffing),
        "group_week": _score(
            group_week,
            y,
            predicted,
            staffing,
            team_erlang,
            {k: known.last_week(k[0], k[1]) for k in group_week},
            lambda k: {"team": k[0], "week": f"{k[1][0]}-W{k[1][1]:02d}"},
        ),
        "hour_of_week": _score(
            hours,
            y,
            predicted,
            staffing,
            desk_erlang,
            _last_week_by_hour(history, protocol, known.desk),
            lambda k: {"hour_of_week": k},
        ),
    }


def _sharpness(y: np.ndarray, predicted: np.ndarray, staffing: np.ndarray) -> dict[str, Any]:
    """How well each model ranks and prices the scored incidents one by one."""
    both = len(set(y.tolist())) == 2

    def scores(p: np.ndarray) -> dict[str, float | None]:
        return {
            "auc": round(float(roc_auc_score(y, p)), 4) if both else None,
            "log_loss": round(float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])), 4),
        }

    return {
        "n": len(y),
        "base_rate": round(float(y.mean()), 4),
        "model": scores(predicted),
        "staffing_model": scores(staffing),
    }


def select_fit_days(
    history: History, protocol: Protocol, candidates: tuple[float, ...] = FIT_DAYS_CANDIDATES
) -> tuple[Protocol, dict[str, Any]]:
    """The fit window with the lowest validation MAE (mean of both cell sets), before the cut."""
    validation_cut = protocol.cut - timedelta(days=protocol.validation_days)
    scores = {}
    for days in candidates:
        trial = replace(protocol, cut=validation_cut, end=protocol.cut, fit_days=days)
        result = run(history, trial)
        scores[days] = {
            "group_week_mae": result["group_week"]["mae"],
            "hour_of_week_mae": result["hour_of_week"]["mae"],
        }
    best = min(candidates, key=lambda d: sum(scores[d].values()))
    return replace(protocol, fit_days=best), {
        "validated_on": [validation_cut.isoformat(), protocol.cut.isoformat()],
        "candidates": [{"fit_days": d, **scores[d]} for d in candidates],
        "chosen_fit_days": best,
    }


def _last_week_by_hour(history: History, protocol: Protocol, fallback: float) -> dict[int, float]:
    week = history.between(protocol.cut - timedelta(days=7), protocol.cut)
    hits, totals = Counter(), Counter()
    for r in week:
        how = hour_of_week(r.opened_at, history.zone)
        totals[how] += 1
        hits[how] += met(r, protocol.within_s)
    return {h: (hits[h] / totals[h] if totals[h] else fallback) for h in range(168)}
