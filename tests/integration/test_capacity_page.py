"""The capacity page as a person sees it, on a report the real `sla-stream capacity` wrote.

A slice of the shipped ServiceNow log (incidents opened 2016-03-01..2016-04-10) goes through
`sla-stream capacity --format json`; a real worker serves it from `SLA_CAPACITY_REPORT`, and
headless Chromium (the helpers of test_dashboard.py) reads the figures back off the page. Saves
the screenshot the README shows, `docs/capacity.png`.
"""

from __future__ import annotations

import csv
import gzip
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from selenium.webdriver.common.by import By

from tests.integration.harness import System
from tests.integration.test_dashboard import (
    browser,
    follow,
    save_full_page,
    table_rows,
    texts,
)

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / "examples" / "servicenow" / "data" / "incident_event_log.csv.gz"
SCREENSHOT = REPO / "docs" / "capacity.png"
FIRST, END = datetime(2016, 3, 1), datetime(2016, 4, 11)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def log_slice(out: Path) -> int:
    """The log's rows of incidents opened in [FIRST, END), as a ServiceNow export again."""
    kept = 0
    with gzip.open(LOG, "rt", newline="") as source, out.open("w", newline="") as sink:
        reader, writer = csv.reader(source), csv.writer(sink)
        header = next(reader)
        writer.writerow(header)
        opened = header.index("opened_at")
        for row in reader:
            if FIRST <= datetime.strptime(row[opened], "%d-%m-%Y %H:%M") < END:
                writer.writerow(row)
                kept += 1
    return kept


def capacity_report(tmp_path: Path) -> Path:
    events = tmp_path / "slice.csv"
    assert log_slice(events) > 10_000
    out = tmp_path / "capacity.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_")}
    # One thread for scikit-learn's predictions: on a busy machine OpenMP's spinning threads
    # made the same command several times slower.
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "sla_stream.cli", "capacity", "--log", str(events),
         "--until", END.date().isoformat(), "--teams", "2", "--target", "0.8",
         "--format", "json", "--out", str(out)],
        capture_output=True, timeout=300, env=env, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return out


def shown_cell(driver: Any, how: int) -> tuple[str, str]:
    """(agents today, agents needed) as the heat map prints them."""
    cell = driver.find_element(By.CSS_SELECTOR, f'#heat-map td[data-hour-of-week="{how}"]')
    now, needed = cell.text.split("\n")
    return now, needed


def check_heat_map(driver: Any, team: dict[str, Any]) -> None:
    cells = team["cells"]
    short = [c for c in cells if c["needed"] is not None and c["needed"] > c["current"]]
    staffed = [c for c in cells if c["needed"] is not None and c["needed"] <= c["current"]]
    unreachable = [c for c in cells if c["needed"] is None]
    picked = [group[len(group) // 2] for group in (short, staffed, unreachable) if group]
    assert len(picked) >= 2, "the slice should give a mixed heat map"
    for c in picked:
        needed = "-" if c["needed"] is None else str(c["needed"])
        assert shown_cell(driver, c["hour_of_week"]) == (f"{c['current']:.1f}", needed)
    hours = driver.find_elements(By.CSS_SELECTOR, "#heat-map td[data-hour-of-week]")
    assert len(hours) == len(cells)
    row = driver.find_element(By.CSS_SELECTOR, f'#heat-map tr[data-day="{DAYS[1]}"]')
    assert len(row.find_elements(By.TAG_NAME, "td")) == 24


async def test_the_capacity_page_shows_the_report_the_cli_wrote(
    make_system: Callable[..., System], tmp_path: Path
) -> None:
    path = capacity_report(tmp_path)
    report = orjson.loads(path.read_bytes())
    system = make_system(extra_env={"SLA_CAPACITY_REPORT": str(path)})
    await system.create_topics()
    worker = system.worker("w1").start()
    worker.wait_ready()
    api = orjson.loads(worker.get("/api/v1/capacity", timeout=30))
    assert [t["team"] for t in api["teams"]] == [t["team"] for t in report["teams"]]
    assert api["contracts_at_risk"] == report["contracts_at_risk"]
    team = report["teams"][0]
    driver = browser(tmp_path)
    try:
        driver.get(worker.url("/capacity"))
        assert driver.title == f"SLA capacity · {team['team']}"
        bt = report["backtest"]
        backtest = texts(driver, "#backtest")[0]
        assert f"backtest MAE {bt['group_week_mae']:.1f} pts per team-week" in backtest
        assert f"{bt['hour_of_week_mae']:.1f} per hour-of-week cell" in backtest
        low, high = bt["band_points"]
        error = f"MAE {bt['group_week_mae']:.1f} pts; band {low:+.1f}/{high:+.1f} pts"
        check_heat_map(driver, team)
        # Every hour short of the target is listed with the backtest's error beside it.
        rows = table_rows(driver, "#recommendations table")
        short = [c for c in team["cells"] if c["needed"] is None or c["needed"] > c["current"]]
        assert len(rows) == len(short) and {r[-1] for r in rows} == {error}
        assert [r[3] for r in rows] == ["-" if c["needed"] is None else str(c["needed"])
                                        for c in short]  # fmt: skip
        assert table_rows(driver, "#contracts-at-risk table") == [
            [
                c["contract"],
                str(c["incidents"]),
                f"{100 * c['predicted']:.1f} %",
                ", ".join(f"{t['team']} {100 * t['share']:.0f} %" for t in c["teams_under_target"]),
            ]
            for c in report["contracts_at_risk"]
        ]
        # The chart of the team's busiest hour marks today's staffing and the need.
        busiest = max(team["cells"], key=lambda c: (c["arrivals_per_week"], -c["hour_of_week"]))
        chart = driver.find_element(By.ID, "curve")
        assert chart.get_attribute("data-hour-of-week") == str(busiest["hour_of_week"])
        legend = texts(driver, "#curve svg text")
        assert f"today: {busiest['current']:g} agents, {100 * busiest['predicted']:.1f} %" in legend
        assert "target 80 %" in legend
        assert driver.find_elements(By.TAG_NAME, "script") == []
        save_full_page(driver, SCREENSHOT)

        # A short hour's cell opens its own curve, which reaches the target at the need.
        short_reached = [c for c in short if c["needed"] is not None]
        target_cell = short_reached[0] if short_reached else short[0]
        how = target_cell["hour_of_week"]
        follow(driver, driver.find_element(By.CSS_SELECTOR, f'td[data-hour-of-week="{how}"] a'))
        assert driver.find_element(By.ID, "curve").get_attribute("data-hour-of-week") == str(how)
        legend = texts(driver, "#curve svg text")
        if target_cell["needed"] is not None:
            at_need = target_cell["curve"][
                min(target_cell["needed"], len(target_cell["curve"]) - 1)
            ]
            assert at_need >= report["target"]
            assert f"needed: {target_cell['needed']} agents, {100 * at_need:.1f} %" in legend
        else:
            assert "needed: target not reached" in legend
    finally:
        driver.quit()
