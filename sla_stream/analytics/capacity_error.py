"""What a cell's adherence can be predicted to: the Poisson-binomial of its incidents' chances.

A cell's realized adherence is X / n, X the number of its n incidents answered in time. If each
incident i is answered with probability p_i, X is Poisson-binomial. The backtest scores mean
absolute error, and the point forecast that minimizes an expected absolute error is the median
of X / n, not its mean (the mean minimizes squared error). The same distribution gives the noise
floor: the expected absolute error of a forecaster that knew each cell's distribution.
"""

from __future__ import annotations

import numpy as np


def poisson_binomial(p: np.ndarray) -> np.ndarray:
    """P(X = k), k = 0..n, for X the number of successes of independent Bernoulli(p_i)."""
    pmf = np.zeros(len(p) + 1)
    pmf[0] = 1.0
    for i, q in enumerate(np.clip(p, 0.0, 1.0), start=1):
        pmf[1 : i + 1] = pmf[1 : i + 1] * (1 - q) + pmf[:i] * q
        pmf[0] *= 1 - q
    return pmf


def median_rate(p: np.ndarray) -> float:
    """The median of X / n: the forecast of a cell's adherence with the least expected MAE."""
    if len(p) == 0:
        return 0.0
    cdf = np.cumsum(poisson_binomial(p))
    return float(np.searchsorted(cdf, 0.5) / len(p))


def expected_abs_error(p: np.ndarray) -> float:
    """E|X / n - median(X / n)|: a forecaster that knew the p_i still misses by this much."""
    if len(p) == 0:
        return 0.0
    pmf = poisson_binomial(p)
    rates = np.arange(len(pmf)) / len(p)
    return float(pmf @ np.abs(rates - median_rate(p)))
