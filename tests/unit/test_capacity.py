"""Capacity: Erlang C matches pyworkforce and the formula, rosters are validated, backtest runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sla_stream.analytics.capacity_erlang import erlang_c_formula, service_level
from sla_stream.analytics.capacity_roster import RosterError, load_roster, parse_roster
from sla_stream.cli import main
from sla_stream.cli.capacity import render_backtest

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / "examples" / "servicenow" / "data" / "incident_event_log.csv.gz"
MAPPING = REPO / "examples" / "servicenow" / "mapping.yaml"


@pytest.mark.parametrize(
    ("arrivals", "agents", "aht", "within"),
    [(10, 4, 20.0, 60.0), (60, 24, 20.0, 60.0), (3, 1, 10.0, 60.0), (30, 12, 20.0, 1.0)],
)
def test_erlang_c_from_pyworkforce_matches_the_formula(arrivals, agents, aht, within) -> None:
    assert service_level(arrivals, agents, aht, within) == pytest.approx(
        erlang_c_formula(arrivals, agents, aht, within), abs=1e-9
    )


def test_erlang_c_is_zero_when_traffic_reaches_the_agents() -> None:
    # 10 arrivals of 30 minutes are 5 erlangs: 5 agents never catch up.
    assert service_level(10, 5, 30.0, 60.0) == 0.0
    assert service_level(10, 6, 30.0, 60.0) > 0.5


def test_a_roster_adds_up_its_blocks_per_hour_of_the_week(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(
        "timezone: America/Sao_Paulo\nteams:\n  Group 70:\n"
        '    - {days: [mon, tue], hours: "08-18", agents: 6}\n'
        '    - {days: [mon], hours: "12-14", agents: 2}\n',
        encoding="utf-8",
    )
    week = load_roster(path).agents("Group 70")
    assert (week[7], week[8], week[12], week[17], week[18]) == (0, 6, 8, 6, 0)
    assert week[24 + 12] == 6 and sum(week[48:]) == 0


@pytest.mark.parametrize(
    ("block", "field", "value"),
    [
        ({"days": ["mon"], "hours": "18-08", "agents": 1}, "teams.A.0.hours", "'18-08'"),
        ({"days": ["monday"], "hours": "08-18", "agents": 1}, "teams.A.0.days.0", "'monday'"),
        ({"days": ["mon"], "hours": "08-18", "agents": -2}, "teams.A.0.agents", "-2"),
    ],
)
def test_a_bad_roster_is_refused_naming_field_and_value(block, field, value) -> None:
    with pytest.raises(RosterError) as err:
        parse_roster({"timezone": "UTC", "teams": {"A": [block]}}, "r.yaml")
    assert f"r.yaml: {field}:" in str(err.value)
    assert f"(got {value})" in str(err.value)


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(RosterError, match="timezone: unknown IANA time zone"):
        parse_roster({"timezone": "Mars/Olympus", "teams": {}})


def test_backtest_runs_end_to_end_on_a_slice_of_the_log(tmp_path: Path) -> None:
    # The first three weeks of April train, the fourth is scored: a small, fast slice.
    out = tmp_path / "backtest.json"
    result = CliRunner().invoke(
        main,
        ["capacity", "backtest", "--log", str(LOG), "--mapping", str(MAPPING),
         "--cut", "2016-04-18", "--end", "2016-04-25", "--fit-days", "14",
         "--format", "json", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for level in ("group_week", "hour_of_week"):
        scores = data[level]
        assert {"mae", "last_week_mae", "erlang_c_mae", "cells"} <= set(scores)
        assert scores["cells"]
        errors = [abs(c["predicted"] - c["actual"]) for c in scores["cells"]]
        assert scores["mae"] == pytest.approx(sum(errors) / len(errors), abs=0.01)
        staffing = [abs(c["staffing_model"] - c["actual"]) for c in scores["cells"]]
        assert scores["staffing_model_mae"] == pytest.approx(
            sum(staffing) / len(staffing), abs=0.01
        )
        assert all(0 <= c["predicted"] <= 100 for c in scores["cells"])
    assert len(data["hour_of_week"]["cells"]) <= 168
    # What is known at open ranks the slice's incidents better than staffing alone.
    incidents = data["incidents"]
    assert incidents["model"]["auc"] > incidents["staffing_model"]["auc"]
    assert incidents["model"]["log_loss"] < incidents["staffing_model"]["log_loss"]
    # The table prints both models' errors and the AUCs from the same run.
    table = render_backtest(data, "table").splitlines()
    gw = data["group_week"]
    assert table[2].split()[2:5] == [
        f"{gw['mae']:.2f}",
        f"{gw['staffing_model_mae']:.2f}",
        f"{gw['last_week_mae']:.2f}",
    ]
    assert f"AUC {incidents['model']['auc']:.3f}" in table[-1]
    assert f"staffing model AUC {incidents['staffing_model']['auc']:.3f}" in table[-1]
    # The model beats Erlang C on the team-week cells of this slice too.
    assert data["group_week"]["mae"] < data["group_week"]["erlang_c_mae"]
