"""The worker's data directory against brokers that do not know it, and the embedded broker
reached through `SLA_BROKER`.

A second and a third `make run` start the worker on the same data directory against a fresh
embedded broker: the worker rebuilds its tables instead of resuming the last run's clocks, so
the screen shows the new feed's incidents only, even where the feed reuses incident and event
ids. A worker pointed at `sla-stream broker` through `SLA_BROKER` recognises the embedded broker
and restarts after a SIGKILL (Faust's recovery check would stop it with ConsistencyError).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from sla_stream.broker import EmbeddedBroker, _accepts, free_port
from tests.integration.harness import System, TopicReader
from tests.integration.test_worker import fast_contract, opened

REBUILD_NOTE = "rebuilding the local tables"


def fr_breaches(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        a["incident_id"]: a
        for a in alerts
        if a["kind"] == "breach" and a["metric"] == "first_response"
    }


async def one_run(root: Path, run: int) -> tuple[list[dict[str, Any]], datetime, str]:
    """What `make run` does, shortened: a fresh broker, contracts, the worker on the data
    directory in `root`, a feed; returns the alerts seen, the feed's start and the worker log."""
    with EmbeddedBroker() as broker:
        system = System(broker.bootstrap, root, prefix="sla.", partitions=2)
        await system.create_topics()
        await system.put_contracts([fast_contract(fr_s=3, res_s=30)])
        worker = system.worker("w1")  # the same data directory every run
        worker.log_path = root / f"run{run}.log"
        worker.start()
        alerts = await TopicReader(broker.bootstrap, system.topic("alerts")).start()
        try:
            worker.wait_ready()
            t0 = datetime.now(UTC)
            # INC-1 with the same event ids every run, as the demo's feed once had them.
            await system.send([opened("INC-1", t0), opened(f"RUN{run}-X", t0)])
            await alerts.wait_for(lambda v: {"INC-1", f"RUN{run}-X"} <= set(fr_breaches(v)))
            time.sleep(1.0)  # anything else the worker had to say
            return alerts.values, t0, worker.log_path.read_text(errors="replace")
        finally:
            await alerts.stop()
            worker.stop()


async def test_second_and_third_runs_on_the_same_data_dir_show_only_their_incidents(
    tmp_path: Path,
) -> None:
    for run in (1, 2, 3):
        alerts, t0, log = await one_run(tmp_path, run)
        assert {a["incident_id"] for a in alerts} == {"INC-1", f"RUN{run}-X"}, alerts
        breach = fr_breaches(alerts)["INC-1"]  # from this run's opening, not a resumed clock
        assert datetime.fromisoformat(breach["emitted_at"]) == t0 + timedelta(seconds=3)
        assert (REBUILD_NOTE in log) == (run > 1), log
        if run > 1:
            assert "(the embedded broker keeps nothing across restarts)" in log


def broker_command(port: int, log: Path) -> subprocess.Popen[bytes]:
    """`sla-stream broker`, as a user starts it for workers to share."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sla_stream.cli", "broker", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while not _accepts("127.0.0.1", port):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return proc


async def burst(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    """Send without waiting per record, so records travel in multi-record batches."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        for e in events:
            await producer.send(topic, orjson.dumps(e), key=e["incident_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_a_worker_on_sla_stream_broker_restarts_after_sigkill(tmp_path: Path) -> None:
    port = free_port()
    broker = broker_command(port, tmp_path / "broker.log")
    system = System(f"127.0.0.1:{port}", tmp_path, partitions=2)
    alerts: TopicReader | None = None
    try:
        await system.create_topics()
        await system.put_contracts([fast_contract(fr_s=2, res_s=600)])
        alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
        for attempt in range(2):  # the second start follows a SIGKILL
            worker = system.worker("w1")
            del worker.env["SLA_RECOVERY_CONSISTENCY_CHECK"]  # as a user runs it: unset
            worker.start().wait_ready()
            assert "is the embedded broker" in worker.log_path.read_text(errors="replace")
            t0 = datetime.now(UTC)
            names = [f"K{attempt}-{n}" for n in range(60)]
            await burst(
                system.bootstrap, system.topic("incident-events"), [opened(n, t0) for n in names]
            )
            await alerts.wait_for(lambda v, names=names: set(names) <= set(fr_breaches(v)))
            worker.kill()  # SIGKILL: the next start must recover the data directory
        assert "ConsistencyError" not in "".join(w.log_path.read_text() for w in system.workers)
    finally:
        if alerts is not None:
            await alerts.stop()
        system.stop_all()
        broker.terminate()
        broker.wait(10)
