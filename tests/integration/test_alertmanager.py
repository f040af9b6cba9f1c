"""Debian's Alertmanager receives the bridge's alerts for a worker's scripted stream."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from sla_stream.broker import free_port
from sla_stream.core.terms import ContractRecord, ContractTerms, Target
from tests.integration.harness import CliProcess, System, TopicReader
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
class BridgeProcess(CliProcess):
    """`sla-stream notify alertmanager` as a subprocess, with its metrics port."""

    system: System
    am_url: str
    group: str
    log_path: Path
    resend_interval_s: float = 1.0
    max_poll_interval_s: float | None = None  # the bridge's default when None
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
        if self.max_poll_interval_s is not None:
            args += ["--max-poll-interval", str(self.max_poll_interval_s)]
        self.spawn([*args, "--web-port", str(self.web_port)], env)
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


FR = "first_response"


@dataclass
class Scene:
    """A worker, an Alertmanager running the shipped config, the bridge, and an alerts reader."""

    system: System
    root: Path
    am: Program
    bridge: BridgeProcess
    alerts: TopicReader

    @property
    def group(self) -> str:
        return self.bridge.group

    def logs(self) -> str:
        return self.bridge.output() + "\n" + self.am.output()

    async def until_active(self, what: str, expected: set[tuple[str, str, str]]) -> None:
        await until(what, lambda: set(active(self.am)) == expected, self.logs)

    def restart_alertmanager(self, storage: str) -> None:
        """Start it again on the same port, with `storage` (the old one, or a fresh one)."""
        self.am.stop()
        (self.root / storage).mkdir(exist_ok=True)
        config = yaml.safe_load(AM_CONFIG.read_text())
        self.am = alertmanager(self.root / storage, config, port=self.am.port).start()

    async def committed_total(self) -> int:
        return sum(o or 0 for o in (await committed(self.system, self.group)).values())

    async def until_all_committed(self) -> None:
        deadline = time.monotonic() + 30
        while await self.committed_total() < len(self.alerts.values):
            assert time.monotonic() < deadline, f"offsets not committed:\n{self.logs()}"
            await asyncio.sleep(0.3)


async def start_scene(
    system: System, root: Path, resend_interval_s: float, max_poll_interval_s: float | None = None
) -> Scene:
    await system.create_topics()
    await system.put_contracts([am_contract()])
    system.worker("w1").start().wait_ready()
    (root / "am").mkdir()
    am = alertmanager(root / "am", yaml.safe_load(AM_CONFIG.read_text())).start()
    group = f"{system.prefix}notify"
    bridge = BridgeProcess(
        system, am.base, group, root / "bridge.log", resend_interval_s, max_poll_interval_s
    )
    try:
        bridge.start().wait_assigned(system.partitions)
        # A new group's first rebuild takes what is on the topic then as history (delivered, not
        # posted): a scene sends its first events only once that rebuild is done. `/healthz`
        # lists the partitions before it (a CI run sent too early and the test timed out).
        await until("the bridge's first rebuild", lambda: "rebuilt from" in bridge.output())
    except BaseException:
        bridge.stop()
        am.stop()
        raise
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    return Scene(system, root, am, bridge, alerts)


@pytest.fixture
async def scene(
    system: System, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Scene]:
    """`request.param`: the resend interval, or (resend interval, max poll interval)."""
    param = request.param if isinstance(request.param, tuple) else (request.param,)
    s = await start_scene(system, tmp_path, *param)
    try:
        yield s
    finally:
        await s.alerts.stop()
        s.bridge.stop()
        s.am.stop()


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


# No periodic re-post in this test (it would be the post that meets the outage); after an
# outage the bridge re-posts the firing set at once anyway.
@pytest.mark.parametrize("scene", [60.0], indirect=True)
async def test_bridge_fires_resolves_ignores_repeats_and_survives_an_alertmanager_restart(
    scene: Scene,
) -> None:
    # A and D: 160 s into a 300 s response window, past the 50 % warning. B: warned, breached.
    t0 = datetime.now(UTC)
    await scene.system.send(
        [
            opened("INC-A", t0 - timedelta(seconds=160), contract="am", severity="P2"),
            opened("INC-B", t0 - timedelta(seconds=400), contract="am", severity="P1"),
            opened("INC-D", t0 - timedelta(seconds=160), contract="am", severity="P3"),
        ]
    )
    published = await scene.alerts.wait_for(lambda v: len(v) >= 4, timeout_s=30)
    by_slot = {(a["incident_id"], a["kind"]): a for a in published}
    firing = {("SlaWarning", i, FR) for i in ("INC-A", "INC-B", "INC-D")}
    firing.add(("SlaBreach", "INC-B", FR))
    await scene.until_active("the firing alerts", firing)
    breach = await check_labels_and_inhibition(scene, by_slot, t0)

    # A `met` resolves its warning.
    await scene.system.send([event("r", "INC-A", "responded", datetime.now(UTC))])
    firing.discard(("SlaWarning", "INC-A", FR))
    await scene.until_active("the met to resolve INC-A's warning", firing)

    # A re-sent alert (as a worker replaying its outbox would) makes no second alert.
    await resend_record(scene.system, by_slot[("INC-B", "breach")])
    await until(
        "the bridge to read the repeat",
        lambda: scene.bridge.metric("sla_notify_alerts_consumed_total", kind="breach") == 2,
        scene.logs,
    )
    again = active(scene.am)  # fails on a second alert for the same clock
    assert set(again) == firing
    same = again[("SlaBreach", "INC-B", FR)]
    assert (same["startsAt"], same["fingerprint"]) == (breach["startsAt"], breach["fingerprint"])

    await outage_loses_nothing(scene)


async def check_labels_and_inhibition(
    scene: Scene, by_slot: dict[tuple[str, str], dict[str, Any]], t0: datetime
) -> dict[str, Any]:
    got = active(scene.am)
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
    assert warning["status"]["state"] == "active"
    # The shipped config's inhibit rule: a breach mutes the warnings of its clock.
    await until(
        "the breach to inhibit its warning",
        lambda: active(scene.am)[("SlaWarning", "INC-B", FR)]["status"]["state"] == "suppressed",
        scene.logs,
    )
    return breach


async def resend_record(system: System, alert: dict[str, Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap)
    await producer.start()
    try:
        key = alert["incident_id"].encode()
        await producer.send_and_wait(system.topic("alerts"), orjson.dumps(alert), key=key)
    finally:
        await producer.stop()


async def outage_loses_nothing(scene: Scene) -> None:
    """Alertmanager stops mid-stream: D is met and C warns and breaches meanwhile."""
    await scene.alerts.wait_for(lambda v: len(v) >= 6, timeout_s=30)  # 4, met, repeat
    await scene.until_all_committed()  # the repeat's offset too: it is committed after it is read
    before = await committed(scene.system, scene.group)
    consumed = scene.bridge.metric("sla_notify_alerts_consumed_total")
    scene.am.stop()
    await scene.system.send(
        [
            event("r", "INC-D", "responded", datetime.now(UTC)),
            opened("INC-C", ago(400), contract="am"),
        ]
    )
    await scene.alerts.wait_for(lambda v: len(v) >= 9, timeout_s=30)  # 4, met, repeat, 3 more
    await until(
        "the bridge to read a record and fail to post it (it reads on once it can post)",
        lambda: (
            scene.bridge.metric("sla_notify_alerts_consumed_total") > consumed
            and scene.bridge.metric("sla_notify_posts_total", result="failed") >= 3  # 3.5 s
        ),
        scene.logs,
    )
    assert await committed(scene.system, scene.group) == before  # not before acceptance

    scene.restart_alertmanager("am")  # same storage; Alertmanager keeps no alerts anyway
    final = {
        ("SlaWarning", "INC-B", FR),  # firing before the restart: re-posted
        ("SlaBreach", "INC-B", FR),
        ("SlaWarning", "INC-C", FR),  # read while Alertmanager was down: delivered now
        ("SlaBreach", "INC-C", FR),
    }
    await scene.until_active("everything after the restart", final)
    await scene.until_all_committed()


@pytest.mark.parametrize("scene", [1.0], indirect=True)
async def test_a_restarted_bridge_rebuilds_what_fires_from_the_topic(scene: Scene) -> None:
    """Killed, it re-reads the topic up to its committed offsets: an Alertmanager that started
    empty meanwhile gets back what still fires, and nothing that was cleared."""
    await scene.system.send(
        [
            opened("INC-E", ago(400), contract="am"),
            opened("INC-F", ago(160), contract="am"),
            event("r", "INC-F", "responded", ago(1)),
        ]
    )
    await scene.alerts.wait_for(lambda v: len(v) >= 4, timeout_s=30)  # E x2, F warning and met
    firing = {("SlaWarning", "INC-E", FR), ("SlaBreach", "INC-E", FR)}
    await scene.until_active("E firing, F resolved", firing)
    await scene.until_all_committed()
    scene.bridge.kill()
    scene.restart_alertmanager("am-fresh")  # empty: only the bridge can bring E back
    await scene.system.send([opened("INC-G", ago(400), "am")])
    await scene.alerts.wait_for(lambda v: len(v) >= 6, timeout_s=30)
    scene.bridge.start().wait_assigned(scene.system.partitions)
    firing |= {("SlaWarning", "INC-G", FR), ("SlaBreach", "INC-G", FR)}
    await scene.until_active("E back and G delivered", firing)
    assert scene.bridge.metric("sla_notify_alerts_consumed_total", mode="replayed") == 4
    first = active(scene.am)
    await asyncio.sleep(2.5)  # two re-post intervals: each re-post updates the same alerts
    later = active(scene.am)  # fails on a second alert for one clock
    assert set(later) == firing
    for key, a in later.items():
        assert (a["fingerprint"], a["startsAt"]) == (
            first[key]["fingerprint"],
            first[key]["startsAt"],
        )
        assert instant(a["endsAt"]) > instant(first[key]["endsAt"])  # re-posted: valid longer


MAX_POLL_S = 5.0


@pytest.mark.parametrize("scene", [(60.0, MAX_POLL_S)], indirect=True)
async def test_the_bridge_stays_in_its_group_while_alertmanager_is_down(scene: Scene) -> None:
    """Down for three max-poll intervals while a post is pending: the bridge keeps polling with
    its partitions paused, so the group never drops it: one assignment, no record read twice
    (so none posted twice), no offset committed before Alertmanager is back, nothing lost."""
    consumed = "sla_notify_alerts_consumed_total"
    await scene.system.send([opened("INC-H", ago(160), contract="am")])
    await scene.alerts.wait_for(lambda v: len(v) >= 1, timeout_s=30)
    await scene.until_active("H's warning", {("SlaWarning", "INC-H", FR)})
    await scene.until_all_committed()
    assert scene.bridge.metric("sla_notify_assignments_total") == 1
    before = await committed(scene.system, scene.group)

    scene.am.stop()
    await scene.system.send([opened("INC-I", ago(400), contract="am")])
    await scene.alerts.wait_for(lambda v: len(v) >= 3, timeout_s=30)  # H warning, I x2
    await until(
        "the bridge to read I's alerts and fail to post them",
        lambda: (
            scene.bridge.metric(consumed, mode="live") == 3
            and scene.bridge.metric("sla_notify_posts_total", result="failed") >= 1
        ),
        scene.logs,
    )
    await asyncio.sleep(3 * MAX_POLL_S)  # without polls the group drops the bridge after one
    assert scene.bridge.metric("sla_notify_posts_total", result="failed") >= 4  # still retrying
    assert scene.bridge.metric("sla_notify_assignments_total") == 1, scene.logs()
    assert await committed(scene.system, scene.group) == before

    scene.restart_alertmanager("am")
    final = {
        ("SlaWarning", "INC-H", FR),
        ("SlaWarning", "INC-I", FR),
        ("SlaBreach", "INC-I", FR),
    }
    await scene.until_active("I's alerts after the restart", final)
    await scene.until_all_committed()
    assert scene.bridge.metric("sla_notify_assignments_total") == 1, scene.logs()
    assert scene.bridge.metric(consumed, mode="live") == 3  # each record read once
    assert scene.bridge.metric(consumed, mode="replayed") == 0
