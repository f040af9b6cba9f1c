"""Erlang C, the contact-centre reference: pyworkforce's calculator, fitted on history.

An hour with `arrivals` incidents and `agents` agents, a handle time `aht_min` and a share of
the active agents on the queue: SL(T) = 1 - C(c, A) e^(-(c - A) T / AHT), with T the response
target. pyworkforce names T `asa` (its answer-time threshold, in the unit of `aht`), not the
average speed of answer. An hour whose traffic reaches its agents (A >= c) has SL 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from itertools import product

import numpy as np
from pyworkforce.queuing import ErlangC

AHT_GRID_MIN = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 240.0)
ON_QUEUE_GRID = (0.1, 0.25, 0.5, 0.75, 1.0)


@lru_cache(maxsize=200_000)
def service_level(arrivals: int, agents: int, aht_min: float, within_min: float) -> float:
    """Share answered within `within_min` in a 60-minute hour, per pyworkforce's Erlang C."""
    if arrivals <= 0:
        return 1.0
    if agents <= 0 or arrivals * aht_min / 60.0 >= agents:
        return 0.0
    erlang = ErlangC(transactions=arrivals, aht=aht_min, asa=within_min, interval=60)
    return float(min(1.0, max(0.0, erlang.service_level(positions=agents))))


def erlang_c_formula(arrivals: float, agents: int, aht_min: float, within_min: float) -> float:
    """The textbook formula, for checking the calculator (same units as `service_level`)."""
    traffic = arrivals * aht_min / 60.0
    if agents <= traffic:
        return 0.0
    top = traffic**agents / math.factorial(agents) * agents / (agents - traffic)
    bottom = sum(traffic**k / math.factorial(k) for k in range(agents)) + top
    waiting = top / bottom
    return 1.0 - waiting * math.exp(-(agents - traffic) * within_min / aht_min)


class ErlangReference:
    """Erlang C per incident from its arrival hour, with AHT and on-queue share fitted by grid."""

    def __init__(self, within_min: float = 60.0):
        self.within_min = within_min
        self.aht_min = AHT_GRID_MIN[0]
        self.on_queue = ON_QUEUE_GRID[-1]

    def predict(self, arrivals: np.ndarray, agents: np.ndarray) -> np.ndarray:
        positions = np.rint(agents * self.on_queue).astype(int)
        return np.array(
            [
                service_level(int(a), int(c), self.aht_min, self.within_min)
                for a, c in zip(arrivals, positions, strict=True)
            ]
        )

    def fit(
        self, arrivals: np.ndarray, agents: np.ndarray, cells: Sequence[np.ndarray], y: np.ndarray
    ) -> ErlangReference:
        """The grid point with the least mean absolute error over `cells` (index arrays)."""
        best = math.inf
        for aht, share in product(AHT_GRID_MIN, ON_QUEUE_GRID):
            self.aht_min, self.on_queue = aht, share
            predicted = self.predict(arrivals, agents)
            error = np.mean([abs(predicted[c].mean() - y[c].mean()) for c in cells])
            if error < best:
                best, chosen = error, (aht, share)
        self.aht_min, self.on_queue = chosen
        return self
