"""The Poisson-binomial behind a cell's forecast: its law, its median and its noise floor."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from sla_stream.analytics.capacity_error import expected_abs_error, median_rate, poisson_binomial


def test_equal_chances_give_the_binomial() -> None:
    assert poisson_binomial(np.full(14, 0.6)) == pytest.approx(binom.pmf(np.arange(15), 14, 0.6))


def test_unequal_chances_sum_to_one_and_keep_the_mean() -> None:
    p = np.random.default_rng(0).uniform(size=40)
    pmf = poisson_binomial(p)
    assert pmf.sum() == pytest.approx(1.0)
    assert pmf @ np.arange(41) == pytest.approx(p.sum())


def test_the_median_has_the_least_expected_absolute_error() -> None:
    # Skewed chances: the mean rate (0.73) is not a point the cell's rate can take.
    p = np.array([0.98] * 9 + [0.1, 0.2, 0.3])
    pmf = poisson_binomial(p)
    rates = np.arange(len(pmf)) / len(p)

    def error(forecast: float) -> float:
        return float(pmf @ np.abs(rates - forecast))

    best = median_rate(p)
    assert error(best) == pytest.approx(expected_abs_error(p))
    assert all(error(best) <= error(f) + 1e-12 for f in np.linspace(0, 1, 201))
    assert error(best) < error(float(p.mean()))


def test_the_floor_shrinks_with_cell_size() -> None:
    small, large = expected_abs_error(np.full(14, 0.6)), expected_abs_error(np.full(42, 0.6))
    assert large < small
    assert 0.08 < small < 0.12  # about 10 points for a 14-incident cell at 60 %
