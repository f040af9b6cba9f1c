"""Recovery: restart to first processed event at 100k open incidents, data intact and wiped.

The 100k incidents are opened through the worker itself, so its changelog holds what a real
worker wrote. Each restart finds a few new events waiting on the topic; the time runs from
starting the process to the first of them being processed (metrics polled every 50 ms).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bench import kit
from bench.scale import CONTRACT, contract, opened_records

TITLE = "Recovery: restart at 100k open incidents"
OPEN = 100_000
PROBE = 20  # new events waiting for the restarted worker


# Milestones in the worker's log (INFO), in the order they happen on a restart.
PHASES = {
    "started": "[^SlaWorker]: Starting",  # imports and the checks before Faust are done
    "joining": "(Re-)joining group",
    "joined": "Setting newly assigned partitions",
    "restored": "Recovery complete",
    "indexed": "due index ready",
}
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


@dataclass
class Restart:
    label: str
    first_event_s: float
    first_tick_s: float
    open_clocks: int
    phases: dict[str, float]  # seconds from the start of the process to each milestone


def milestones(worker: kit.Worker) -> dict[str, float]:
    """Seconds from spawning the worker to the first log line of each phase."""
    found: dict[str, float] = {}
    for line in worker.log_lines():
        m = STAMP.match(line)
        if m is None:
            continue
        for name, text in PHASES.items():
            if name not in found and text in line:
                at = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time
                found[name] = at - worker.started_wall
    return found


def restart(system: kit.System, worker: kit.Worker, label: str, tag: str) -> Restart:
    probe = opened_records(tag, PROBE, datetime.now(UTC))
    asyncio.run(kit.produce(system.bootstrap, system.topic("incident-events"), probe))
    worker.start()

    def first_event() -> float | None:
        m = worker.metrics()
        return time.perf_counter() if m and kit.processed(m) > 0 else None

    first = kit.wait_for(first_event, 600, f"{label}: first event", 0.05) - worker.started_at
    worker.wait_ticking(600)
    ticked = time.perf_counter() - worker.started_at
    done = worker.wait_processed(PROBE, 120)
    return Restart(label, first, ticked, int(done.get("sla_open_clocks", 0)), milestones(worker))


def run() -> str:
    load = kit.LoadNote()
    with kit.scratch("recovery") as root, kit.broker() as b:
        system = kit.System(b.bootstrap, root, "rec.")
        system.create_topics()
        system.put_contracts({CONTRACT: contract()})
        worker = system.worker("rec", SLA_LOG_LEVEL="info")  # its log dates each phase
        with kit.running(worker):
            worker.start()
            worker.wait_ticking(120)
            began = time.perf_counter()
            records = opened_records("R", OPEN, datetime.now(UTC))
            asyncio.run(kit.produce(b.bootstrap, system.topic("incident-events"), records))
            worker.wait_processed(OPEN, 900)
            load_s = time.perf_counter() - began
            worker.stop()
            disk = kit.dir_bytes(worker.data_dir) / 2**20
            intact = restart(system, worker, "local RocksDB intact", "P")
            worker.stop()
            shutil.rmtree(worker.data_dir)
            worker.data_dir.mkdir()
            wiped = restart(system, worker, "data directory wiped (restored from changelog)", "Q")
    return report(load, load_s, disk, [intact, wiped])


def report(load: kit.LoadNote, load_s: float, disk_mb: float, runs: list[Restart]) -> str:
    rows = [
        "| restart | to first processed event s | Faust started s | group join asked s "
        "| group joined s | table recovered s | due index ready s | open clocks after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        at = [f"{r.phases[k]:.1f}" if k in r.phases else "-" for k in PHASES]
        rows.append(f"| {r.label} | {r.first_event_s:.1f} | {' | '.join(at)} | {r.open_clocks:,} |")
    expected = 2 * (OPEN + PROBE)
    return (
        f"{OPEN:,} incidents opened through one worker ({load_s:.0f} s; data directory "
        f"{disk_mb:,.0f} MB), then the worker stopped (SIGTERM) and started again, first on its "
        f"intact data directory, then on an emptied one. {PROBE} new incidents wait on the "
        "topic before each start. Times run from starting the process: joining the consumer "
        "group (assignment), recovering the tables (reading the changelog from the offsets "
        "persisted in RocksDB, or from the start when the directory was emptied), then, on the "
        "first tick, the due index: loaded as the orderly stop saved it when the table is intact, "
        "rebuilt from the table otherwise (milestones from the worker's log).\n\n"
        + "\n".join(rows)
        + f"\n\nEach incident has two open clocks: {expected:,} expected after the first "
        f"restart and {expected + 2 * PROBE:,} after the second; fewer means the restore "
        "from the changelog missed records (the embedded broker's end offsets are wrong after "
        "multi-record batches, see DESIGN.md; the worker appends a one-record marker to "
        "each changelog partition at start and on quiet ticks, so the reported end is the true "
        "end). The phases: the process imports and checks the broker and its data directory "
        "before Faust starts; Faust asks to join the group at once (its table manager's 1 s "
        "pause is skipped); the embedded broker holds every join for half the session timeout "
        "(`SLA_SESSION_TIMEOUT`, 6 s), and a worker stopped by SIGTERM leaves the group, so "
        "no one waits for the old member's session to expire (aiokafka left only above "
        "generation 0, and this broker starts at 0: the first restart of a group used to wait "
        "about 13 s more); then the RocksDB stores open and Faust reads the changelog from the "
        "persisted offsets; the first tick loads the saved due index, or, into the emptied "
        "directory, rebuilds it by reading every record once. The restore from the changelog "
        "is Faust reading every record of the incidents table back into RocksDB; the saved "
        "index and the rebuild are described under Scale.\n\n" + load.line() + "\n"
    )
