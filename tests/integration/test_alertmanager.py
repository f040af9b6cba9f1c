"""Debian's Alertmanager receives the bridge's alerts for a worker's scripted stream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from sla_stream.broker import EmbeddedBroker, free_port
from sla_stream.core.terms import ContractRecord, ContractTerms, Target
from tests.integration.harness import System, TopicReader
from tests.integration.programs import DEPLOY, Program, alertmanager, program, run_tool
from tests.integration.test_worker import event, opened

pytestmark = pytest.mark.integration

AM_CONFIG = DEPLOY / "prometheus" / "alertmanager.yml"


def test_amtool_accepts_the_shipped_config_and_routes_as_documented() -> None:
    amtool = program("amtool")
    out = run_tool(amtool, "check-config", str(AM_CONFIG))
    assert "SUCCESS" in out and "2 inhibit rules" in out

    def route(*labels: str) -> str:
        args = ["config", "routes", "test", f"--config.file={AM_CONFIG}", *labels]
        return run_tool(amtool, *args).splitlines()[0].strip()  # then a note on stderr

    assert route("alertname=SlaBreach", "severity=P3", "incident=INC-1") == "sla-breaches"
    assert route("alertname=SlaWarning", "severity=P1") == "sla-warnings-urgent"
    assert route("alertname=SlaWarning", "severity=P4") == "sla-warnings"
    assert route("alertname=SlaStreamWorkerDown", "urgency=page") == "sre-pager"
    assert route("alertname=SlaStreamDeadLetters", "urgency=ticket") == "sre-tickets"


def am_contract(contract_id: str = "am") -> ContractRecord:
    """24x7; first response 300 s with one warning at 50 %; resolution an hour."""
    targets = [
        Target(
            metric=metric,
            severity=sev,
            allowance_s=allowance,
            calendar="24x7",
            warning_thresholds=(0.5,),
            clause_id="7.1",
            clause_title="Critical incident handling",
        )
        for sev in ("P1", "P2", "P3", "P4")
        for metric, allowance in (("first_response", 300.0), ("resolution", 3600.0))
    ]
    terms = ContractTerms(
        contract_id=contract_id,
        customer_id="cust-am",
        tier="gold",
        timezone="UTC",
        calendars={"24x7": {"timezone": "UTC", "hours": "24x7"}},
        targets=tuple(targets),
    )
    return ContractRecord(contract_id=contract_id, versions=(terms,))


@dataclass
class BridgeProcess:
    """`sla-stream notify alertmanager` as a subprocess, with its metrics port."""

    system: System
    am_url: str
    group: str
    log_path: Path
    resend_interval_s: float = 1.0
    web_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BridgeProcess:
        self.web_port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLA_")},
            "SLA_BROKER": self.system.bootstrap,
            "SLA_TOPIC_PREFIX": self.system.prefix,
            "SLA_ALERTMANAGER_URL": self.am_url,
        }
        args = ["notify", "alertmanager", "--group", self.group]
        args += ["--resend-interval", str(self.resend_interval_s)]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sla_stream.cli", *args, "--web-port", str(self.web_port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=2) as r:
            return r.read()

    def wait_assigned(self, partitions: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"bridge exited {self.proc.returncode}:\n{self.output()}")
            try:
                if len(orjson.loads(self.get("/healthz"))["partitions"]) == partitions:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"bridge not assigned after {timeout_s}s:\n{self.output()}")

    def metric(self, name: str, **labels: str) -> float:
        text = self.get("/metrics").decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def active(am: Program) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Alertmanager's unresolved alerts by (alertname, incident, metric); fails on duplicates."""
    got: dict[tuple[str, str, str], dict[str, Any]] = {}
    for a in am.get_json("/api/v2/alerts"):
        key = (a["labels"]["alertname"], a["labels"]["incident"], a["labels"]["metric"])
        assert key not in got, f"two alerts for {key}: {got[key]} and {a}"
        got[key] = a
    return got


async def until(what: str, check: Callable[[], bool], *logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(f() for f in logs))


async def committed(system: System, group: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=system.bootstrap, group_id=group)
    await consumer.start()
    try:
        topic = system.topic("alerts")
        return {
            p: await consumer.committed(TopicPartition(topic, p)) for p in range(system.partitions)
        }
    finally:
        await consumer.stop()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def system(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[System]:
    s = System(broker.bootstrap, tmp_path)
    try:
        yield s
    finally:
        s.stop_all()


FR = "first_response"


async def test_bridge_fires_resolves_ignores_repeats_and_survives_an_alertmanager_restart(
    system: System, tmp_path: Path
) -> None:
    await system.create_topics()
    await system.put_contracts([am_contract()])
    system.worker("w1").start().wait_ready()
    am_root = tmp_path / "am"
    am_root.mkdir()
    am = alertmanager(am_root, yaml.safe_load(AM_CONFIG.read_text())).start()
    group = f"{system.prefix}notify"
    # No periodic re-post during the test (it would be the post that meets the outage); after
    # an outage the bridge re-posts the firing set at once anyway.
    bridge = BridgeProcess(system, am.base, group, tmp_path / "bridge.log", 60.0).start()
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    logs = (bridge.output, am.output)
    try:
        bridge.wait_assigned(system.partitions)
        t0 = datetime.now(UTC)
        # A and D: 160 s into a 300 s response window, past the 50 % warning.
        # B: 400 s in, warned and breached.
        await system.send(
            [
                opened("INC-A", t0 - timedelta(seconds=160), contract="am", severity="P2"),
                opened("INC-B", t0 - timedelta(seconds=400), contract="am", severity="P1"),
                opened("INC-D", t0 - timedelta(seconds=160), contract="am", severity="P3"),
            ]
        )
        published = await alerts.wait_for(lambda v: len(v) >= 4, timeout_s=30)
        by_slot = {(a["incident_id"], a["kind"]): a for a in published}
        phase1 = {
            ("SlaWarning", "INC-A", FR),
            ("SlaWarning", "INC-B", FR),
            ("SlaBreach", "INC-B", FR),
            ("SlaWarning", "INC-D", FR),
        }
        await until("the firing alerts", lambda: set(active(am)) == phase1, *logs)

        got = active(am)
        breach = got[("SlaBreach", "INC-B", FR)]
        assert breach["labels"] == {
            "alertname": "SlaBreach",
            "contract": "am",
            "customer": "cust-am",
            "incident": "INC-B",
            "metric": FR,
            "severity": "P1",
            "clause": "7.1",
        }
        assert breach["annotations"]["alert_id"] == by_slot[("INC-B", "breach")]["alert_id"]
        assert breach["startsAt"].startswith((t0 - timedelta(seconds=100)).isoformat()[:19])
        warning = got[("SlaWarning", "INC-A", FR)]
        assert warning["labels"]["threshold"] == "0.5" and warning["labels"]["severity"] == "P2"
        assert warning["annotations"]["alert_id"] == by_slot[("INC-A", "warning")]["alert_id"]
        # The shipped config's inhibit rule: a breach mutes the warnings of its clock.
        await until(
            "the breach to inhibit its warning",
            lambda: active(am)[("SlaWarning", "INC-B", FR)]["status"]["state"] == "suppressed",
            *logs,
        )
        assert got[("SlaWarning", "INC-A", FR)]["status"]["state"] == "active"

        # A `met` resolves its warning.
        await system.send([event("r", "INC-A", "responded", datetime.now(UTC))])
        phase2 = phase1 - {("SlaWarning", "INC-A", FR)}
        await until("the met to resolve INC-A's warning", lambda: set(active(am)) == phase2, *logs)

        # A re-sent alert (as a worker replaying its outbox would) makes no second alert.
        raw = orjson.dumps(by_slot[("INC-B", "breach")])
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(system.topic("alerts"), raw, key=b"INC-B")
        finally:
            await producer.stop()
        await until(
            "the bridge to read the repeat",
            lambda: bridge.metric("sla_notify_alerts_consumed_total", kind="breach") == 2,
            *logs,
        )
        again = active(am)
        assert set(again) == phase2  # `active` fails on a second alert for the same clock
        assert again[("SlaBreach", "INC-B", FR)]["startsAt"] == breach["startsAt"]
        assert again[("SlaBreach", "INC-B", FR)]["fingerprint"] == breach["fingerprint"]

        # Alertmanager stops mid-stream: D is met and C warns and breaches meanwhile.
        before = await committed(system, group)
        consumed = bridge.metric("sla_notify_alerts_consumed_total")
        am.stop()
        await system.send(
            [
                event("r", "INC-D", "responded", datetime.now(UTC)),
                opened("INC-C", datetime.now(UTC) - timedelta(seconds=400), contract="am"),
            ]
        )
        await alerts.wait_for(lambda v: len(v) >= 9, timeout_s=30)  # 4, met, repeat, D met, C x2
        await until(
            "the bridge to read a record and fail to post it (it reads on once it can post)",
            lambda: (
                bridge.metric("sla_notify_alerts_consumed_total") > consumed
                and bridge.metric("sla_notify_posts_total", result="failed") >= 3  # 3.5 s down
            ),
            *logs,
        )
        assert await committed(system, group) == before  # nothing committed before acceptance

        am = alertmanager(am_root, yaml.safe_load(AM_CONFIG.read_text()), port=am.port).start()
        final = {
            ("SlaWarning", "INC-B", FR),  # firing before the restart: re-posted
            ("SlaBreach", "INC-B", FR),
            ("SlaWarning", "INC-C", FR),  # read while Alertmanager was down: delivered now
            ("SlaBreach", "INC-C", FR),
        }
        await until("everything after the restart", lambda: set(active(am)) == final, *logs)
        deadline = time.monotonic() + 30
        while sum(o or 0 for o in (await committed(system, group)).values()) < len(alerts.values):
            assert time.monotonic() < deadline, f"offsets not committed:\n{bridge.output()}"
            await asyncio.sleep(0.3)
        assert not any(a["kind"] == "met" and a["incident_id"] == "INC-B" for a in alerts.values)
    finally:
        await alerts.stop()
        bridge.stop()
        am.stop()


async def test_a_restarted_bridge_rebuilds_what_fires_from_the_topic(
    system: System, tmp_path: Path
) -> None:
    """Killed, it re-reads the topic up to its committed offsets: an Alertmanager that started
    empty meanwhile gets back what still fires, and nothing that was cleared."""
    await system.create_topics()
    await system.put_contracts([am_contract()])
    system.worker("w1").start().wait_ready()
    config = yaml.safe_load(AM_CONFIG.read_text())
    (tmp_path / "am1").mkdir()
    am = alertmanager(tmp_path / "am1", config).start()
    group = f"{system.prefix}notify"
    bridge = BridgeProcess(system, am.base, group, tmp_path / "bridge.log").start()
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    try:
        bridge.wait_assigned(system.partitions)
        t0 = datetime.now(UTC)
        await system.send(
            [
                opened("INC-E", t0 - timedelta(seconds=400), contract="am"),
                opened("INC-F", t0 - timedelta(seconds=160), contract="am"),
                event("r", "INC-F", "responded", t0 - timedelta(seconds=1)),
            ]
        )
        await alerts.wait_for(lambda v: len(v) >= 4, timeout_s=30)  # E x2, F warning and met
        firing = {("SlaWarning", "INC-E", FR), ("SlaBreach", "INC-E", FR)}
        await until("E firing, F resolved", lambda: set(active(am)) == firing, bridge.output)
        deadline = time.monotonic() + 30
        while sum(o or 0 for o in (await committed(system, group)).values()) < 4:
            assert time.monotonic() < deadline, f"offsets not committed:\n{bridge.output()}"
            await asyncio.sleep(0.3)
        os.killpg(bridge.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
        bridge.proc.wait(10)  # type: ignore[union-attr]
        am.stop()
        (tmp_path / "am2").mkdir()
        am = alertmanager(tmp_path / "am2", config, port=am.port).start()  # empty
        await system.send([opened("INC-G", datetime.now(UTC) - timedelta(seconds=400), "am")])
        await alerts.wait_for(lambda v: len(v) >= 6, timeout_s=30)
        bridge.start()
        bridge.wait_assigned(system.partitions)
        expected = firing | {("SlaWarning", "INC-G", FR), ("SlaBreach", "INC-G", FR)}
        await until("E back and G delivered", lambda: set(active(am)) == expected, bridge.output)
        assert bridge.metric("sla_notify_alerts_consumed_total", mode="replayed") == 4
        first = active(am)
        await asyncio.sleep(2.5)  # two re-post intervals: each re-post updates the same alerts
        later = active(am)
        assert set(later) == expected  # `active` fails on a second alert for one clock
        for key, a in later.items():
            assert (a["fingerprint"], a["startsAt"]) == (
                first[key]["fingerprint"],
                first[key]["startsAt"],
            )
            assert instant(a["endsAt"]) > instant(first[key]["endsAt"])  # re-posted: valid longer
    finally:
        await alerts.stop()
        bridge.stop()
        am.stop()
