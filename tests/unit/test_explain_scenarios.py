"""Scenarios with an `explain` expectation: after the replay, each clock explained at `until`
has the segments, elapsed, deadline and clause the scenario derives by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sla_stream.core.explain import explain
from tests.scenario_support import _instant, load_scenario, scenario_paths
from tests.unit.test_scenarios import run_replay

EXPLAINED = [p for p in scenario_paths() if load_scenario(p).explain]


def segment_rows(clock: Any) -> list[list[Any]]:
    rows = []
    for s in clock.segments:
        row: list[Any] = [s.kind, s.start_at, s.end_at, s.business_us / 1_000_000]
        extra = s.status or s.note
        rows.append([*row, extra] if extra else row)
    return rows


@pytest.mark.parametrize("path", EXPLAINED, ids=lambda p: p.stem)
def test_explained_clocks(path: Path) -> None:
    scenario = load_scenario(path)
    _, _, replayer = run_replay(scenario)
    for want in scenario.explain:
        state = replayer.states[want.get("incident_id", "INC-1")]
        record = scenario.contracts[state.contract_id or ""]
        clock = next(
            c for c in explain(state, record, scenario.until).clocks if c.metric == want["metric"]
        )
        expected = [[k, _instant(a), _instant(b), *rest] for k, a, b, *rest in want["segments"]]
        assert segment_rows(clock) == expected
        assert clock.elapsed_s == want["elapsed_s"]
        assert sum(s.business_us for s in clock.segments) == want["elapsed_s"] * 1_000_000
        for key in ("deadline_at", "clause_id", "severity", "calendar", "breached"):
            if key in want:
                have = getattr(clock, key)
                assert have == (_instant(want[key]) if key == "deadline_at" else want[key]), key


def test_there_is_an_explained_scenario() -> None:
    assert "explain-holiday-pause-early-closing" in {p.stem for p in EXPLAINED}
