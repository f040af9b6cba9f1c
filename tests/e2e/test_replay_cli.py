"""`sla-stream generate | sla-stream replay` as a user runs it: 20,000 incidents, one pipe."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
SLA_STREAM = Path(sys.executable).parent / "sla-stream"


def adherence_from_outcomes(path: Path) -> dict[str, tuple[int, int]]:
    """(met, settled) per metric, from the outcome records with withdrawals undone."""
    live: dict[str, dict] = {}
    for line in path.read_bytes().splitlines():
        outcome = orjson.loads(line)
        if outcome.get("withdraws"):
            del live[outcome["withdraws"]]
        else:
            live[outcome["outcome_id"]] = outcome
    counts: dict[str, list[int]] = {}
    for o in live.values():
        c = counts.setdefault(o["metric"], [0, 0])
        c[0] += o["met"]
        c[1] += 1
    return {m: (c[0], c[1]) for m, c in counts.items()}


def test_generate_piped_into_replay_summary_matches_outcomes_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline = (
        f"'{SLA_STREAM}' generate --incidents 20000 --seed 1 | "
        f"'{SLA_STREAM}' replay --contracts examples/contracts.yaml --events - --out '{out}'"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    summary = result.stdout
    assert "incidents: 20000 " in summary
    printed = {
        m: (int(met), int(total))
        for m, met, total in re.findall(
            r"adherence (\w+): [\d.]+ % \((\d+) met / (\d+) settled\)", summary
        )
    }
    assert set(printed) == {"first_response", "resolution", "update"}
    assert printed == adherence_from_outcomes(out / "outcomes.jsonl")
    assert printed["first_response"][1] > 15000 and printed["resolution"][1] > 15000
    assert printed["update"][1] > 10000  # P1/P2 update cycles, each counted
    for metric, (met, total) in printed.items():
        rate = re.search(rf"adherence {metric}: ([\d.]+) %", summary)
        assert rate is not None and abs(float(rate.group(1)) - 100 * met / total) < 0.01
    alerts = (out / "alerts.jsonl").read_bytes().splitlines()
    kinds = re.search(r"alerts: (\d+) \(", summary)
    assert kinds is not None and int(kinds.group(1)) == len(alerts)
