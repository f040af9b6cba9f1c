"""Scale: 100k and 1M open incidents on one worker; memory, disk, the cost of a tick, restarts.

Opening incidents through Faust's table write path runs at a few hundred to a few thousand a
second here, so 1M that way alone would take the whole benchmark budget. The 100k and the 1M
are written straight into the worker's RocksDB stores instead, with Faust's own RocksDB options,
at the paths and partitions the worker uses, with the exact record bytes the worker writes for
an `opened` event (checked against the engine and the record encoding on a sample). The worker
then starts on that data directory and rebuilds its due index through its normal path. A
smaller population opened through the worker, and the same written directly, show the two
paths agree. Nothing of a population falls due during the measurement; then 1,000 more
incidents are opened through the worker whose first warning falls due at one instant, and
THROUGHPUT more are sent at once to time the worker's events/s beside the same on an empty table.
Last, each directly written level's worker is stopped (SIGTERM: an orderly stop saves its due
index) and started again, to time a restart that loads the saved index instead of reading every
record.

`BENCH_SCALE_OPEN` lists the populations written directly (default `100000,1000000`; for
instance `BENCH_SCALE_OPEN=1000000,10000000 python -m bench scale`).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families

from bench import kit
from sla_stream.core import engine
from sla_stream.core.models import IncidentEvent
from sla_stream.core.terms import ContractRecord, ContractTerms, Target
from sla_stream.stream.checkpoint import mark_clean_stop
from sla_stream.stream.state import IncidentRecord

TITLE = "Scale: open incidents on one worker"
CONTRACT = "bench-scale"
FIRST_RESPONSE_S = 4 * 3600.0  # first warning at half: two hours after opening
DUE_BATCH = 1_000
CROSS_CHECK = 10_000  # opened through the worker, and written directly: the two must agree
IDLE_WINDOW_S = 6.0
PARTITIONS = 4
TEMPLATE = "SCALE-T-0000000"  # same length as every generated id, so bytes swap cleanly
THROUGHPUT = 20_000  # new incidents sent at once to time the worker's events/s
SIZES = tuple(int(n) for n in os.environ.get("BENCH_SCALE_OPEN", "100000,1000000").split(","))


def contract() -> ContractRecord:
    targets = []
    for severity in ("P1", "P2", "P3", "P4"):
        for metric, allowance in (("first_response", FIRST_RESPONSE_S), ("resolution", 3 * 86400)):
            targets.append(
                Target(
                    metric=metric,  # type: ignore[arg-type]
                    severity=severity,  # type: ignore[arg-type]
                    allowance_s=allowance,
                    calendar="24x7",
                    clause_id="1",
                    clause_title="bench",
                )
            )
    terms = ContractTerms(
        contract_id=CONTRACT,
        customer_id="bench",
        tier="bench",
        timezone="UTC",
        calendars={"24x7": {"timezone": "UTC", "hours": "24x7"}},
        targets=tuple(targets),
    )
    return ContractRecord(contract_id=CONTRACT, versions=(terms,))


def incident_id(prefix: str, i: int) -> str:
    return f"SCALE-{prefix}-{i:07d}"


def opened(incident: str, at: datetime) -> IncidentEvent:
    return IncidentEvent(
        event_id=f"{incident}-1",
        incident_id=incident,
        type="opened",
        occurred_at=at,
        contract_id=CONTRACT,
        severity="P2",
        status="new",
    )


def opened_records(prefix: str, n: int, at: datetime) -> list[tuple[bytes, bytes]]:
    event = opened(incident_id(prefix, 0), at)
    return [
        (incident_id(prefix, i).encode(), event.model_copy(update=_ids(prefix, i)).to_json())
        for i in range(n)
    ]


def _ids(prefix: str, i: int) -> dict[str, str]:
    incident = incident_id(prefix, i)
    return {"incident_id": incident, "event_id": f"{incident}-1"}


# -- the fast path: records written straight into the worker's RocksDB stores --------------------


def record_bytes(incident: str, at: datetime, terms: ContractRecord) -> bytes:
    """What the worker stores after applying this incident's `opened` event (empty outbox)."""
    step = engine.apply(None, opened(incident, at), terms)
    return IncidentRecord(step.state, ()).to_bytes()


def populate(data_dir: Path, prefix: str, n: int, at: datetime) -> int:
    """Write `n` opened-incident records into the per-partition stores; return bytes written."""
    from faust.stores.rocksdb import RocksDBOptions
    from rocksdict import WriteBatch

    terms = contract()
    template = record_bytes(TEMPLATE, at, terms)
    for i in range(0, n, max(1, n // 97)):  # the swap must give the engine's own bytes
        incident = incident_id(prefix, i)
        assert len(incident) == len(TEMPLATE)
        expected = record_bytes(incident, at, terms)
        assert template.replace(TEMPLATE.encode(), incident.encode()) == expected, incident
    tables = data_dir / "v1" / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    partitioner = DefaultPartitioner()
    everyone = list(range(PARTITIONS))
    dbs = [RocksDBOptions().open(tables / f"incidents-{p}.db") for p in everyone]
    batches = [WriteBatch(raw_mode=True) for _ in everyone]
    written = 0
    try:
        for i in range(n):
            key = incident_id(prefix, i).encode()
            value = template.replace(TEMPLATE.encode(), key)
            p = partitioner(key, everyone, everyone)  # the producer's partition for this key
            batches[p].put(key, value)
            written += len(value)
            if i % 50_000 == 49_999:  # a written batch is spent: start new ones
                for db, batch in zip(dbs, batches, strict=True):
                    db.write(batch)
                batches = [WriteBatch(raw_mode=True) for _ in everyone]
        for db, batch in zip(dbs, batches, strict=True):
            db.write(batch)
    finally:
        for db in dbs:
            db.close()
    # As an orderly stop leaves it: without this file the worker takes the tables for the
    # leftovers of a crash and deletes them (`stream/checkpoint.py`).
    mark_clean_stop(data_dir)
    return written


# -- measuring one worker ------------------------------------------------------------------------


@dataclass
class Level:
    label: str
    open_incidents: int
    load_s: float  # to get the population in (through the worker, or written directly)
    start_s: float | None  # worker start to its first tick (index rebuilt), for a restart
    rss_mb: float
    disk_mb: float
    idle_tick_ms: float
    idle_ticks: int
    due_ms: float  # tick time spent firing the batch, idle tick time subtracted
    due_ticks: int
    due_last_s: float  # last warning of the batch received, after the instant it fell due
    open_clocks: int
    events_per_s: float  # THROUGHPUT new incidents, sent at once

    def row(self) -> str:
        start = f"{self.start_s:.1f}" if self.start_s is not None else "-"
        return (
            f"| {self.label} | {self.open_incidents:,} | {self.load_s:.0f} | {start} "
            f"| {self.rss_mb:,.0f} | {self.disk_mb:,.0f} | {self.idle_tick_ms:.3f} "
            f"({self.idle_ticks}) | {self.due_ms:.0f} ({self.due_ticks}) | {self.due_last_s:.2f} "
            f"| {self.events_per_s:,.0f} |"
        )


def measure(
    system: kit.System, worker: kit.Worker, label: str, n: int, load_s: float, started: bool
) -> Level:
    """With the worker running and its population in: idle ticks, memory, disk, a due batch."""
    start_s = None
    if not started:
        worker.start()
        first = worker.wait_ticking(900)
        start_s = time.perf_counter() - worker.started_at
        del first
    m = worker.metrics() or {}
    time.sleep(1.0)
    m1 = worker.metrics() or {}
    time.sleep(IDLE_WINDOW_S)
    m2 = worker.metrics() or {}
    idle_ticks = int(m2["sla_tick_seconds_count"] - m1["sla_tick_seconds_count"])
    idle_mean = (m2["sla_tick_seconds_sum"] - m1["sla_tick_seconds_sum"]) / max(1, idle_ticks)
    rss = worker.rss_bytes() / 2**20
    disk = sum(kit.dir_bytes(p) for p in (worker.data_dir / "v1" / "tables").glob("incidents-*"))
    due = asyncio.run(_due_batch(system, worker, label, n))
    events_per_s = throughput(system, worker)
    return Level(
        label,
        n,
        load_s,
        start_s,
        rss,
        disk / 2**20,
        idle_mean * 1e3,
        idle_ticks,
        due[0] - due[1] * idle_mean * 1e3,
        due[1],
        due[2],
        int(m.get("sla_open_clocks", 0)),
        events_per_s,
    )


def throughput(system: kit.System, worker: kit.Worker) -> float:
    """Events/s of the worker taking THROUGHPUT `opened` events of new incidents, all queued."""
    before = kit.processed(worker.metrics() or {})
    records = opened_records("V", THROUGHPUT, datetime.now(UTC))
    asyncio.run(kit.produce(system.bootstrap, system.topic("incident-events"), records))
    began = time.perf_counter()
    worker.wait_processed(before + THROUGHPUT, 900)
    return THROUGHPUT / (time.perf_counter() - began)


async def _due_batch(
    system: kit.System, worker: kit.Worker, label: str, n: int
) -> tuple[float, int, float]:
    """Open DUE_BATCH incidents whose first warning falls due at one instant a few seconds on.

    Returns (tick milliseconds spent from just before that instant until the last warning
    arrived, ticks in that span, how long after the instant the last warning arrived).
    """
    before = kit.processed(await asyncio.to_thread(worker.metrics) or {})
    due_at = datetime.now(UTC) + timedelta(seconds=8)
    opened_at = due_at - timedelta(seconds=FIRST_RESPONSE_S * 0.5)
    tag = "D"
    reader = await kit.Collector(system.bootstrap, system.topic("alerts")).start()
    try:
        await kit.produce(
            system.bootstrap,
            system.topic("incident-events"),
            opened_records(tag, DUE_BATCH, opened_at),
        )
        while kit.processed(await asyncio.to_thread(worker.metrics) or {}) < before + DUE_BATCH:
            if datetime.now(UTC) > due_at:
                raise TimeoutError("the due batch was not taken before it fell due")
            await asyncio.sleep(0.2)
        await asyncio.sleep(max(0.0, due_at.timestamp() - time.time() - 0.3))
        m3 = await asyncio.to_thread(worker.metrics) or {}
        deadline = time.time() + 60
        while sum(1 for _, v in reader.values if v["kind"] == "warning") < DUE_BATCH:
            # Each level has topics of its own: every warning on them is one of this batch.
            if time.time() > deadline:
                raise TimeoutError(f"{label}: {len(reader.values)} warnings of {DUE_BATCH}")
            await asyncio.sleep(0.1)
        last = max(t for t, v in reader.values if v["kind"] == "warning")
        m4 = await asyncio.to_thread(worker.metrics) or {}
    finally:
        await reader.stop()
    spent = (m4["sla_tick_seconds_sum"] - m3["sla_tick_seconds_sum"]) * 1e3
    ticks = int(m4["sla_tick_seconds_count"] - m3["sla_tick_seconds_count"])
    return spent, ticks, last - due_at.timestamp()


def through_worker(system: kit.System, n: int) -> Level:
    system.create_topics()
    system.put_contracts({CONTRACT: contract()})
    worker = system.worker("fed")
    with kit.running(worker):
        worker.start()
        worker.wait_ticking(120)
        records = opened_records("W", n, datetime.now(UTC))
        began = time.perf_counter()
        asyncio.run(kit.produce(system.bootstrap, system.topic("incident-events"), records))
        worker.wait_processed(n, 900)
        load_s = time.perf_counter() - began
        return measure(system, worker, "opened through the worker", n, load_s, True)


@dataclass
class Restart:
    """The same worker stopped (SIGTERM) after its measurements and started again."""

    open_incidents: int
    stop_s: float
    exit_code: int | None
    start_s: float  # to the first tick
    saved: int  # partitions whose due index was loaded from the file the stop saved
    rebuilt: int
    rss_mb: float
    idle_tick_ms: float
    open_clocks: int

    def row(self) -> str:
        return (
            f"| {self.open_incidents:,} | {self.stop_s:.1f} ({self.exit_code}) "
            f"| {self.start_s:.1f} | {self.saved} / {self.rebuilt} | {self.rss_mb:,.0f} "
            f"| {self.idle_tick_ms:.3f} | {self.open_clocks:,} |"
        )


def restart(worker: kit.Worker, n: int) -> Restart:
    began = time.perf_counter()
    worker.stop()
    stop_s = time.perf_counter() - began
    code = worker.proc.returncode if worker.proc is not None else None
    worker.start()
    worker.wait_ticking(900)
    start_s = time.perf_counter() - worker.started_at
    time.sleep(1.0)
    m1 = worker.metrics() or {}
    time.sleep(IDLE_WINDOW_S)
    m2 = worker.metrics() or {}
    ticks = max(1.0, m2["sla_tick_seconds_count"] - m1["sla_tick_seconds_count"])
    idle = (m2["sla_tick_seconds_sum"] - m1["sla_tick_seconds_sum"]) / ticks
    sources = index_sources(worker.get("/metrics").decode())
    return Restart(
        n,
        stop_s,
        code,
        start_s,
        sources.get("saved", 0),
        sources.get("rebuilt", 0),
        worker.rss_bytes() / 2**20,
        idle * 1e3,
        int(m2.get("sla_open_clocks", 0)),
    )


def index_sources(text: str) -> dict[str, int]:
    """`sla_due_index_partitions_total` by its `source` label."""
    out: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "sla_due_index_partitions_total":
                out[sample.labels["source"]] = int(sample.value)
    return out


def direct(system: kit.System, n: int, prefix: str) -> tuple[Level, Restart]:
    system.create_topics()
    system.put_contracts({CONTRACT: contract()})
    worker = system.worker(f"direct-{prefix}{n}")  # its own data directory and group
    began = time.perf_counter()
    populate(worker.data_dir, prefix, n, datetime.now(UTC))
    load_s = time.perf_counter() - began
    with kit.running(worker):
        level = measure(system, worker, "written to RocksDB, worker started", n, load_s, False)
        return level, restart(worker, n)


def read_costs(n: int = 50_000) -> tuple[float, float, int]:
    """Microseconds to read one stored record for the due-index rebuild: (the full decode into
    engine state, the rebuild's four-field read), and the record's size in bytes."""
    from sla_stream.stream.state import IncidentRecord, RecordSummary

    template = record_bytes(TEMPLATE, datetime.now(UTC), contract())
    raws = [template.replace(TEMPLATE.encode(), incident_id("R", i).encode()) for i in range(n)]
    started = time.perf_counter()
    for raw in raws:
        IncidentRecord.from_bytes(raw)
    full = time.perf_counter() - started
    started = time.perf_counter()
    for raw in raws:
        RecordSummary.of(raw)
    fast = time.perf_counter() - started
    return full / n * 1e6, fast / n * 1e6, len(template)


def run() -> str:
    load = kit.LoadNote()
    costs = read_costs()
    with kit.scratch("scale") as root, kit.broker() as b:
        # Each level has topics of its own (a prefix each): its worker reads no other's ticks.
        fed = through_worker(kit.System(b.bootstrap, root, "fed."), CROSS_CHECK)
        directs = [
            direct(kit.System(b.bootstrap, root, "e."), 0, "E"),
            direct(kit.System(b.bootstrap, root, "a."), CROSS_CHECK, "A"),
            *(direct(kit.System(b.bootstrap, root, f"n{n}."), n, "N") for n in SIZES),
        ]
    levels = [fed, *(level for level, _ in directs)]
    return report(load, levels, costs, [r for _, r in directs])


def report(
    load: kit.LoadNote,
    levels: list[Level],
    costs: tuple[float, float, int],
    restarts: list[Restart],
) -> str:
    full_us, fast_us, size = costs
    rows = [
        "| population | open incidents | load s | start → first tick s | RSS MB | RocksDB MB "
        "| idle tick ms (ticks) | 1k due: tick ms (ticks) | last warning after due s "
        "| events/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(level.row() for level in levels),
    ]
    clocks = ", ".join(f"{lv.open_clocks:,}" for lv in levels)
    return (
        "\n".join(rows)
        + "\n\n"
        + f"Each open incident has two running clocks (first response P2, 4 h; resolution, "
        "3 days) on a 24x7 contract; nothing of the population falls due during the "
        f"measurement. The worker's `sla_open_clocks` read {clocks}: it saw every incident. "
        f"Idle tick = mean `sla_tick_seconds` over {IDLE_WINDOW_S:.0f} s with nothing due "
        "(each tick covers one partition; 4 partitions, one tick each every interval). 1k due "
        f"= {DUE_BATCH:,} incidents opened through the worker whose first warning falls due at "
        "one instant: the tick time spent from just before it until all their warnings were "
        "received, minus the idle cost of the other ticks in that span. RSS is the worker "
        "process's resident memory after the idle window; RocksDB MB the incidents table's "
        f"files on disk. Each record is {size:,} B of JSON ({size * 1e6 / 2**20:,.0f} MB per "
        "million); records the worker writes sit in RocksDB's write-ahead log until its 64 MB "
        "memtable is flushed, while the records written directly are flushed into compressed "
        "table files when the store is closed, hence the smaller figure for the same population. "
        "Start → first tick is the worker's start on the data directory: recovery, "
        "assignment and the due index. The records were written straight into RocksDB, so no "
        "orderly stop saved a due index for them: this first start reads every record, as a "
        "start after a SIGKILL, into a wiped data directory or after a rebalance still does. "
        f"Events/s = {THROUGHPUT:,} `opened` events of new incidents sent at once, divided by "
        "the time the worker took to process them, on each level's worker after its other "
        "measurements (the empty table beside the populated ones).\n\n"
        + restart_report(restarts)
        + "What changed: the rebuild used to decode every record into the engine's state twice "
        "(once for the due index, once for the open-clocks gauge). It reads the few "
        "fields it needs with one `orjson.loads` per record, in one pass "
        "(`stream/state.py` `RecordSummary`, checked against the full decode in "
        f"`tests/unit/test_state_summary.py`). Measured here on {size:,}-byte records: "
        f"full decode {full_us:.1f} µs per record (the rebuild paid it twice), fast read "
        f"{fast_us:.1f} µs, so about {2 * full_us / fast_us:.0f}x less per record. Since, "
        "`RecordSummary` is a NamedTuple (its frozen-dataclass `__init__` cost a third of the "
        "read) and the rebuild reads each partition's RocksDB as stored (no Faust codec call "
        "per key and value). The due and expiry indexes hold their entries in sorted numpy "
        "arrays (instants, and ids of one width: about 8 + id-length bytes an entry, where "
        "(instant, id) tuples in a heap took about 150 MB per million), built with one sort, "
        "saved and loaded as they are; entries added since sit in a small heap beside "
        "(`stream/due_index.py`).\n\n" + load.line() + "\n"
    )


def restart_report(restarts: list[Restart]) -> str:
    rows = [
        "| open incidents written | stop s (exit code) | start → first tick s "
        "| partitions loaded / rebuilt | RSS MB | idle tick ms | open clocks |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *(r.row() for r in restarts),
    ]
    return (
        "**Restart after an orderly stop.** Each level's worker, after the measurements above, "
        "stopped by SIGTERM and started again on its data directory:\n\n" + "\n".join(rows) + "\n\n"
        "An orderly stop saves each partition's due index, expiry index, parked incidents, "
        "open-clock counts and the records holding outbox entries a restart may re-send "
        "(`stream/index_snapshot.py`), stamped with the changelog offset its RocksDB store had "
        "applied; the next start loads a partition's file when the store still stands at that "
        "offset (or only this start's end marker came after it), and rebuilds the partition "
        "otherwise. Stop s includes writing the files; open clocks after the restart include "
        f"the {DUE_BATCH:,} due-batch and {THROUGHPUT:,} throughput incidents opened before "
        "the stop.\n\n"
    )
