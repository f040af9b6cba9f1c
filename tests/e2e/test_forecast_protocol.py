"""`sla-stream forecast evaluate` runs the whole protocol on a slice of the shipped log."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from sla_stream.cli import main

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / "examples" / "servicenow" / "data" / "incident_event_log.csv.gz"
POINTS = ["first_event", "4h", "24h", "48h", "96h"]
KEYS = {"decision_point", "n", "base_rate", "auc", "auc_low", "auc_high", "brier", "ece",
        "auc_p3", "baselines"}  # fmt: skip


@pytest.fixture(scope="module")
def log_slice(tmp_path_factory) -> Path:
    """Every tenth incident of the log (about 2,500, all months), rows as shipped."""
    path = tmp_path_factory.mktemp("forecast") / "slice.csv"
    with gzip.open(LOG, "rt", newline="") as source, path.open("w", newline="") as out:
        out.write(next(source))
        for line in source:
            number = int(line[3:10])  # INC0000045 -> 45
            if number % 10 == 0:
                out.write(line)
    return path


def test_the_protocol_runs_end_to_end_and_prints_its_json(log_slice: Path) -> None:
    result = CliRunner().invoke(
        main, ["forecast", "evaluate", "--log", str(log_slice), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    points = report["decision_points"]
    assert [p["decision_point"] for p in points] == POINTS
    for p in points:
        assert set(p) == KEYS
        assert set(p["baselines"]) == {"priority", "priority_group", "logistic", "fixed_fraction"}
        assert p["n"] > 50 and 0.0 < p["base_rate"] < 1.0
        assert p["auc_low"] <= p["auc"] <= p["auc_high"]
        assert 0.0 <= p["ece"] <= 1.0 and 0.0 <= p["brier"] <= 1.0
    first = points[0]
    # Real signal on real data: the model ranks far better than chance and than priority.
    assert first["auc"] > 0.7
    assert first["auc"] > first["baselines"]["priority"] + 0.1
    # Later decision points concern fewer, still-open incidents, more of which breach.
    assert points[0]["n"] > points[-1]["n"]
    assert points[-1]["base_rate"] > points[0]["base_rate"]
    assert report["split"]["straddlers_dropped"] > 0
    budget = report["alert_budget"]  # as many forecast alerts as fixed-fraction ones (or ties)
    assert budget["forecast"]["alerts"] >= budget["fixed_fraction"]["alerts"] > 0
    assert 0 < budget["forecast"]["breaches_flagged"] <= budget["breaches"]


def test_a_log_without_the_label_is_refused_naming_the_column(tmp_path: Path) -> None:
    with gzip.open(LOG, "rt", newline="") as source:
        header, *rows = [next(source) for _ in range(20)]
    columns = header.rstrip("\n").split(",")
    at = columns.index("made_sla")
    path = tmp_path / "no-label.csv"
    path.write_text(
        "".join(
            ",".join(c for i, c in enumerate(line.rstrip("\n").split(",")) if i != at) + "\n"
            for line in [header, *rows]
        )
    )
    result = CliRunner().invoke(main, ["forecast", "evaluate", "--log", str(path)])
    assert result.exit_code == 1
    assert "no column made_sla" in result.output
