"""Debian's Prometheus scrapes a live worker; promtool checks the shipped config and rules."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.integration.harness import System, TopicReader
from tests.integration.programs import DEPLOY, Program, program, prometheus, run_tool
from tests.integration.test_worker import event, fast_contract, opened

pytestmark = pytest.mark.integration


def shipped_rules() -> list[str]:
    """The alert names of deploy/prometheus/rules.yml, as written."""
    doc = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    return [r["alert"] for g in doc["groups"] for r in g["rules"]]


def test_promtool_accepts_the_shipped_config_and_rules() -> None:
    promtool = program("promtool")
    out = run_tool(promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert "SUCCESS: 1 rule files found" in out
    out = run_tool(promtool, "check", "rules", str(DEPLOY / "prometheus" / "rules.yml"))
    assert f"SUCCESS: {len(shipped_rules())} rules found" in out
    # The rules' own unit tests: each fires on the series it should, and only then.
    out = run_tool(promtool, "test", "rules", str(DEPLOY / "prometheus" / "rules.test.yml"))
    assert "SUCCESS" in out


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: a rule with bad PromQL is refused."""
    bad = tmp_path / "rules.yml"
    bad.write_text(
        "groups:\n- name: x\n  rules:\n  - alert: X\n    expr: sum by (le (rate(x[5m]))\n"
    )
    import subprocess

    done = subprocess.run([program("promtool"), "check", "rules", str(bad)], capture_output=True)
    assert done.returncode != 0


def query(prom: Program, promql: str) -> list[dict[str, Any]]:
    got = prom.get_json("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert got["status"] == "success", got
    return got["data"]["result"]


async def wait_for_query(
    prom: Program, promql: str, expected: dict[tuple[str, ...], float], labels: tuple[str, ...]
) -> None:
    deadline = time.monotonic() + 45
    got: dict[tuple[str, ...], float] = {}
    while time.monotonic() < deadline:
        rows = query(prom, promql)
        got = {tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1]) for r in rows}
        if got == expected:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{promql}: expected {expected}, Prometheus has {got}\n{prom.output()}")


async def test_prometheus_scrapes_a_live_worker_and_counts_its_alerts(
    system: System, tmp_path: Path
) -> None:
    await system.create_topics()
    await system.put_contracts([fast_contract("prom", fr_s=60, res_s=3600)])
    worker = system.worker("w1").start()
    worker.wait_ready()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "prometheus" / "rules.yml")],  # the shipped rules load
        "scrape_configs": [
            {
                "job_name": "sla-stream",
                "static_configs": [{"targets": [f"127.0.0.1:{worker.web_port}"]}],
            }
        ],
    }
    prom = prometheus(tmp_path, config).start()
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    try:
        await wait_for_query(prom, 'up{job="sla-stream"}', {("sla-stream",): 1.0}, ("job",))
        t0 = datetime.now(UTC)
        # INC-1 (P1) opened 2 minutes ago: three warnings and the breach of its 60 s response.
        # INC-2 (P2) responded after 35 s: its 50 % warning, then met. INC-3 (P2): met at 5 s.
        await system.send(
            [
                opened("INC-1", t0 - timedelta(seconds=120), contract="prom", severity="P1"),
                opened("INC-2", t0 - timedelta(seconds=40), contract="prom", severity="P2"),
                event("r", "INC-2", "responded", t0 - timedelta(seconds=5)),
                opened("INC-3", t0 - timedelta(seconds=10), contract="prom", severity="P2"),
                event("r", "INC-3", "responded", t0 - timedelta(seconds=5)),
            ]
        )
        await alerts.wait_for(lambda v: len(v) >= 7, timeout_s=30)
        expected = {
            ("warning", "first_response", "P1"): 3.0,
            ("breach", "first_response", "P1"): 1.0,
            ("warning", "first_response", "P2"): 1.0,
            ("met", "first_response", "P2"): 2.0,
        }
        await wait_for_query(
            prom,
            "sum by (kind, metric, severity) (sla_alerts_total)",
            expected,
            ("kind", "metric", "severity"),
        )
        await wait_for_query(
            prom, "sum by (type) (sla_events_total)", {("opened",): 3, ("responded",): 2}, ("type",)
        )
        assert len(alerts.values) == 7  # what the worker published is what Prometheus counted
        await dashboard_queries_run(prom)
        rules = prom.get_json("/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in rules} == {"sla-stream", "sla-notify"}
        health = {r["name"]: r["health"] for g in rules for r in g["rules"]}
        assert set(health) == set(shipped_rules()), health
        assert set(health.values()) == {"ok"}, health  # every rule evaluated, none in error
    finally:
        await alerts.stop()
        prom.stop()


async def dashboard_queries_run(prom: Program) -> None:
    """Every Grafana panel's query is valid PromQL here; the worker's panels have data."""
    path = DEPLOY / "grafana" / "dashboards" / "sla-stream-sre.json"
    with_data = {"Event rate by type", "Event processing time", "Open clocks"}
    with_data |= {"Alerts published by kind", "Workers up"}
    for panel in (p for p in orjson.loads(path.read_bytes())["panels"] if p["type"] != "row"):
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m")
            deadline = time.monotonic() + 15  # a rate needs two scrapes of the new series
            while not query(prom, expr) and panel["title"] in with_data:
                assert time.monotonic() < deadline, (panel["title"], expr)
                await asyncio.sleep(0.5)
