"""The capacity page's view data, from small generated reports written where SLA_CAPACITY_REPORT
would point: selection, shortfalls, curves, the mtime cache, and the answers without a report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from sla_stream.web import capacity_html
from sla_stream.web.capacity import HOW_TO, ReportFile, answer, capacity_view, page

BAND = [-5.0, 10.0]


def cell(how: int, arrivals: float, current: float, needed: int | None, curve: list[float]) -> dict:
    at_now = curve[min(int(current), len(curve) - 1)]
    return {
        "hour_of_week": how,
        "arrivals_per_week": arrivals,
        "current": current,
        "needed": needed,
        "predicted": at_now,
        "marginal": 0.1,
        "low": max(0.0, at_now + BAND[0] / 100),
        "high": min(1.0, at_now + BAND[1] / 100),
        "curve": curve,
    }


def generated_report() -> dict[str, Any]:
    rising = [0.0, 0.5, 0.8, 0.9, 0.96]  # reaches 95 % at 4 agents, flat after
    return {
        "target": 0.95,
        "metric": "first_response",
        "what_if": {"arrivals": 1.0},
        "teams": [
            {
                "team": "Desk A",
                "predicted": 0.85,
                "cells": [
                    cell(9, 12.0, 2.0, 4, rising),  # Mon 09:00, the busiest: short by 2
                    cell(24 + 14, 3.0, 5.0, 4, rising),  # Tue 14:00: staffed
                    cell(6 * 24 + 23, 1.0, 1.0, None, [0.0, 0.4, 0.6]),  # Sun 23:00: never
                ],
            },
            {"team": "Desk B", "predicted": 0.97, "cells": [cell(100, 2.0, 3.5, 3, rising)]},
        ],
        "contracts_at_risk": [
            {
                "contract": "gold",
                "incidents": 40,
                "predicted": 0.81,
                "teams_under_target": [{"team": "Desk A", "share": 0.75}],
            }
        ],
        "backtest": {
            "group_week_mae": 7.25,
            "hour_of_week_mae": 10.5,
            "band_points": BAND,
            "cut": "2016-04-01T00:00:00-03:00",
        },
    }


def write(path: Path, report: dict[str, Any]) -> Path:
    path.write_bytes(orjson.dumps(report))
    return path


def test_the_view_selects_the_busiest_team_hour_and_measures_each_gap(tmp_path: Path) -> None:
    reports = ReportFile(write(tmp_path / "capacity.json", generated_report()))
    view = capacity_view(reports.load(), {})
    desk_a = view["teams"][0]
    by_hour = {c["hour_of_week"]: c for c in desk_a["cells"]}
    assert (by_hour[9]["day"], by_hour[9]["hour"], by_hour[9]["status"]) == ("Mon", 9, "short")
    assert by_hour[9]["shortfall"] == 2.0
    assert (by_hour[38]["day"], by_hour[38]["status"], by_hour[38]["shortfall"]) == (
        "Tue",
        "ok",
        -1.0,
    )
    assert (by_hour[167]["day"], by_hour[167]["hour"], by_hour[167]["status"]) == (
        "Sun",
        23,
        "unreachable",
    )
    assert (desk_a["hours_short"], desk_a["hours_unreachable"], desk_a["agent_hours_short"]) == (
        1,
        1,
        2.0,
    )
    selected = view["selected"]
    assert (selected["team"], selected["hour_of_week"], selected["needed"]) == ("Desk A", 9, 4)
    # The curve runs 3 agents past the need, flat after the report's last value, with the band.
    assert [p["agents"] for p in selected["curve"]] == list(range(8))
    assert [p["predicted"] for p in selected["curve"]][3:] == [0.9, 0.96, 0.96, 0.96, 0.96]
    assert selected["curve"][2]["low"] == pytest.approx(0.75)
    assert selected["curve"][4]["high"] == 1.0
    assert view["backtest"]["group_week_mae"] == 7.25
    assert [c["contract"] for c in view["contracts_at_risk"]] == ["gold"]


def test_a_chosen_team_and_hour_and_bad_ones(tmp_path: Path) -> None:
    reports = ReportFile(write(tmp_path / "capacity.json", generated_report()))
    status, body = answer(reports, {"team": "Desk A", "hour_of_week": "167"})
    assert status == 200 and body["selected"]["status"] == "unreachable"
    # No staffing reaches the target: the curve shows all the report has.
    assert [p["agents"] for p in body["selected"]["curve"]] == [0, 1, 2, 3, 4]
    assert answer(reports, {"team": "Desk C"}) == (
        400,
        {"error": "unknown team 'Desk C'; the report plans 2 teams"},
    )
    assert answer(reports, {"team": "Desk A", "hour_of_week": "168"})[0] == 400
    status, body = answer(reports, {"team": "Desk A", "hour_of_week": "10"})
    assert (status, body["error"]) == (400, "Desk A had no incidents at hour of the week 10")
    # The page shows the default view under the notice.
    html = page(reports, {"team": "Desk C"})
    assert "unknown team &#x27;Desk C&#x27;" in html and 'data-hour-of-week="9"' in html


def test_the_file_is_parsed_again_only_when_it_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "capacity.json", generated_report())
    reports = ReportFile(path)
    first = reports.load()
    assert reports.load() is first
    changed = generated_report()
    changed["target"] = 0.9
    write(path, changed)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert reports.load().report.target == 0.9


def test_without_a_report_the_answer_says_how_to_make_one(tmp_path: Path) -> None:
    status, body = answer(ReportFile(None), {})
    assert status == 404
    assert body["error"].startswith("No capacity report: SLA_CAPACITY_REPORT is not set.")
    assert HOW_TO in body["error"] and "sla-stream capacity" in HOW_TO
    missing = tmp_path / "nowhere.json"
    status, body = answer(ReportFile(missing), {})
    assert (status, body["error"]) == (404, f"No capacity report at {missing}. {HOW_TO}")
    html = page(ReportFile(None), {})
    assert 'id="no-report"' in html and "--format json --out capacity.json" in html


def test_a_file_that_is_no_report_is_refused_naming_field_and_value(tmp_path: Path) -> None:
    report = generated_report()
    report["teams"][0]["cells"][1]["hour_of_week"] = 170
    status, body = answer(ReportFile(write(tmp_path / "bad.json", report)), {})
    assert status == 500
    assert "bad.json: teams.0.cells.1.hour_of_week:" in body["error"]
    assert "(got 170)" in body["error"]
    (tmp_path / "text.json").write_text("not json")
    assert "not JSON" in answer(ReportFile(tmp_path / "text.json"), {})[1]["error"]


def test_the_page_prints_each_cell_and_the_backtest_error_beside_recommendations(
    tmp_path: Path,
) -> None:
    reports = ReportFile(write(tmp_path / "capacity.json", generated_report()))
    html = page(reports, {})
    assert 'class="short2 chosen" data-hour-of-week="9" data-current="2.0" data-needed="4"' in html
    assert 'class="ok" data-hour-of-week="38"' in html
    assert 'class="unreachable" data-hour-of-week="167"' in html
    error = capacity_html.error_words(capacity_view(reports.load(), {}))
    assert error == "MAE 7.2 pts; band -5.0/+10.0 pts"
    # Both hours short of the target, each with the error beside it.
    assert html.count(f"<td>{error}</td>") == 2
    assert "needed: 4 agents, 96.0 %" in html and "today: 2 agents, 80.0 %" in html
