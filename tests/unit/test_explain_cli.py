"""`sla-stream explain INCIDENT` on a replay directory: the explained scenario, replayed with the
real commands, gives the same clocks as the scenario derives, as JSON and as text."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from click.testing import CliRunner

from sla_stream.cli import main
from tests.scenario_support import SCENARIOS, load_scenario

SCENARIO = SCENARIOS / "explain-holiday-pause-early-closing.yaml"


def replayed(tmp_path: Path) -> Path:
    """The scenario's contracts and events as files, replayed by `sla-stream replay`."""
    data = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    contracts = tmp_path / "contracts.yaml"
    contracts.write_text(yaml.safe_dump(data["contracts"]), encoding="utf-8")
    events = tmp_path / "events.jsonl"
    # A second incident's events in the same file: only INC-1's are read.
    other = [
        e.model_copy(update={"incident_id": "INC-2"}) for e in load_scenario(SCENARIO).events()
    ]
    events.write_bytes(
        b"".join(e.to_json() + b"\n" for e in [*load_scenario(SCENARIO).events(), *other])
    )
    out = tmp_path / "out"
    until = load_scenario(SCENARIO).until.isoformat()
    args = ["replay", "--contracts", str(contracts), "--events", str(events), "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--until", until])
    assert result.exit_code == 0, result.output
    return out


def test_explain_on_a_replay_directory_gives_the_scenario_clocks(tmp_path: Path) -> None:
    out = replayed(tmp_path)
    result = CliRunner().invoke(
        main, ["explain", "INC-1", "--replay-dir", str(out), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    scenario = load_scenario(SCENARIO)
    assert body["as_of"] == scenario.until.isoformat()
    assert (body["contract_id"], body["contract_version"]) == ("closures", 1)
    for want in scenario.explain:
        clock = next(c for c in body["clocks"] if c["metric"] == want["metric"])
        assert clock["elapsed_s"] == want["elapsed_s"]
        assert clock["clause_id"] == want["clause_id"]
        assert [s["kind"] for s in clock["segments"]] == [s[0] for s in want["segments"]]
        assert [s["business_s"] for s in clock["segments"]] == [s[3] for s in want["segments"]]
        assert sum(s["business_s"] for s in clock["segments"]) == clock["elapsed_s"]
    text = CliRunner().invoke(main, ["explain", "INC-1", "--replay-dir", str(out)])
    assert text.exit_code == 0, text.output
    assert "resolution P3: running, 15:00:00 of 16:00:00 business time, due 2026-03-09T12:00" in (
        text.stdout
    )
    assert "holiday 2026-03-04" in text.stdout and "pending_customer" in text.stdout
    earlier = CliRunner().invoke(
        main, ["explain", "INC-1", "--replay-dir", str(out), "--at", "2026-03-05T11:00:00Z"]
    )
    assert "resolution P3: paused, 5:00:00 of 16:00:00" in earlier.stdout


def test_unknown_incidents_and_directories_without_a_run_are_refused(tmp_path: Path) -> None:
    out = replayed(tmp_path)
    result = CliRunner().invoke(main, ["explain", "INC-404", "--replay-dir", str(out)])
    assert result.exit_code == 1 and "INC-404: no events in" in result.output
    bare = tmp_path / "bare"
    bare.mkdir()
    result = CliRunner().invoke(main, ["explain", "INC-1", "--replay-dir", str(bare)])
    assert result.exit_code == 1 and "has no replay.json" in result.output
