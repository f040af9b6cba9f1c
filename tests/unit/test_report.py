"""`sla-stream report` from replay output, and the adherence API's parameter checks."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from sla_stream.analytics.report import duration, reports_from_replay
from sla_stream.cli import main
from sla_stream.core.contracts import load_contracts
from sla_stream.web.adherence import BadRequest, parse_query
from tests.unit.test_adherence import STREAM, utc

CONTRACTS = {
    "tiers": {
        "gold": {
            "targets": {
                "first_response": {"P1": "15m", "P2": "30m"},
                "resolution": {"P1": "4h", "P2": "8h"},
            }
        }
    },
    "contracts": [
        {
            "contract_id": "acme",
            "customer_id": "cust",
            "tier": "gold",
            "timezone": "Europe/Berlin",
            "clauses": [
                {"id": "1", "title": "Response", "covers": [{"metric": "first_response"}]},
                {"id": "2", "title": "Restoration", "covers": [{"metric": "resolution"}]},
            ],
        }
    ],
}


@pytest.fixture
def replay_dir(tmp_path: Path) -> Path:
    (tmp_path / "contracts.json").write_bytes(orjson.dumps(CONTRACTS))
    out = tmp_path / "replay"
    out.mkdir()
    (out / "outcomes.jsonl").write_bytes(b"".join(o.to_json() + b"\n" for o in STREAM))
    return out


def run(replay_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--replay-dir",
            str(replay_dir),
            "--contracts",
            str(replay_dir.parent / "contracts.json"),
            *args,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_json_report_from_replay_output_is_hand_computed(replay_dir: Path) -> None:
    (rep,) = orjson.loads(
        run(replay_dir, "--from", "2026-03-31", "--to", "2026-04-02", "--format", "json")
    )
    fr = rep["metrics"]["first_response"]
    assert [(p["period"], p["numerator"], p["denominator"]) for p in fr["periods"]] == [
        ("2026-03-31", 1, 1),
        ("2026-04-01", 1, 2),
    ]
    assert [(q["quarter"], q["breaches"]) for q in rep["breaches_per_quarter"]] == [
        ("2026-Q1", 0),
        ("2026-Q2", 2),
    ]
    assert rep["timezone"] == "Europe/Berlin"


def test_csv_report_has_adherence_breach_and_trend_rows(replay_dir: Path) -> None:
    text = run(
        replay_dir, "--from", "2026-Q1", "--to", "2026-Q3", "--step", "quarter", "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    adherence = {(r["metric"], r["period"]): r for r in rows if r["section"] == "adherence"}
    assert (
        adherence[("first_response", "2026-Q1")]["numerator"],
        adherence[("first_response", "2026-Q1")]["denominator"],
    ) == ("1", "1")
    assert adherence[("first_response", "2026-Q2")]["rate"] == "0.5"
    assert adherence[("resolution", "2026-Q1")]["rate"] == "1.0"
    breaches = {(r["metric"], r["period"]): r["count"] for r in rows if r["section"] == "breaches"}
    assert breaches[("all", "2026-Q2")] == "2" and breaches[("all", "2026-Q1")] == "0"
    trends = [r for r in rows if r["section"] == "trend" and r["metric"] == "first_response"]
    assert [(r["category"], r["period"], r["count"]) for r in trends] == [
        ("network", "2026-Q1", "1"),
        ("network", "2026-Q2", "2"),
    ]


def test_table_report_states_numerator_and_denominator(replay_dir: Path) -> None:
    text = run(
        replay_dir, "--from", "2026-03-31", "--to", "2026-04-02", "--metric", "first_response"
    )
    assert "first response time adherence (first_response): 66.67 % (2 met / 3 settled)" in text
    assert "2026-04-01  50.00 %   1 / 2" in text
    assert "resolution" not in text


def test_unknown_contract_and_missing_contracts_file_are_errors(replay_dir: Path) -> None:
    r = CliRunner().invoke(
        main,
        ["report", "--replay-dir", str(replay_dir), "--from", "2026-01-01", "--to", "2026-02-01"],
    )
    assert r.exit_code != 0 and "--contracts" in r.output
    contracts = load_contracts(replay_dir.parent / "contracts.json")
    with pytest.raises(Exception, match="unknown contract 'nope'"):
        reports_from_replay(replay_dir, contracts, "2026-01-01", "2026-02-01", "day", ["nope"])


def test_a_bound_past_the_calendar_is_a_clear_error_not_a_traceback(replay_dir: Path) -> None:
    args = [
        "--replay-dir",
        str(replay_dir),
        "--contracts",
        str(replay_dir.parent / "contracts.json"),
    ]
    r = CliRunner().invoke(main, ["report", *args, "--from", "0001-01-01", "--to", "2026-02-01"])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert r.output.startswith("Error:") and "out of range" in r.output


def test_withdrawn_lines_in_replay_output_count_once(replay_dir: Path) -> None:
    # The same stream twice (a replay appended to itself) gives the same figures.
    path = replay_dir / "outcomes.jsonl"
    path.write_bytes(path.read_bytes() * 2)
    contracts = load_contracts(replay_dir.parent / "contracts.json")
    (rep,) = reports_from_replay(replay_dir, contracts, "2026-Q1", "2026-Q3", "quarter")
    assert rep["metrics"]["first_response"]["total"]["denominator"] == 3
    assert rep["metrics"]["resolution"]["total"]["denominator"] == 2


def params(**kw: str) -> dict[str, Any]:
    return {"contract": "acme", "from": "2026-03-31", "to": "2026-04-02", **kw}


def test_parse_query_reads_bounds_in_the_contract_zone(replay_dir: Path) -> None:
    record = load_contracts(replay_dir.parent / "contracts.json")["acme"]
    q = parse_query(params(step="quarter", metric="resolution"), record)
    assert (q.tz, q.step, q.metric) == ("Europe/Berlin", "quarter", "resolution")
    assert q.from_at == utc(2026, 3, 30, 22) and q.to_at == utc(2026, 4, 1, 22)
    for bad, named in (
        ({"step": "week"}, "step"),
        ({"metric": "uptime"}, "metric"),
        ({"to": "2026-03-01"}, "'to' must be after"),
        ({"from": "2026-03-31T00:00:00"}, "from"),
        ({"step": "hour", "to": "2030-01-01"}, "hourly"),
    ):
        with pytest.raises(BadRequest, match=named):
            parse_query(params(**bad), record)
    with pytest.raises(BadRequest, match="contract"):
        parse_query({"from": "2026-01-01", "to": "2026-02-01"}, record)
    with pytest.raises(LookupError):
        parse_query(params(), None)


def test_duration_reads_like_people_write_it() -> None:
    assert [duration(x) for x in (None, 45.21, 725, 11220, 183600)] == [
        "-",
        "45.2s",
        "12m 05s",
        "3h 07m",
        "2d 03h",
    ]
