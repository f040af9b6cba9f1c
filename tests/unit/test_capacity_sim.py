"""On a simulated desk (ciw) whose right staffing is known, the recommender finds it.

The desk opens 08-20 with Poisson arrivals per hour and 20-minute exponential handling; its
daily schedule is the plan's "current". Its history (8 weeks) varies each hour's agents around
the schedule, so the model sees what staffing changes. The truth per hour of the day is the
fewest agents whose simulated adherence (30 minutes, 40 replicated days) reaches 95 % with every
other hour as scheduled (`right_staffing`), the same what-if the recommender answers.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_stream.analytics import capacity_backtest
from sla_stream.analytics.capacity_history import History, history_from_events, hour_index
from sla_stream.analytics.capacity_model import feature_rows, with_agents
from sla_stream.analytics.capacity_plan import cell_curve, plan
from sla_stream.analytics.capacity_sim import desk_events, right_staffing, simulate

ZONE = ZoneInfo("UTC")
START = datetime(2026, 1, 5, tzinfo=ZONE)  # a Monday
RATES = [0] * 8 + [6, 10, 12, 12, 8, 6, 8, 12, 10, 8, 6, 4] + [0] * 4
SCHEDULE = [0] * 8 + [3, 4, 5, 5, 4, 3, 4, 5, 4, 4, 3, 2] + [1] * 4
HANDLE_MIN = 20.0
WITHIN_MIN = 30.0
DAYS = 56
SEED = 2


def simulated_history(seed: int = SEED) -> History:
    """Each hour staffed by its scheduled agents -2..+4 (at least one in opening hours)."""
    draw = random.Random(seed)
    agents = [
        max(int(SCHEDULE[h % 24] > 0), SCHEDULE[h % 24] + draw.randint(-2, 4))
        for h in range(24 * DAYS)
    ]
    history = history_from_events(
        desk_events(simulate(RATES, agents, HANDLE_MIN, seed), START), ZONE
    )
    first = hour_index(START)
    history.actors = {
        ("desk", first + h): {f"a{i}" for i in range(n)} for h, n in enumerate(agents)
    }
    return history


def fitted_desk(seed: int = SEED) -> capacity_backtest.Fitted:
    history = simulated_history(seed)
    end = START + timedelta(days=DAYS)
    protocol = capacity_backtest.Protocol(cut=end, end=end, fit_days=DAYS, within_s=60 * WITHIN_MIN)
    return capacity_backtest.fit(history, protocol)


FITTED = fitted_desk()


def test_the_simulation_is_reproducible_from_its_seed() -> None:
    agents = SCHEDULE * 3
    assert simulate(RATES, agents, HANDLE_MIN, 5) == simulate(RATES, agents, HANDLE_MIN, 5)
    assert simulate(RATES, agents, HANDLE_MIN, 5) != simulate(RATES, agents, HANDLE_MIN, 6)


@pytest.fixture(scope="module")
def truth() -> dict[int, int]:
    return right_staffing(
        RATES, SCHEDULE, HANDLE_MIN, within_min=WITHIN_MIN, target=0.95, days=40, seed=7
    )


# Seed 3 is the history that defeated the previous model (65 of 84 cells): a second draw.
@pytest.mark.parametrize("seed", [SEED, 3])
def test_the_recommendation_is_within_one_agent_of_the_simulated_truth(
    truth: dict[int, int], seed: int
) -> None:
    # The truth is not one number: business hours need different staffing.
    assert len({truth[h] for h in range(8, 20)}) >= 2
    fitted = FITTED if seed == SEED else fitted_desk(seed)
    cells = plan(fitted, 0.95, teams=["desk"], max_agents=10)["teams"][0]["cells"]
    assert len(cells) == 7 * 12  # every open hour of the week is checked
    off = [
        (c["hour_of_week"], c["needed"], truth[c["hour_of_week"] % 24])
        for c in cells
        if c["needed"] is None or abs(c["needed"] - truth[c["hour_of_week"] % 24]) > 1
    ]
    within = len(cells) - len(off)
    assert within >= 0.9 * len(cells), (
        f"{within} of {len(cells)} cells within one agent; off (hour, needed, truth): {off}"
    )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(FITTED.train) - 1),
    st.floats(min_value=0, max_value=30),
    st.floats(min_value=0, max_value=5),
)
def test_more_agents_never_lower_predicted_adherence(
    index: int, agents: float, more: float
) -> None:
    rows = feature_rows(FITTED.train[index : index + 5], FITTED.load, FITTED.known)
    fewer = FITTED.model.predict(with_agents(rows, agents))
    plenty = FITTED.model.predict(with_agents(rows, agents + more))
    assert np.all(plenty >= fewer)
    curve = cell_curve(FITTED, rows, np.arange(12.0))
    assert np.all(np.diff(curve) >= 0)
