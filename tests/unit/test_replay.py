"""The replay command: simulated time, invalid lines, --until, outputs and summary."""

from __future__ import annotations

import gc
from pathlib import Path

import orjson
from click.testing import CliRunner

from sla_stream.cli import main
from sla_stream.core.contracts import load_contracts
from sla_stream.core.models import Alert, Outcome
from sla_stream.generate import iter_events
from sla_stream.replay import PROGRESS_MIN_BYTES, replay_events, replay_file
from tests.scenario_support import SCENARIOS, load_scenario, scenario_paths

CONTRACTS = SCENARIOS / "contracts.yaml"


def write_events(path: Path, lines: list[str | dict]) -> Path:
    text = "".join((x if isinstance(x, str) else orjson.dumps(x).decode()) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


def opened(incident: str, at: str, severity: str = "P1", contract: str = "acme") -> dict:
    return {
        "event_id": f"{incident}-1",
        "incident_id": incident,
        "type": "opened",
        "occurred_at": at,
        "contract_id": contract,
        "severity": severity,
    }


def responded(incident: str, at: str) -> dict:
    return {"event_id": f"{incident}-2", "incident_id": incident, "type": "responded",
            "occurred_at": at}  # fmt: skip


def test_invalid_lines_are_reported_with_their_number_and_skipped(tmp_path: Path) -> None:
    events = write_events(
        tmp_path / "events.jsonl",
        [
            opened("INC-1", "2026-03-02T09:00:00Z"),
            "this is not json",
            {**responded("INC-1", "2026-03-02T09:20:00"), "event_id": "x"},  # naive instant
            "",
            responded("INC-1", "2026-03-02T09:20:00Z"),
        ],
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["replay", "--contracts", str(CONTRACTS), "--events", str(events), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"{events}:2: skipped: " in result.stderr
    assert f"{events}:3: skipped: occurred_at" in result.stderr
    assert "2 applied from 5 lines (2 invalid)" in result.stdout
    assert (out / "invalid-lines.txt").read_text().startswith("2: ")
    alerts = [Alert.from_json(x) for x in (out / "alerts.jsonl").read_bytes().splitlines()]
    assert [a.kind for a in alerts] == ["met"]
    outcomes = [Outcome.from_json(x) for x in (out / "outcomes.jsonl").read_bytes().splitlines()]
    assert [(o.metric, o.met, o.elapsed_s) for o in outcomes] == [("first_response", True, 1200.0)]
    assert "adherence first_response: 100.00 % (1 met / 1 settled)" in result.stdout
    assert "adherence resolution: n/a (0 met / 0 settled)" in result.stdout


def test_dues_fire_between_events_in_simulated_time_and_up_to_until(tmp_path: Path) -> None:
    events = write_events(
        tmp_path / "events.jsonl",
        [opened("INC-1", "2026-03-02T09:00:00Z"), opened("INC-2", "2026-03-02T10:30:00Z", "P2")],
    )
    summary = replay_file({}, events, tmp_path / "none")  # no contracts: both parked
    assert summary.parked == 2 and sum(summary.alerts.values()) == 0
    from sla_stream.core.contracts import load_contracts

    contracts = load_contracts(CONTRACTS)
    out = tmp_path / "out"
    summary = replay_file(contracts, events, out, until=None)
    alerts = [Alert.from_json(x) for x in (out / "alerts.jsonl").read_bytes().splitlines()]
    # INC-1's first_response dues before 10:30 fired between the two events; nothing after
    # the last event (the default until)
    assert [(a.incident_id, a.kind, a.threshold) for a in alerts] == [
        ("INC-1", "warning", 0.5),
        ("INC-1", "warning", 0.75),
        ("INC-1", "warning", 0.9),
        ("INC-1", "breach", 1.0),
    ]
    assert summary.until is not None and summary.until.isoformat() == "2026-03-02T10:30:00+00:00"
    result = CliRunner().invoke(
        main,
        ["replay", "--contracts", str(CONTRACTS), "--events", str(events), "--out", str(out),
         "--until", "2026-03-02T11:00:00Z"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    kinds = [orjson.loads(x)["kind"] for x in (out / "alerts.jsonl").read_bytes().splitlines()]
    # until 11:00 adds INC-1's resolution 0.5 (due 11:00); INC-2's response 0.5 is due 11:30
    assert kinds == ["warning", "warning", "warning", "breach", "warning"]
    assert "alerts: 5 (breach 1, warning 4)" in result.stdout


def test_events_after_until_are_counted_not_applied(tmp_path: Path) -> None:
    events = write_events(
        tmp_path / "events.jsonl",
        [opened("INC-1", "2026-03-02T09:00:00Z"), responded("INC-1", "2026-03-02T12:00:00Z")],
    )
    result = CliRunner().invoke(
        main,
        ["replay", "--contracts", str(CONTRACTS), "--events", str(events), "--out",
         str(tmp_path / "o"), "--until", "2026-03-02T09:40:00Z"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 after --until" in result.stdout
    assert "alerts: 1 (warning 1)" in result.stdout  # 0.5 at 09:30; 0.75 is due 09:45


def test_naive_until_and_bad_contracts_are_refused(tmp_path: Path) -> None:
    events = write_events(tmp_path / "e.jsonl", [opened("INC-1", "2026-03-02T09:00:00Z")])
    naive = CliRunner().invoke(
        main,
        ["replay", "--contracts", str(CONTRACTS), "--events", str(events), "--out",
         str(tmp_path / "o"), "--until", "2026-03-02T09:40:00"],
    )  # fmt: skip
    assert naive.exit_code != 0 and "offset" in naive.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("contracts: [{contract_id: x}]\n")
    refused = CliRunner().invoke(
        main, ["replay", "--contracts", str(bad), "--events", str(events), "--out", str(tmp_path)]
    )
    assert refused.exit_code != 0 and "contracts[0]" in refused.output


def test_large_input_shows_a_progress_bar_on_stderr(tmp_path: Path) -> None:
    line = orjson.dumps(opened("INC-0", "2026-03-02T09:00:00Z")).decode()
    lines = [line.replace("INC-0", f"INC-{n}") for n in range(PROGRESS_MIN_BYTES // len(line) + 10)]
    events = write_events(tmp_path / "big.jsonl", lines)  # type: ignore[arg-type]
    result = CliRunner().invoke(
        main,
        [
            "replay",
            "--contracts",
            str(CONTRACTS),
            "--events",
            str(events),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "replaying" in result.stderr and "replaying" not in result.stdout


def test_replay_events_matches_a_scenario_in_process() -> None:
    scenario = load_scenario(SCENARIOS / "p1-response-breach.yaml")
    alerts, outcomes, summary = replay_events(scenario.events(), scenario.contracts, scenario.until)
    assert len(alerts) == len(scenario.alerts) and len(outcomes) == len(scenario.outcomes)
    assert summary.adherence == {"first_response": (0, 1), "resolution": (1, 1), "update": (0, 0)}
    assert summary.alerts["stopped"] == 1 and summary.withdrawals == 1


def test_the_engine_leaves_no_reference_cycles_for_the_collector_it_turns_off() -> None:
    examples = load_contracts(Path(__file__).resolve().parents[2] / "examples" / "contracts.yaml")
    runs = [(list(iter_events(300, 7, contracts=examples)), examples, None)]
    for path in scenario_paths():
        scenario = load_scenario(path)
        runs.append((scenario.events(), scenario.contracts, scenario.until))
    gc.collect()
    gc.disable()  # so that nothing collects between the replays and the count
    try:
        alerts = [
            len(replay_events(events, contracts, until)[0]) for events, contracts, until in runs
        ]
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert sum(alerts) > 300  # the replays did run the engine
