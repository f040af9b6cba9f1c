"""Every scenario in tests/scenarios runs through the offline replay and gives what it says."""

from __future__ import annotations

from pathlib import Path

import pytest

from sla_stream.core.models import Alert, Outcome
from sla_stream.replay import Replayer
from tests.scenario_support import ContractArrives, Scenario, compare, load_scenario, scenario_paths


def run_replay(scenario: Scenario) -> tuple[list[Alert], list[Outcome], Replayer]:
    alerts: list[Alert] = []
    outcomes: list[Outcome] = []
    replayer = Replayer(scenario.known_contracts(), alerts.append, outcomes.append, scenario.until)
    for step in scenario.steps:
        if isinstance(step, ContractArrives):
            replayer.contract_arrives(scenario.contracts[step.contract_id], step.at)
        else:
            replayer.event(step)
    replayer.finish()
    return alerts, outcomes, replayer


@pytest.mark.parametrize("path", scenario_paths(), ids=lambda p: p.stem)
def test_scenario(path: Path) -> None:
    scenario = load_scenario(path)
    alerts, outcomes, replayer = run_replay(scenario)
    problems = compare("alerts", alerts, scenario.alerts)
    problems += compare("outcomes", outcomes, scenario.outcomes)
    if scenario.ignored:
        assert dict(replayer.summary.ignored) == scenario.ignored
    if scenario.parked is not None:
        assert replayer.summary.parked == scenario.parked
    assert not problems, f"{scenario.name}:\n" + "\n".join(problems)


def test_there_are_scenarios_for_every_rule_the_issue_names() -> None:
    names = {p.stem for p in scenario_paths()}
    assert {
        "pause-over-weekend",
        "severity-raised-after-warning-breaches-at-once",
        "reopen-after-met",
        "duplicate-events",
        "late-response-retracts-breach",
        "contract-arrives-after-incidents",
        "calendar-exception-moves-deadline",
        "severity-raised-starts-missing-clock",
        "version-arrives-for-parked-incident",
    } <= names


def test_a_wrong_expectation_is_reported() -> None:
    """The comparison can fail: a scenario with one figure changed does not pass."""
    scenario = load_scenario(scenario_paths()[0])
    alerts, _, _ = run_replay(scenario)
    wrong = [dict(scenario.alerts[0], elapsed_s=scenario.alerts[0].get("elapsed_s", 0) + 1)]
    wrong += scenario.alerts[1:]
    assert compare("alerts", alerts, wrong)
    assert compare("alerts", alerts[:-1], scenario.alerts)
