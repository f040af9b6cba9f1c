"""Streaming ceilings, one broker, one run: bare aiokafka, a bare Faust table agent, the worker.

All three read the same pre-loaded topic (200k generated events, 4 partitions), each with its
own consumer group, and count until they have processed every event (never up to the end
offset, which the embedded broker reports wrong). Rates run from the first processed event to
the last. `python -m bench.streaming bare-agent CONFIG` is the bare Faust agent's process.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import kit
from bench.profile import Profiler
from sla_stream.broker import free_port
from sla_stream.core.contracts import load_contracts
from sla_stream.generate import DEFAULT_CONTRACTS, iter_events
from sla_stream.settings import Settings
from sla_stream.stream.admin import TopicSpec

TITLE = "Streaming: the worker against its ceilings"
EVENTS = 200_000  # on the topic; the bare aiokafka consumer takes them all
# The Faust consumers time the first TIMED events (the worker takes minutes per 100k here, and
# the whole benchmark has a 20-minute budget); the topic holds more, so none runs dry.
TIMED = 25_000
PROFILED = 10_000
# The four settings the worker tunes; "defaults" leaves them to Faust.
TUNED_KEYS = ("producer_linger", "stream_buffer_maxsize", "broker_commit_every")
TUNED_KEYS += ("broker_commit_interval",)


WHY = (
    "Why the worker stays far below (b), and what was done. Its own step (decode, engine, "
    "record (de)serialisation, and the synchronous part of its table write and sends) is "
    "{step:.0%} of the samples and the rollup step {rollup:.0%}; the rest is Faust, aiokafka "
    "and asyncio carrying its messages: (b) consumes one message and produces one changelog "
    "record per event, while the worker also publishes alerts and outcomes, consumes every "
    "outcome again in its rollup agent, writes a second table there, and its records are "
    "larger (the incident's events and ledger, and the outbox of recent effects). Making the "
    "step free would not reach (b); fewer messages per event would. Done: the rollup agent "
    "takes outcomes in batches and writes each hour bucket once per batch; the incident agent "
    "can take events in batches (each incident written once per batch, a batch's effects sent "
    "together: the batched row above), opt-in until the two-worker tests pass with it every "
    "time; the last 4,096 written records are kept decoded, so an event for a recent incident "
    "skips `IncidentRecord.from_bytes`; Faust's terminal spinner is off in `sla-stream worker` "
    "(it set the root logger to DEBUG); the due index is loaded as saved after an orderly stop "
    "(see Scale). Each is measured before and after in its commit message. Left: the rollup "
    "inside the incident step (no outcome consumed again), which is a design change."
)


@dataclass
class Rate:
    label: str
    events: int
    seconds: float
    cpu_seconds: float | None = None  # the consumer process's CPU time over the same span
    note: str = ""

    @property
    def per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        return 1e6 * (self.cpu_seconds or 0.0) / self.events if self.events else 0.0

    def row(self, ceiling: float | None = None) -> str:
        busy = f"{self.cpu_seconds / self.seconds:.0%}" if self.cpu_seconds else "-"
        ratio = f"{self.per_s / ceiling:.2f}" if ceiling else ""
        return (
            f"| {self.label} | {self.events:,} | {self.seconds:.1f} | {self.per_s:,.0f} "
            f"| {busy} | {self.cpu_us:,.0f} | {ratio} |"
        )


def faust_defaults() -> dict[str, Any]:
    import faust

    conf = faust.App("defaults-probe", env={}).conf
    return {k: getattr(conf, k) for k in TUNED_KEYS}


def events(count: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of a realistic generated stream whose instants all lie in the future.

    A day ahead of the wall clock, so the worker's ticks find nothing due: the three consumers
    then do the same per-event work and nothing else.
    """
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    contracts = load_contracts(DEFAULT_CONTRACTS)
    stream = iter_events(count // 3, 1, start, None, contracts)
    return [(e.incident_id.encode(), e.to_json()) for e in itertools.islice(stream, count)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- (a) a bare aiokafka consumer ----------------------------------------------------------------


async def bare_consumer(bootstrap: str, topic: str, out: str, count: int) -> Rate:
    """Parse every event; produce one message per ten (a stand-in for effects)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="bench-bare-aiokafka",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    n, first, last, cpu0 = 0, 0.0, 0.0, 0.0
    try:
        deadline = time.monotonic() + 120
        while n < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for messages in batch.values():
                for m in messages:
                    data = orjson.loads(m.value)
                    n += 1
                    if n == 1:
                        first, cpu0 = time.perf_counter(), time.process_time()
                    if n % 10 == 0:
                        await producer.send(out, orjson.dumps(data["event_id"]), key=m.key)
            last = time.perf_counter()
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    if n < count:
        raise TimeoutError(f"bare consumer processed {n} of {count}")
    return Rate("(a) bare aiokafka consumer", n - 1, last - first, time.process_time() - cpu0)


# -- (b) a bare Faust agent, one table get and set per event ------------------------------------


def bare_agent_main(config_path: str) -> None:
    """The bare agent's process: Faust with the worker's own settings, one table get+set."""
    import faust

    from sla_stream.stream.worker import prompt_fetches
    from sla_stream.worker_app import faust_settings

    prompt_fetches()  # the worker's consumer settings, as `run_worker` sets them
    cfg = json.loads(Path(config_path).read_text())
    settings = Settings(**cfg["settings"])
    conf = faust_settings(settings, cfg["bootstrap"])
    if not cfg["tuned"]:
        for key in TUNED_KEYS:
            del conf[key]
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = faust.App(settings.app_id, **conf)
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    topic = app.topic(cfg["topic"], partitions=settings.partitions, **raw)
    # Declared exactly as the worker declares its incidents table.
    table = app.Table("bare", partitions=settings.partitions, key_type=bytes, value_type=bytes)
    count, seen = cfg["count"], {"n": 0, "first": 0.0, "cpu": 0.0}

    @app.agent(topic, name="bare")
    async def bare(stream: Any) -> None:
        async for event in stream.events():
            key = event.message.key
            table.get(key)
            table[key] = event.value
            seen["n"] += 1
            if seen["n"] == 1:
                seen["first"], seen["cpu"] = time.perf_counter(), time.process_time()
            elif seen["n"] == count:
                took = time.perf_counter() - seen["first"]
                cpu = time.process_time() - seen["cpu"]
                Path(cfg["result"]).write_text(json.dumps({"seconds": took, "cpu": cpu}))

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.spinner = None  # as `sla-stream worker` runs it (see sla_stream/stream/worker.py)
    worker.execute_from_commandline()


def bare_agent(system: kit.System, app_id: str, tuned: bool, count: int) -> Rate:
    result = system.root / f"{app_id}.result.json"
    config = system.root / f"{app_id}.json"
    settings = {
        "broker": system.bootstrap,
        "app_id": app_id,
        "topic_prefix": system.prefix,
        "partitions": system.partitions,
        "data_dir": str(system.root / app_id),
        "web_port": free_port(),
        "recovery_consistency_check": False,
        "log_level": "warning",
    }
    config.write_text(
        json.dumps(
            {
                "settings": settings,
                "bootstrap": system.bootstrap,
                "tuned": tuned,
                "topic": system.topic("incident-events"),
                "count": count,
                "result": str(result),
            }
        )
    )
    log = (system.root / f"{app_id}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.streaming", "bare-agent", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    log.close()
    worker = kit.Worker({}, system.root / app_id, 0, system.root / f"{app_id}.log", proc=proc)
    with kit.running(worker):

        def finished() -> dict[str, float] | None:
            worker.check()
            return json.loads(result.read_text()) if result.exists() else None

        got = kit.wait_for(finished, 600, f"bare Faust agent at {count} events", 0.2)
    label = f"(b) bare Faust agent, table get+set, {'tuned' if tuned else 'Faust defaults'}"
    return Rate(label, count - 1, got["seconds"], got["cpu"])


# -- (c) the worker ------------------------------------------------------------------------------


def warm_up(bootstrap: str, workers: dict[str, kit.Worker], contracts: int) -> None:
    """Run the workers once (together) before the events exist, until each one's contracts
    table holds every contract.

    Restarted later over the pre-loaded topic, each then knows every contract from its first
    event, as a long-running worker does (otherwise the first events race the contracts agent
    and their incidents are parked until the next tick).
    """
    with kit.running(*workers.values()):
        for worker in workers.values():
            worker.start()
        for app_id, worker in workers.items():
            worker.wait_ticking(120)
            asyncio.run(
                kit.read_until(
                    bootstrap,
                    f"{app_id}-contracts-changelog",
                    lambda got: len(got) >= contracts,
                    60,
                )
            )


def measure_worker(worker: kit.Worker, label: str, count: int) -> tuple[Rate, dict[str, float]]:
    """Restart a warmed worker; time from its first processed event to its `count`-th."""
    with kit.running(worker):
        worker.start()
        assert worker.proc is not None

        def started() -> tuple[float, int, float] | None:
            m = worker.metrics()
            n = kit.processed(m) if m else 0
            return (time.perf_counter(), n, cpu_seconds(worker.proc.pid)) if n else None

        t0, n0, cpu0 = kit.wait_for(started, 120, f"{label}: first event", 0.05)
        end = worker.wait_processed(count, 900)
        t1, cpu1 = time.perf_counter(), cpu_seconds(worker.proc.pid)
    return Rate(label, kit.processed(end) - n0, t1 - t0, cpu1 - cpu0), end


def profile_worker(worker: kit.Worker, count: int, profiler: Profiler) -> None:
    """Restart the worker once more and sample it while it takes the next `count` events.

    A run of its own: the sampler takes CPU on this 2-core machine, so the timed runs go
    unsampled.
    """
    with kit.running(worker):
        worker.start()
        assert worker.proc is not None
        kit.wait_for(lambda: kit.processed(worker.metrics() or {}), 120, "profiled: first", 0.05)
        profiler.attach(worker.proc.pid)
        worker.wait_processed(count, 600)
        profiler.stop()


def run() -> str:
    load = kit.LoadNote()
    defaults = faust_defaults()
    default_env = {
        "SLA_PRODUCER_LINGER_S": str(defaults["producer_linger"]),
        "SLA_STREAM_BUFFER_MAXSIZE": str(defaults["stream_buffer_maxsize"]),
        "SLA_COMMIT_EVERY": str(defaults["broker_commit_every"]),
        "SLA_COMMIT_INTERVAL_S": str(defaults["broker_commit_interval"]),
    }
    contracts = load_contracts(DEFAULT_CONTRACTS)
    with kit.scratch("streaming") as root, kit.broker() as b:
        # (a) and (b) share one topic. Each worker gets topics of its own holding the same
        # records: workers with one prefix share the alerts and outcomes topics, and each
        # one's rollup agent would count the others' outcomes too.
        shared = kit.System(b.bootstrap, root, "bench.")
        out = shared.topic("bench-out")
        shared.create_topics([TopicSpec(out, shared.partitions)])
        systems = {"worker-tuned": kit.System(b.bootstrap, root, "wt.")}
        systems["worker-defaults"] = kit.System(b.bootstrap, root, "wd.")
        systems["worker-batched"] = kit.System(b.bootstrap, root, "wb.")
        workers = {}
        for app_id, system in systems.items():
            system.create_topics()
            system.put_contracts(contracts)
            env = {"worker-defaults": default_env, "worker-batched": BATCHED_ENV}.get(app_id, {})
            workers[app_id] = system.worker(app_id, **env)
        warm_up(b.bootstrap, workers, len(contracts))

        generated = time.perf_counter()
        records = events(EVENTS)
        generated = time.perf_counter() - generated
        produced = time.perf_counter()
        for system in (shared, *systems.values()):
            asyncio.run(kit.produce(b.bootstrap, system.topic("incident-events"), records))
        produced = (time.perf_counter() - produced) / (1 + len(systems))
        incidents = len({k for k, _ in records})
        mean_bytes = sum(len(v) for _, v in records) / len(records)
        del records

        a = asyncio.run(bare_consumer(b.bootstrap, shared.topic("incident-events"), out, EVENTS))
        # Each worker runs right after its bare agent, and the tuned bare agent runs again at
        # the end: the spread between its two runs is the noise of this machine and broker.
        tuned_w, default_w = workers["worker-tuned"], workers["worker-defaults"]
        b_tuned = bare_agent(shared, "bare-tuned", True, TIMED)
        c_tuned, m_tuned = measure_worker(tuned_w, "(c) sla-stream worker, tuned", TIMED)
        b_default = bare_agent(shared, "bare-defaults", False, TIMED)
        c_default, _ = measure_worker(default_w, "(c) sla-stream worker, Faust defaults", TIMED)
        c_batched, _ = measure_worker(
            workers["worker-batched"], "(c) sla-stream worker, tuned, in batches (opt-in)", TIMED
        )
        b_again = bare_agent(shared, "bare-tuned-again", True, TIMED)
        b_again.label = "(b) bare Faust agent, table get+set, tuned, run again last"
        profile = ""
        if c_tuned.per_s < 0.8 * b_tuned.per_s:
            profiler = Profiler(root / "worker.pyspy")
            profile_worker(tuned_w, PROFILED, profiler)
            profile = profiler.summary(
                f"the tuned worker (c), restarted after its timed run, over its next "
                f"{PROFILED:,} events of the same topic"
            )
            profile += "\n\n" + WHY.format(
                step=profiler.share("on_event", "stream/incidents.py"),
                rollup=profiler.share("on_outcomes", "stream/rollups.py"),
            )
    return report(
        load,
        defaults,
        (a, b_tuned, c_tuned, b_default, c_default, c_batched, b_again),
        m_tuned,
        profile,
        (incidents, mean_bytes, generated, produced),
    )


# The opt-in batches measured beside the default: larger batches cost less per event, and
# Faust holds the stream while a batch is handled, so the fill window sets the batch size.
BATCHED_ENV = {"SLA_EVENT_BATCH": "1000", "SLA_EVENT_BATCH_WITHIN_S": "0.1"}


def batching(settings: Settings) -> str:
    if settings.event_batch == 1:
        return "the incident agent takes one event at a time"
    return (
        f"the incident agent takes at most {settings.event_batch} events at once, filling a "
        f"batch for up to {settings.event_batch_within_s} s"
    )


def report(
    load: kit.LoadNote,
    defaults: dict[str, Any],
    rates: tuple[Rate, Rate, Rate, Rate, Rate, Rate, Rate],
    m_tuned: dict[str, float],
    profile: str,
    stream: tuple[int, float, float, float],
) -> str:
    a, b_tuned, c_tuned, b_default, c_default, c_batched, b_again = rates
    incidents, mean_bytes, generated_s, produced_s = stream
    tuned = Settings()
    rows = [
        "| consumer | events timed | seconds | events/s | CPU busy | CPU µs / event "
        "| ÷ (b) same settings |",
        "|---|---:|---:|---:|---:|---:|---:|",
        a.row(),
        b_tuned.row(b_tuned.per_s),
        c_tuned.row(b_tuned.per_s),
        b_default.row(b_default.per_s),
        c_default.row(b_default.per_s),
        c_batched.row(b_tuned.per_s),
        b_again.row(b_tuned.per_s),
    ]
    per_event_ms = m_tuned.get("sla_event_processing_seconds_sum", 0) / max(
        1, m_tuned.get("sla_event_processing_seconds_count", 1)
    )
    ratio_b = c_tuned.per_s / b_tuned.per_s
    done = max(1, kit.processed(m_tuned))
    alerts = m_tuned.get("sla_alerts_total", 0) / done
    outcomes = m_tuned.get("sla_outcomes_total", 0) / done
    lines = [
        f"{EVENTS:,} generated events ({incidents:,} incidents, {mean_bytes:.0f} B each on "
        f"average, instants a day ahead so no tick finds anything due) on one topic of 4 "
        f"partitions of a fresh embedded broker; generated in {generated_s:.0f} s, produced "
        f"in {produced_s:.1f} s per copy. Each consumer reads the topic with its own group id. "
        "Rates run from the first processed event to the last; `CPU busy` is the consumer "
        "process's CPU time over that span (1.0 = one core). Rows are in the order the runs "
        "went; the last repeats the first bare agent run, so the gap between the two shows "
        "how far one run of the same thing can move on this shared machine and in-memory "
        "broker.",
        "",
        *rows,
        "",
        f"**(c)/(b) = {ratio_b:.2f}** (tuned), {c_default.per_s / b_default.per_s:.2f} (Faust "
        f"defaults); **(c)/(a) = {c_tuned.per_s / a.per_s:.3f}**. Per CPU-second of the "
        f"consumer's own process (less sensitive to the other work on the machine): (c)/(b) = "
        f"{b_tuned.cpu_us / c_tuned.cpu_us:.2f} tuned, {b_default.cpu_us / c_default.cpu_us:.2f}"
        " at Faust defaults. The worker in batches (`SLA_EVENT_BATCH` "
        f"{BATCHED_ENV['SLA_EVENT_BATCH']}, `SLA_EVENT_BATCH_WITHIN_S` "
        f"{BATCHED_ENV['SLA_EVENT_BATCH_WITHIN_S']}, tuned otherwise): **(c)/(b) = "
        f"{c_batched.per_s / b_tuned.per_s:.2f}**, per CPU-second "
        f"{b_tuned.cpu_us / c_batched.cpu_us:.2f}. Batches stay opt-in: with them, tests "
        "that start two workers together sometimes missed effects (cause not found yet).",
        "",
        "Settings: tuned = the worker's own (`producer_linger` "
        f"{tuned.producer_linger_s}, `stream_buffer_maxsize` {tuned.stream_buffer_maxsize}, "
        f"`broker_commit_every` {tuned.commit_every}, `broker_commit_interval` "
        f"{tuned.commit_interval_s}; {batching(tuned)} in the first two rows of (c)); "
        "Faust defaults = "
        + ", ".join(f"`{k}` {v}" for k, v in defaults.items())
        + ". (b) takes the rest of its settings from `faust_settings()`, as the worker does. "
        f"(b) and (c) time the first {TIMED:,} events. Each worker reads a topic of its own "
        "holding the same records (a worker's rollup agent reads the outcomes topic of its "
        "prefix, so two workers on one prefix would count each other's outcomes).",
        "",
        f"The worker spent {per_event_ms * 1e6:.0f} µs of wall time per event inside its own "
        "step (decode → de-duplicate → engine → one table write → publish, awaits included; "
        "`sla_event_processing_seconds`), "
        f"against {1e6 / c_tuned.per_s:.0f} µs per event overall and "
        f"{1e6 / b_tuned.per_s:.0f} µs for the bare agent's whole path. Per event it also "
        f"published {alerts:.2f} alerts and {outcomes:.2f} outcomes, and its rollup agent "
        "consumed each outcome and wrote its hour bucket: besides its own table write, about "
        f"{alerts + 2 * outcomes:.1f} messages produced and {outcomes:.2f} consumed per event, "
        "where (b) produces one changelog record and nothing else.",
        "",
        load.line(),
    ]
    if profile:
        lines += ["", profile]
    return "\n".join(lines) + "\n"


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "bare-agent":
    bare_agent_main(sys.argv[2])
