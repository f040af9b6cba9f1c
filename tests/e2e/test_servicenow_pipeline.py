"""The documented run on real data: import the ServiceNow sample (the first rows of the shipped
log), replay it, report per priority."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
from click.testing import CliRunner

from sla_stream.cli import main
from sla_stream.importers.servicenow_data import SAMPLE_ROWS, SERVICENOW_LOG

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "servicenow"


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_import_replay_report_shows_adherence_per_priority(tmp_path: Path) -> None:
    events, out = tmp_path / "events.jsonl", tmp_path / "out"
    contracts = str(EXAMPLES / "contracts.yaml")
    run(
        "import",
        "servicenow",
        str(SERVICENOW_LOG),
        "--limit",
        str(SAMPLE_ROWS),
        "--mapping",
        str(EXAMPLES / "mapping.yaml"),
        "--out",
        str(events),
    )
    summary = run("replay", "--contracts", contracts, "--events", str(events), "--out", str(out))
    assert "incidents: 890" in summary

    # Settled clocks per (metric, priority), counted straight from the outcomes file.
    withdrawn, live = set(), {}
    for line in (out / "outcomes.jsonl").read_bytes().splitlines():
        o = orjson.loads(line)
        if o.get("withdraws"):
            withdrawn.add(o["withdraws"])
        else:
            live[o["outcome_id"]] = o
    expected: Counter[tuple[str, str, bool]] = Counter(
        (o["metric"], o["severity"], o["met"]) for oid, o in live.items() if oid not in withdrawn
    )

    args = (
        "report",
        "--replay-dir",
        str(out),
        "--contracts",
        contracts,
        "--from",
        "2016-01-01",
        "--to",
        "2017-04-01",
        "--step",
        "quarter",
    )
    reports = orjson.loads(run(*args, "--format", "json"))
    got: Counter[tuple[str, str, bool]] = Counter()
    for rep in reports:
        for metric, per in rep["by_severity"].items():
            for severity, r in per.items():
                got[(metric, severity, True)] += r["numerator"]
                got[(metric, severity, False)] += r["denominator"] - r["numerator"]
    assert +got == +expected
    assert {sev for (_, sev, _) in got} == {"P1", "P2", "P3", "P4"}

    table = run(*args)
    assert "adherence per priority" in table
    assert sum(expected.values()) == 2 * 890  # every clock of every incident settled once
