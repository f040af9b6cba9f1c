"""On a simulated desk (ciw), more agents never lower the predicted adherence."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_stream.analytics import capacity_backtest
from sla_stream.analytics.capacity_history import History, history_from_events, hour_index
from sla_stream.analytics.capacity_model import feature_rows, with_agents
from sla_stream.analytics.capacity_plan import cell_curve
from sla_stream.analytics.capacity_sim import desk_events, simulate

ZONE = ZoneInfo("UTC")
START = datetime(2026, 1, 5, tzinfo=ZONE)  # a Monday
RATES = [1, 1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 8, 6, 8, 10, 8, 6, 4, 3, 2, 2, 1, 1, 1]
HANDLE_MIN = 20.0
DAYS = 56


def simulated_history(seed: int = 1) -> History:
    """Eight weeks; each day staffed by 1-8 agents all day, drawn at random."""
    draw = random.Random(seed)
    per_day = [draw.randint(1, 8) for _ in range(DAYS)]
    agents = [n for n in per_day for _ in range(24)]
    history = history_from_events(
        desk_events(simulate(RATES, agents, HANDLE_MIN, seed), START), ZONE
    )
    first = hour_index(START)
    history.actors = {
        ("desk", first + h): {f"a{i}" for i in range(n)} for h, n in enumerate(agents)
    }
    return history


def fitted_desk() -> capacity_backtest.Fitted:
    history = simulated_history()
    end = START + timedelta(days=DAYS)
    protocol = capacity_backtest.Protocol(cut=end, end=end, fit_days=DAYS)
    return capacity_backtest.fit(history, protocol)


FITTED = fitted_desk()


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
