"""The dashboard as a person sees it (headless Chromium) and served by either of two workers.

The stream and its hand-computed figures are in `dashboard_scenario.py`. The browser test needs
Debian's `chromium` and `chromium-driver` (`tests/system_programs.py`: installed by `make test`
where it can, a skip naming them where not, a failure in CI), and saves the screenshot the
README shows, `docs/dashboard.png`.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import yaml
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from sla_stream.analytics.report import render, reports_from_api
from sla_stream.core.contracts import parse_contracts
from tests.integration import dashboard_scenario as sc
from tests.integration.harness import System, WorkerProcess
from tests.system_programs import require

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
AT_RISK_COLUMNS = ("incident", "contract", "sev", "clock", "due", "left", "clause", "status")
OPEN_INCIDENTS = 3 + sc.PARTITIONS  # OVERDUE, SOON, LATER and one WAITING per partition


@pytest.fixture
def system(make_system: Callable[..., System]) -> System:
    return make_system(partitions=sc.PARTITIONS)


async def start(system: System, names: tuple[str, ...]) -> list[WorkerProcess]:
    await system.create_topics()
    await system.put_contracts(list(parse_contracts(yaml.safe_load(sc.CONTRACTS_YAML)).values()))
    return [system.worker(n).start() for n in names]


def dashboard_json(worker: WorkerProcess, **params: str) -> dict[str, Any]:
    query = urlencode({**sc.RANGE, **params})
    return orjson.loads(worker.get(f"/api/v1/dashboard?{query}", timeout=30))


def rates(model: dict[str, Any]) -> dict[str, list[tuple[str, int, int]]]:
    return {
        metric: [(p["period"], p["numerator"], p["denominator"]) for p in data["periods"]]
        for metric, data in model["portfolio"]["metrics"].items()
    }


async def wait_settled(worker: WorkerProcess, timeout_s: float = 90) -> dict[str, Any]:
    """Poll the dashboard's JSON until every settled clock and open incident is in it."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = dashboard_json(worker)
            if (
                rates(last) == sc.EXPECTED
                and last["open_incidents"]["count"] == OPEN_INCIDENTS
                and not last["open_incidents"]["missing"]
            ):
                return last
        except OSError as exc:
            last = exc
        await asyncio.sleep(0.5)
    raise AssertionError(f"dashboard not as expected after {timeout_s}s: {last}\n{worker.output()}")


def browser(tmp_path: Path) -> webdriver.Chrome:
    chromium, chromedriver = require("chromium"), require("chromedriver")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to download anything
    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1440,1000",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def texts(driver: webdriver.Chrome, css: str) -> list[str]:
    return [
        e.get_attribute("textContent").strip() for e in driver.find_elements(By.CSS_SELECTOR, css)
    ]


def table_rows(driver: webdriver.Chrome, css: str) -> list[list[str]]:
    rows = []
    for tr in driver.find_elements(By.CSS_SELECTOR, f"{css} tr"):
        cells = tr.find_elements(By.CSS_SELECTOR, "td")
        if cells:
            rows.append([c.get_attribute("textContent").strip() for c in cells])
    return rows


NO_UPDATES = "n/a (0/0)"  # the update-cycle column: no contract of the scenario keeps them


def check_portfolio_page(driver: webdriver.Chrome) -> None:
    kpis = dict(zip(texts(driver, ".kpi .label"), texts(driver, ".kpi .sub"), strict=True))
    assert kpis["first response adherence"] == "4 met / 6 settled"
    assert kpis["resolution adherence"] == "4 met / 6 settled"
    assert texts(driver, '.kpi[data-kpi="open"] .value') == [str(OPEN_INCIDENTS)]
    # Every rate with its numerator and denominator, per quarter, in the adherence table ...
    # (update cycles: no contract here keeps them, so n/a)
    assert table_rows(driver, "#adherence table") == [
        ["2026-Q2", "50.0 % (1/2)", "100.0 % (2/2)", NO_UPDATES],
        ["2026-Q3", "75.0 % (3/4)", "50.0 % (2/4)", NO_UPDATES],
    ]
    # ... and on the chart's points, with the target line in its legend.
    svg_text = texts(driver, "#adherence svg text")
    for label in ("1/2", "3/4", "2/2", "2/4", "first response", "resolution", "target 95 %"):
        assert label in svg_text, (label, svg_text)
    assert table_rows(driver, "#breaches table") == [
        ["acme", "1", "1"],
        ["globex", "0", "2"],
        ["all", "1", "3"],
    ]
    breaches_svg = texts(driver, "#breaches svg text")
    assert {"acme", "globex", "2026-Q2", "2026-Q3"} <= set(breaches_svg)
    # Every category with its clocks settled over the range, all of them charted (● ).
    trend = {
        row[0].removesuffix(" ●"): int(row[1])
        for row in table_rows(driver, "#trend-first_response table")
    }
    expected: dict[str, int] = {}
    for (_, category, _), n in sc.EXPECTED_TREND_COUNTS.items():
        expected[category] = expected.get(category, 0) + n
    assert trend == expected
    assert {"network", "database", "app"} <= set(texts(driver, "#trend-first_response svg text"))


def check_service_levels(driver: webdriver.Chrome, worker: WorkerProcess) -> None:
    """Acme's service level per month and its credits per quarter, on the page and in
    `sla-stream report` from the same worker, against the hand-computed figures."""
    rows = driver.find_elements(By.CSS_SELECTOR, "#service-levels table.levels tr[data-level]")
    got = []
    for row in rows:
        cells = [
            c.get_attribute("textContent").strip() for c in row.find_elements(By.TAG_NAME, "td")
        ]
        got.append((row.get_attribute("data-period"), cells[4], cells[5]))
        assert cells[0] == "acme" and cells[3] == "90 %" and cells[6] == "4.3 Monthly service level"
    assert got == [
        (month, f"{100 * n / d:.1f} % ({n}/{d})" if d else f"n/a ({n}/{d})", status)
        for month, n, d, status in sc.EXPECTED_LEVEL
    ]
    credits = {
        r[1]: (r[2], r[3], r[4]) for r in table_rows(driver, "#service-levels table.credits")
    }
    assert credits == {"2026-Q2": ("500.00 EUR", "1", "2026-06"), "2026-Q3": ("0.00 EUR", "0", "-")}
    # The report, from the same worker's adherence API.
    text = render(
        reports_from_api(worker.url(""), "2026-Q2", "2026-Q4", "quarter", ["acme"]), "table"
    )
    assert re.search(
        r"2026-06 +urgent-response +P1/P2 +first_response +90 % +0\.00 % \(0/1\) +missed", text
    ), text
    assert re.search(r"2026-05 +urgent-response .* 100\.00 % \(1/1\) +met", text), text
    assert re.search(r"2026-Q2 +500\.00 EUR +2026-06 \(1 missed, 5 %\)", text), text
    assert re.search(r"2026-Q3 +0\.00 EUR +-", text), text


def check_at_risk(driver: webdriver.Chrome, expected: list[tuple[str, str]]) -> None:
    rows = driver.find_elements(By.CSS_SELECTOR, "#at-risk tr[data-incident]")
    got = [(r.get_attribute("data-incident"), r.get_attribute("data-metric")) for r in rows]
    assert got == expected
    cells = table_rows(driver, "#at-risk table")
    first = dict(zip(AT_RISK_COLUMNS, cells[0], strict=True))
    assert first["incident"] == "OVERDUE" and first["clock"] == "first response"
    assert re.fullmatch(r"overdue 1[4-6]m", first["left"]), first
    assert first["clause"] == "4.1 Response"
    assert "overdue" in rows[0].get_attribute("class")
    soon = dict(zip(AT_RISK_COLUMNS, cells[2], strict=True))
    assert soon["incident"] == "SOON" and re.fullmatch(r"1h 5\dm|2h", soon["left"]), soon
    assert cells[-1][5] == "paused, 1d 16h left"  # 40 business hours, all still to run


async def test_browser_shows_the_scripted_figures_and_saves_the_screenshot(
    system: System, tmp_path: Path
) -> None:
    (worker,) = await start(system, ("w1",))
    worker.wait_ready()
    await system.send(sc.stream(datetime.now(UTC)))
    await wait_settled(worker)
    driver = browser(tmp_path)
    try:
        driver.get(worker.url("/?" + urlencode(sc.RANGE)))
        assert driver.title == "SLA adherence · portfolio"
        check_portfolio_page(driver)
        check_service_levels(driver, worker)
        check_at_risk(driver, sc.expected_at_risk())
        # Nothing but the worker itself is loaded: no CDN, no script.
        origin = worker.url("")
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert all(r.startswith(origin) for r in resources), resources
        assert driver.find_elements(By.TAG_NAME, "script") == []
        save_full_page(driver, SCREENSHOT)

        # Drill-down: the contract's own figures, commitments and incidents.
        follow(
            driver, driver.find_element(By.CSS_SELECTOR, '#contracts tr[data-contract="acme"] a')
        )
        assert driver.title == "SLA adherence · contract acme"
        assert table_rows(driver, "#adherence table") == [
            ["2026-Q2", "50.0 % (1/2)", "100.0 % (2/2)", NO_UPDATES],
            ["2026-Q3", "100.0 % (2/2)", "50.0 % (1/2)", NO_UPDATES],
        ]
        commitments = " ".join(texts(driver, "#commitments td"))
        assert "P1 first response within 10 minutes, 24x7" in commitments
        assert "90 % of P1/P2 first responses within target each month" in commitments
        # The target line is acme's own service level for first response; resolution, which
        # has none, keeps the default.
        legend = texts(driver, "#adherence svg text")
        assert "first response target 90 %" in legend and "resolution target 95 %" in legend
        assert "Acme is restored within Table 1." in " ".join(texts(driver, "#commitments li"))
        assert {i for i, _ in _rows(driver)} == {"OVERDUE", "SOON"}

        # Filters: severity P1 and tier silver, through the form as a person would.
        Select(driver.find_element(By.NAME, "contract")).select_by_value("")
        Select(driver.find_element(By.NAME, "severity")).select_by_value("P1")
        follow(driver, driver.find_element(By.CSS_SELECTOR, "form.filters button"))
        assert table_rows(driver, "#adherence table") == [
            [p, f"{100 * n / d:.1f} % ({n}/{d})", f"{100 * n2 / d2:.1f} % ({n2}/{d2})", NO_UPDATES]
            for (p, n, d), (_, n2, d2) in zip(
                sc.EXPECTED_P1["first_response"], sc.EXPECTED_P1["resolution"], strict=True
            )
        ]
        assert _rows(driver) == []  # no open P1 incident
        Select(driver.find_element(By.NAME, "severity")).select_by_value("")
        Select(driver.find_element(By.NAME, "tier")).select_by_value("silver")
        follow(driver, driver.find_element(By.CSS_SELECTOR, "form.filters button"))
        assert texts(driver, ".kpi .sub")[:2] == ["1 met / 2 settled", "1 met / 2 settled"]
        assert [r[0] for r in table_rows(driver, "#contracts table")] == ["globex"]
    finally:
        driver.quit()


def follow(driver: webdriver.Chrome, element: Any) -> None:
    """Click a link or button and wait until the next page has replaced this one.

    The old document is marked with a window property, which the next document does not have.
    Selenium's `staleness_of` is not used: mid-navigation chromedriver may answer a question
    about the old element with an "unknown error" ("Node with given id does not belong to the
    document") instead of a stale reference, and that failed a CI run. Errors while the page
    is being swapped are retried until the timeout.
    """
    driver.execute_script("window.__slaOldPage = true")
    element.click()
    WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.__slaOldPage === undefined && document.readyState === 'complete'"
        )
    )


def save_full_page(driver: webdriver.Chrome, path: Path) -> None:
    """Screenshot the whole page: the window's outer size includes what is not page, so grow it
    until the page fits."""
    height = driver.execute_script(
        "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight"
    )
    driver.set_window_size(1440, height)
    path.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(path))


def _rows(driver: webdriver.Chrome) -> list[tuple[str, str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#at-risk tr[data-incident]")
    return [(r.get_attribute("data-incident"), r.get_attribute("data-metric")) for r in rows]


async def wait_split(system: System, workers: list[WorkerProcess]) -> list[list[int]]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        owned = [w.partitions() or [] for w in workers]
        if all(owned) and sorted(p for ps in owned for p in ps) == list(range(system.partitions)):
            return owned
        await asyncio.sleep(0.5)
    raise AssertionError(f"partitions not split: {[w.partitions() for w in workers]}")


async def test_either_of_two_workers_serves_incidents_of_both(system: System) -> None:
    w1, w2 = await start(system, ("w1", "w2"))
    owned = await wait_split(system, [w1, w2])
    now = datetime.now(UTC)
    await system.send(sc.stream(now))
    first, second = await wait_settled(w1), await wait_settled(w2)
    expected = sc.expected_at_risk()
    for model in (first, second):
        rows = model["open_incidents"]["at_risk"]
        assert [(r["incident_id"], r["metric"]) for r in rows] == expected
        assert rates(model) == sc.EXPECTED
    assert first["breaches"] == second["breaches"]
    # Each worker holds only its own partitions' incidents; together, all of them.
    local = []
    for worker, parts in zip((w1, w2), owned, strict=True):
        query = urlencode({"partitions": ",".join(map(str, parts)), "at": now.isoformat()})
        body = orjson.loads(worker.get(f"/api/v1/cluster/incidents?{query}", timeout=10))
        assert body["partitions"] == parts
        local.append({i["incident_id"] for i in body["incidents"]})
    assert local[0] and local[1] and not local[0] & local[1]
    assert local[0] | local[1] == {i for i, _ in expected}
    # The page from either worker lists every open incident.
    for worker in (w1, w2):
        html = worker.get("/?" + urlencode(sc.RANGE), timeout=30).decode()
        found = set(re.findall(r'data-incident="([^"]+)"', html))
        assert found == {i for i, _ in expected}
        assert "Partitions without an answer" not in html
