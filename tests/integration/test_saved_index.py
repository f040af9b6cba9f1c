"""The due index an orderly stop saves (`stream/index_snapshot.py`), on the real broker: a start
loads it only when the table is still the one it was saved from, and no due alert is lost either
way."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import System, TopicReader, WorkerProcess
from tests.integration.test_worker import event, fast_contract, opened


def metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    """A sample of the worker's /metrics summed over the labels not given."""
    total = 0.0
    for family in text_string_to_metric_families(worker.get("/metrics").decode()):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def index_files(worker: WorkerProcess) -> list[Path]:
    return sorted((worker.data_dir / "v1" / "tables" / "due-index").glob("*.npz"))


def breaches(values: list[dict[str, Any]], metric_name: str = "first_response") -> set[str]:
    return {
        a["incident_id"] for a in values if a["kind"] == "breach" and a["metric"] == metric_name
    }


async def wait_open_clocks(worker: WorkerProcess, expected: float, timeout_s: float = 30) -> None:
    """Until the worker's `sla_open_clocks` is `expected` (its web server may not be up yet)."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            seen = metric(worker, "sla_open_clocks")
            if seen == expected:
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"open clocks {seen}, expected {expected}\n{worker.output()}")


async def test_a_clean_restart_loads_the_saved_index_and_a_stale_file_is_ignored(
    system: System,
) -> None:
    """Three runs of one worker: the second loads what the first saved (and takes events sent
    while it was down); the third finds the second's file replaced by the first's, which the
    table has moved past, so it rebuilds. Every first-response breach fires, at its instant."""
    await system.create_topics()
    await system.put_contracts([fast_contract(fr_s=30, res_s=600)])
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    w = system.worker("w1").start()
    w.wait_ready(partitions=system.partitions)
    try:
        t0 = datetime.now(UTC)
        first = [f"INC-A{i:02d}" for i in range(24)]
        await system.send([opened(i, t0) for i in first])
        await wait_open_clocks(w, 2 * len(first))
        w.stop()
        assert w.proc is not None and w.proc.returncode == 0, w.output()
        files = index_files(w)
        assert len(files) == system.partitions, w.output()
        kept = w.data_dir.parent / "first-stop"
        kept.mkdir()
        for f in files:
            shutil.copy(f, kept / f.name)

        # While the worker is down: new incidents, and a response that stops one clock.
        while_down = [f"INC-B{i:02d}" for i in range(8)]
        await system.send([opened(i, t0) for i in while_down])
        await system.send([event("r", first[0], "responded", t0 + timedelta(seconds=1))])
        w.start()
        w.wait_ready(partitions=system.partitions)
        await wait_open_clocks(w, 2 * (len(first) + len(while_down)) - 1)
        assert metric(w, "sla_due_index_partitions_total", source="saved") == system.partitions
        assert metric(w, "sla_due_index_partitions_total", source="rebuilt") == 0
        assert index_files(w) == []  # a start uses the files once

        # Due after the third start: only a rebuilt index knows them.
        later, t1 = [f"INC-C{i:02d}" for i in range(8)], datetime.now(UTC)
        await system.send([opened(i, t1) for i in later])
        await wait_open_clocks(w, 2 * (len(first) + len(while_down) + len(later)) - 1)
        w.stop()
        assert w.proc is not None and w.proc.returncode == 0, w.output()
        for f in index_files(w):  # the second stop's files, replaced by the first stop's
            shutil.copy(kept / f.name, f)

        w.start()
        w.wait_ready(partitions=system.partitions)
        assert metric(w, "sla_due_index_partitions_total", source="saved") == 0, w.output()
        assert metric(w, "sla_due_index_partitions_total", source="rebuilt") == system.partitions
        assert "saved due index of partition" in w.output()
        await wait_open_clocks(w, 2 * (len(first) + len(while_down) + len(later)) - 1)
        expected = set(first[1:] + while_down + later)
        got = await alerts.wait_for(lambda v: expected <= breaches(v), timeout_s=60)
        assert first[0] not in breaches(got)  # it responded in time: met, no breach
        for a in got:
            if a["kind"] == "breach" and a["metric"] == "first_response":
                opened_at = t1 if a["incident_id"] in later else t0
                assert datetime.fromisoformat(a["emitted_at"]) == opened_at + timedelta(seconds=30)
    finally:
        await alerts.stop()


async def test_a_partition_another_worker_served_meanwhile_is_rebuilt(system: System) -> None:
    """The first worker stops cleanly (its index saved); a second one takes every partition and
    opens incidents, without a tick (so it fires nothing), and stops; the first restarts, its
    stores take the second's records from the changelog, so its saved index no longer matches:
    it rebuilds, and the incidents it never saw breach, at their instant."""
    await system.create_topics()
    await system.put_contracts([fast_contract(fr_s=8, res_s=600)])
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    w1 = system.worker("w1").start()
    w1.wait_ready(partitions=system.partitions)
    try:
        first = [f"INC-P{i:02d}" for i in range(16)]
        await system.send([opened(i, datetime.now(UTC) + timedelta(hours=1)) for i in first])
        await wait_open_clocks(w1, 2 * len(first))
        w1.stop()
        assert len(index_files(w1)) == system.partitions, w1.output()

        w2 = system.worker("w2")
        w2.env["SLA_TICK_INTERVAL"] = "3600"  # no tick during the test: no alert from w2
        w2.start()
        t1 = datetime.now(UTC)
        unseen = [f"INC-Q{i:02d}" for i in range(16)]
        await system.send([opened(i, t1) for i in unseen])
        await wait_open_clocks(w2, 2 * len(unseen), timeout_s=60)
        w2.stop()
        assert w2.proc is not None and w2.proc.returncode == 0, w2.output()
        assert breaches(alerts.values) == set()

        w1.start()
        w1.wait_ready(partitions=system.partitions)
        await wait_open_clocks(w1, 2 * (len(first) + len(unseen)))
        assert metric(w1, "sla_due_index_partitions_total", source="rebuilt") >= 1
        got = await alerts.wait_for(lambda v: set(unseen) <= breaches(v), timeout_s=60)
        for a in got:
            if a["kind"] == "breach":
                assert a["incident_id"] in unseen
                assert datetime.fromisoformat(a["emitted_at"]) == t1 + timedelta(seconds=8)
    finally:
        await alerts.stop()
