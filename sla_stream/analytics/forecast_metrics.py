"""Scores of a probabilistic forecast: AUC (with a bootstrap interval), Brier score, ECE."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

BOOTSTRAP_RESAMPLES = 1000
SEED = 20160501


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half); NaN with one class only."""
    y = np.asarray(labels, dtype=bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auc_interval(
    labels: np.ndarray,
    scores: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC: rows resampled with replacement."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(y), size=(resamples, len(y)))
    ys, ss = y[picks], s[picks]
    positives = ys.sum(axis=1)
    negatives = len(y) - positives
    ranks = rankdata(ss, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = ((ranks * ys).sum(axis=1) - positives * (positives + 1) / 2) / (
            positives * negatives
        )
    values = values[np.isfinite(values)]
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    y = np.asarray(labels, dtype=float)
    return float(np.mean((np.asarray(probabilities, dtype=float) - y) ** 2))


def ece(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over `bins` equal-width bins of the probability (closed on
    the right, as scikit-learn's `calibration_curve` bins them)."""
    y = np.asarray(labels, dtype=float)
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    which = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], p)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(p[mask].mean() - y[mask].mean())
    return float(total / len(y))
