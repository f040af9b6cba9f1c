"""The forecast protocol on a ServiceNow log: out-of-time split, decision points, baselines.

1. Import the log with the ServiceNow importer and mapping (every update as an event) and run
   the engine and the desk over it (`forecast_data`); label = the log's final `made_sla` is
   false, read apart from the features.
2. Train on incidents opened 1 Mar-15 Apr 2016 (instance zone) whose outcome (the final event)
   is known before 1 May; the rest of them ("straddlers") are dropped and counted. Test on
   incidents opened in May. The model is fitted on the training rows outside the calibration
   slice (weighted by recency: the desk drifts) and calibrated on the slice. The slice is
   24 Mar-5 Apr, not the window's last days: an incident opened in mid-April is in the
   training set only if it closed within two weeks, so there the known outcomes are the quick,
   met ones (at 48 h, 42-58 % breached among them against 65-75 % among all), and a map fitted
   there under-predicts by 0.2. Chosen on the training window only.
3. Per decision point: n, base rate, AUC with a 1,000-resample bootstrap 95 % interval, Brier,
   ECE (10 bins), the P3-only AUC, and baselines from the same run (priority, the (priority,
   group) rate, logistic regression on the same features, the fixed-fraction warning, i.e. the
   elapsed fraction of the resolution allowance, as a score).
4. Variants: the same model with the desk-state features, and the model recalibrated online
   (each test day, on the decision rows whose outcome was known before that day).
5. The alert budget (`forecast_budget`): forecast alerts against fixed-fraction warnings at an
   equal number of alerted test incidents.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sla_stream.analytics import forecast_metrics as fm
from sla_stream.analytics.forecast import RiskModel, ages, feature_names, train
from sla_stream.analytics.forecast_budget import alert_budget, render_budget
from sla_stream.analytics.forecast_data import (
    DECISION_POINTS,
    DecisionRow,
    decision_rows,
    group_incidents,
)
from sla_stream.core.contracts import load_contracts
from sla_stream.importers.servicenow import convert, open_log
from sla_stream.importers.servicenow_mapping import load_mapping

LOG = Path("examples/servicenow/data/incident_event_log.csv.gz")
MAPPING = Path("examples/servicenow/mapping.yaml")
CONTRACTS = Path("examples/servicenow/contracts.yaml")


@dataclass(frozen=True)
class Protocol:
    """The dates of the split, in the instance's zone."""

    train_from: str = "2016-03-01"
    train_to: str = "2016-04-16"  # exclusive: opened up to 15 Apr
    known_before: str = "2016-05-01"
    test_from: str = "2016-05-01"
    test_to: str = "2016-06-01"
    calibration_from: str = "2016-03-24"
    calibration_to: str = "2016-04-06"
    recency_days: float = 14.0  # weight of a training row: exp(-age of its opening / this)
    recalibration_from_days: int = 28  # online: incidents opened 28..14 days before the day
    recalibration_to_days: int = 14


@dataclass
class History:
    rows: list[DecisionRow]
    breached: dict[str, bool]
    zone: ZoneInfo


def load_history(
    log: Path = LOG, mapping_path: Path = MAPPING, contracts_path: Path = CONTRACTS
) -> History:
    mapping = load_mapping(mapping_path)
    contracts = load_contracts(contracts_path)
    breaches = read_breaches(log)  # first: a log without the label is refused at once
    with open_log(log) as source:
        incidents = group_incidents(convert(source, mapping, every_update=True))
    return History(decision_rows(incidents, contracts), breaches, mapping.zone())


def read_breaches(log: Path) -> dict[str, bool]:
    """Incident number -> whether its final row (highest `sys_mod_count`) says `made_sla` false.

    The label only: `made_sla` is the closure verdict, never a feature."""
    final: dict[str, tuple[int, bool]] = {}
    with open_log(log) as source:
        reader = csv.DictReader(source)
        absent = {"number", "made_sla", "sys_mod_count"} - set(reader.fieldnames or ())
        if absent:
            raise LabelError(f"{log}: no column {', '.join(sorted(absent))}: nothing to label")
        for row in reader:
            number, made = row["number"], row["made_sla"].strip().lower()
            if made not in ("true", "false"):
                continue
            mod = int(row["sys_mod_count"])
            if number not in final or mod >= final[number][0]:
                final[number] = (mod, made == "false")
    return {number: breached for number, (_, breached) in final.items()}


class LabelError(ValueError):
    """The log cannot give the label (a column is missing)."""


@dataclass
class Split:
    train: np.ndarray  # indices into the labelled rows
    calibration: np.ndarray  # boolean over `train`: the calibration slice
    test: np.ndarray
    straddlers: int  # training-window incidents whose outcome came too late


def split(rows: Sequence[DecisionRow], zone: ZoneInfo, p: Protocol) -> Split:
    def local(day: str) -> datetime:
        return datetime.fromisoformat(day).replace(tzinfo=zone)

    train_from, train_to = local(p.train_from), local(p.train_to)
    known_before, test_from, test_to = local(p.known_before), local(p.test_from), local(p.test_to)
    cal_from, cal_to = local(p.calibration_from), local(p.calibration_to)
    train, cal, test, late = [], [], [], set()
    for i, row in enumerate(rows):
        if train_from <= row.opened_at < train_to:
            known = row.outcome_known_at
            if known is None or known >= known_before:
                late.add(row.incident_id)
                continue
            train.append(i)
            cal.append(cal_from <= row.opened_at < cal_to)
        elif test_from <= row.opened_at < test_to:
            test.append(i)
    return Split(np.array(train), np.array(cal, dtype=bool), np.array(test), len(late))


def evaluate(history: History, p: Protocol | None = None) -> dict[str, Any]:
    """The protocol's report: one entry per decision point, plus variants and the split."""
    p = p or Protocol()
    rows = [r for r in history.rows if r.incident_id in history.breached]
    y = np.array([history.breached[r.incident_id] for r in rows], dtype=bool)
    feats = [r.features for r in rows]
    s = split(rows, history.zone, p)
    weights = recency_weights([rows[i] for i in s.train], p.recency_days)
    train_feats = [feats[i] for i in s.train]
    models = {
        desk: train(train_feats, y[s.train], s.calibration, with_desk=desk, weights=weights)
        for desk in (False, True)
    }
    points = np.array([r.point for r in rows])
    test_feats = [feats[i] for i in s.test]
    scores = {desk: m.predict(test_feats) for desk, m in models.items()}
    recalibrated = _recalibrate_online(models[False], rows, feats, y, s.test, points, p)
    report: list[dict[str, Any]] = []
    variants: dict[str, dict[str, Any]] = {"with_desk": {}, "online_recalibration": {}}
    for point in DECISION_POINTS:
        at = points[s.test] == point
        if not at.any():
            continue
        report.append(_point_report(point, rows, feats, y, s, points, scores[False][at], at))
        yt = y[s.test][at]
        for name, probs in (
            ("with_desk", scores[True][at]),
            ("online_recalibration", recalibrated[at]),
        ):
            variants[name][point] = _scores(yt, probs)
    return {
        "decision_points": report,
        "variants": variants,
        "alert_budget": alert_budget(
            [rows[i] for i in s.test],
            scores[False],
            {r.incident_id: bool(v) for r, v in zip(rows, y, strict=True)},
        ),
        "split": {
            "train_rows": len(s.train),
            "calibration_rows": int(s.calibration.sum()),
            "test_rows": len(s.test),
            "straddlers_dropped": s.straddlers,
            "model_version": models[False].version,
        },
    }


def recency_weights(rows: Sequence[DecisionRow], days: float) -> np.ndarray:
    """exp(-(latest opening - this opening) / days): recent regimes count more."""
    opened = np.array([r.opened_at.timestamp() for r in rows])
    return np.exp((opened - opened.max()) / (days * 86400.0))


def _scores(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    return {
        "auc": fm.auc(y, probs),
        "brier": fm.brier(y, probs),
        "ece": fm.ece(y, probs),
    }


def _point_report(
    point: str,
    rows: Sequence[DecisionRow],
    feats: Sequence[dict],
    y: np.ndarray,
    s: Split,
    points: np.ndarray,
    probs: np.ndarray,
    at: np.ndarray,
) -> dict[str, Any]:
    test = s.test[at]
    train_idx = s.train[points[s.train] == point]
    yt = y[test]
    low, high = fm.auc_interval(yt, probs)
    p3 = np.array([feats[i]["severity"] == "P3" for i in test])
    return {
        "decision_point": point,
        "n": len(test),
        "base_rate": float(yt.mean()),
        "auc": fm.auc(yt, probs),
        "auc_low": low,
        "auc_high": high,
        "brier": fm.brier(yt, probs),
        "ece": fm.ece(yt, probs),
        "auc_p3": fm.auc(yt[p3], probs[p3]),
        "baselines": _baselines(feats, y, train_idx, test),
    }


def _baselines(
    feats: Sequence[dict], y: np.ndarray, train_idx: np.ndarray, test: np.ndarray
) -> dict[str, float]:
    yt = y[test]
    prior = float(y[train_idx].mean())
    by_severity = _rates(feats, y, train_idx, lambda f: f["severity"], prior)
    priority = [by_severity.get(feats[i]["severity"], prior) for i in test]

    def group_rate(i: int) -> float:
        fallback = by_severity.get(feats[i]["severity"], prior)
        return pairs.get((feats[i]["severity"], feats[i]["team"]), fallback)

    pairs = _rates(feats, y, train_idx, lambda f: (f["severity"], f["team"]), None, by_severity)
    fraction = [feats[i]["res_fraction"] or 0.0 for i in test]
    return {
        "priority": fm.auc(yt, np.array(priority)),
        "priority_group": fm.auc(yt, np.array([group_rate(i) for i in test])),
        "logistic": fm.auc(yt, _logistic(feats, y, train_idx, test)),
        "fixed_fraction": fm.auc(yt, np.array(fraction)),
    }


def _rates(feats, y, idx, key, prior, parents=None, weight: float = 20.0) -> dict:
    """Breach rate per key over training rows, shrunk toward the parent rate (or `prior`)."""
    sums: dict[Any, list[float]] = {}
    for i in idx:
        k = key(feats[i])
        acc = sums.setdefault(k, [0.0, 0.0])
        acc[0] += y[i]
        acc[1] += 1
    out = {}
    for k, (breaches, n) in sums.items():
        parent = prior if parents is None else parents.get(k[0], 0.5)
        out[k] = (breaches + weight * parent) / (n + weight) if parent is not None else breaches / n
    return out


def _logistic(feats, y, train_idx, test) -> np.ndarray:
    numeric, categorical = feature_names(False)
    width = len(numeric)

    def matrix(idx: np.ndarray) -> np.ndarray:
        x = np.empty((len(idx), width + len(categorical)), dtype=object)
        for r, i in enumerate(idx):
            f = feats[i]
            x[r, :width] = [np.nan if f[n] is None else float(f[n]) for n in numeric]
            x[r, width:] = ["?" if f[c] is None else str(f[c]) for c in categorical]
        return x

    from sklearn.impute import SimpleImputer

    columns = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()),
             list(range(width))),
            ("cat", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20),
             list(range(width, width + len(categorical)))),
        ]
    )  # fmt: skip
    model = make_pipeline(columns, LogisticRegression(max_iter=2000, C=0.5))
    model.fit(matrix(train_idx), y[train_idx])
    return model.predict_proba(matrix(test))[:, 1]


def _recalibrate_online(
    model: RiskModel,
    rows: Sequence[DecisionRow],
    feats: Sequence[dict],
    y: np.ndarray,
    test: np.ndarray,
    points: np.ndarray,
    p: Protocol,
) -> np.ndarray:
    """Each test row's raw score mapped by an isotonic fit, per decision point and day, on the
    rows of incidents opened 28 to 14 days before that day whose outcome was known before it:
    only outcomes known at the decision, from a cohort old enough to have mostly settled."""
    day_s = 86400.0
    known = np.array(
        [r.outcome_known_at.timestamp() if r.outcome_known_at else np.inf for r in rows]
    )
    opened = np.array([r.opened_at.timestamp() for r in rows])
    raw = model.raw(list(feats))
    out = model.calibrate(raw[test], ages([feats[i] for i in test]))
    days = np.floor(np.array([rows[i].at.timestamp() for i in test]) / day_s) * day_s
    for point in np.unique(points[test]):
        for day in np.unique(days[points[test] == point]):
            pick = (
                (points == point)
                & (known < day)
                & (opened >= day - p.recalibration_from_days * day_s)
                & (opened < day - p.recalibration_to_days * day_s)
            )
            if pick.sum() < 50 or y[pick].all() or not y[pick].any():
                continue
            fit = IsotonicRegression(out_of_bounds="clip").fit(raw[pick], y[pick])
            mine = (points[test] == point) & (days == day)
            out[mine] = fit.predict(raw[test][mine])
    return out


def render_table(report: dict[str, Any]) -> str:
    """The report as a fixed-width table, one line per decision point."""
    head = (
        f"{'point':<12}{'n':>6}{'base':>7}{'AUC [95% CI]':>22}{'Brier':>7}{'ECE':>7}{'P3 AUC':>8}"
        f"{'prio':>7}{'p+grp':>7}{'logit':>7}{'frac':>7}{'+desk':>7}{'recal':>7}{'r.ECE':>7}"
    )
    lines = [head]
    v = report["variants"]
    for d in report["decision_points"]:
        b, name = d["baselines"], d["decision_point"]
        ci = f"{d['auc']:.3f} [{d['auc_low']:.3f}, {d['auc_high']:.3f}]"
        lines.append(
            f"{name:<12}{d['n']:>6}{d['base_rate']:>7.2f}{ci:>22}{d['brier']:>7.3f}"
            f"{d['ece']:>7.3f}{d['auc_p3']:>8.3f}{b['priority']:>7.3f}{b['priority_group']:>7.3f}"
            f"{b['logistic']:>7.3f}{b['fixed_fraction']:>7.3f}{v['with_desk'][name]['auc']:>7.3f}"
            f"{v['online_recalibration'][name]['auc']:>7.3f}"
            f"{v['online_recalibration'][name]['ece']:>7.3f}"
        )
    s = report["split"]
    lines.append(
        f"train rows {s['train_rows']} (calibration slice {s['calibration_rows']}), "
        f"test rows {s['test_rows']}, straddlers dropped {s['straddlers_dropped']}, "
        f"model {s['model_version']}"
    )
    if "alert_budget" in report:
        lines.append(render_budget(report["alert_budget"]))
    return "\n".join(lines)
