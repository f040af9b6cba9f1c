"""Alert lateness: 10k incidents whose deadlines fall over one minute on one worker.

Each incident's first-response clock has one warning (at half its allowance) and its breach;
the opened instants are chosen so the 10k warnings fall due evenly over one minute and the 10k
breaches evenly over a later minute. A warning is the tick path alone (advance, one write, one
alert); a breach also settles the clock, so its outcome goes through the rollup agent in the
same process. Lateness is the wall-clock time a consumer of the alerts topic received the alert
minus the instant it fell due (its `emitted_at`).

The scenario runs twice: with nothing else to do, and under load, where the worker also ingests
`LOAD_RATE` events per second of other incidents (generated, instants a day ahead, so they add
no dues of their own) from the moment the opened events are produced until the last breach.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta
from statistics import quantiles
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench import kit
from bench.profile import Profiler
from sla_stream.core.contracts import load_contracts
from sla_stream.core.terms import ContractRecord, ContractTerms, Target
from sla_stream.generate import DEFAULT_CONTRACTS, iter_events
from sla_stream.settings import Settings
from sla_stream.stream.worker import FETCH_MAX_WAIT_MS

TITLE = "Alert lateness"
INCIDENTS = 10_000
SPREAD_S = 60.0
ALLOWANCE_S = 160.0  # first response: warning at 80 s, breach at 160 s after opening
WARNING_AT = 0.5
LEAD_S = 30.0  # from producing the events to the first warning: time to take them all
KINDS = ("warning", "breach")
CONTRACT = "bench-lateness"
PREFIX = "LATE-"  # the scenario's incident ids; the load's alerts are not counted
LOAD_RATE = 1_000  # events per second of other incidents in the loaded run
LOAD_SLICE_S = 0.05  # the load is sent in slices this far apart


def contract() -> ContractRecord:
    """24x7; the first-response clock warns once, at half its allowance, then breaches."""
    targets = []
    for severity in ("P1", "P2", "P3", "P4"):
        targets.append(_target("first_response", severity, ALLOWANCE_S, (WARNING_AT,)))
        targets.append(_target("resolution", severity, 7 * 86_400, (0.5, 0.75, 0.9)))
    terms = ContractTerms(
        contract_id=CONTRACT,
        customer_id="bench",
        tier="bench",
        timezone="UTC",
        calendars={"24x7": {"timezone": "UTC", "hours": "24x7"}},
        targets=tuple(targets),
    )
    return ContractRecord(contract_id=CONTRACT, versions=(terms,))


def _target(metric: str, severity: str, allowance_s: float, warn: tuple[float, ...]) -> Target:
    return Target(
        metric=metric,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        allowance_s=allowance_s,
        calendar="24x7",
        warning_thresholds=warn,
        clause_id="1",
        clause_title="bench",
    )


def opened_events(first_warning: datetime) -> list[tuple[bytes, bytes]]:
    step = timedelta(seconds=SPREAD_S / INCIDENTS)
    out = []
    for i in range(INCIDENTS):
        incident = f"{PREFIX}{i:06d}"
        at = first_warning - timedelta(seconds=ALLOWANCE_S * WARNING_AT) + i * step
        event = {
            "event_id": f"{incident}-1",
            "incident_id": incident,
            "type": "opened",
            "occurred_at": at.isoformat(),
            "contract_id": CONTRACT,
            "severity": "P2",
            "status": "new",
        }
        out.append((incident.encode(), orjson.dumps(event)))
    return out


WHAT_WAS_DONE = (
    "What was done. (1) Ticks reached the incident agent up to half a second late: Faust "
    "creates its consumer with a 1500 ms fetch wait, and the embedded broker holds a fetch for "
    "the whole wait even when data arrives. The worker now waits at most {wait} ms "
    "(`stream/worker.py` `prompt_fetches`), which about halved the warnings' lateness on this "
    "scenario (the runs before and after are in that commit's message). (2) Breaches also "
    "settle their clock, and the rollup agent, in the same process, adds each outcome to its "
    "hour bucket. A bucket used to list the id of every outcome it had counted, and each "
    "outcome decoded and re-encoded the whole bucket: the {n:,} breaches of this hour share "
    "one bucket, so each write cost more than the last (quadratic over the hour), the agent "
    "fell behind and took the event loop from the ticks (breaches p99 of tens of seconds; "
    "with `Bucket.from_bytes` and `to_bytes` at the top of its profile), and "
    "near 20k outcomes a bucket record would have passed Kafka's 1 MB limit. The counted ids "
    "are now small markers beside the buckets (commit a010c1a), so every bucket write is the "
    "same size."
)


BEHIND = (
    "Why the loaded run misses p99 <= 0.5 s: the worker carried {rate:,.0f} of the {load:,} "
    "events a second it was sent, so its input fell further behind every second, and a tick "
    "shares the incident agent's stream with the events (each partition's ticks are ordered "
    "with its events, which is what makes a step deterministic): a tick waits behind every "
    "event fetched before it, and its alerts are as late as the backlog is old. Only a worker "
    "that carries more than the load removes that wait (see Streaming for its throughput and "
    "profile); the profile above shows where this run's time went."
)


def pct(values: list[float], p: int) -> float:
    return quantiles(values, n=100, method="inclusive")[p - 1]


def bucket_quantile(text: str, name: str, q: float) -> str:
    """Upper bound of the histogram bucket holding quantile `q` (what the histogram can say)."""
    buckets = kit.buckets(text, name)
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if total and count >= q * total:
            return f"≤ {bound:g} s" if bound != float("inf") else "> last bucket"
    return "-"


Result = tuple[dict[str, list[float]], float, float | None]  # lateness by kind, taken, load/s


def run() -> str:
    load = kit.LoadNote()
    tick = Settings().tick_interval
    with kit.scratch("lateness") as root, kit.broker() as b:
        quiet, metrics, profile = _run_once(b.bootstrap, root, "lateness", loaded=False)
        loaded, loaded_metrics, loaded_profile = _run_once(
            b.bootstrap, root, "lateness-loaded", loaded=True
        )
    return report(load, tick, (quiet, metrics, profile), (loaded, loaded_metrics, loaded_profile))


def _run_once(bootstrap: str, root: Any, app_id: str, loaded: bool) -> tuple[Result, str, str]:
    """One worker on topics of its own; with `loaded`, other incidents' events stream in."""
    system = kit.System(bootstrap, root, f"{app_id}.")
    system.create_topics()
    contracts = {CONTRACT: contract()}
    if loaded:
        contracts.update(load_contracts(DEFAULT_CONTRACTS))
    system.put_contracts(contracts)
    worker = system.worker(app_id)
    profiler = Profiler(root / f"{app_id}.pyspy")
    with kit.running(worker):
        worker.start()
        worker.wait_ticking(120)
        asyncio.run(
            kit.read_until(
                bootstrap,
                f"{app_id}-contracts-changelog",
                lambda got: len(got) >= len(contracts),
                60,
            )
        )
        load = other_events() if loaded else None  # before the clock starts: takes seconds
        first_warning = datetime.now(UTC) + timedelta(seconds=LEAD_S)
        reader = kit.Collector(bootstrap, system.topic("alerts"))
        result = asyncio.run(_measure(worker, reader, first_warning, profiler, load))
        metrics = worker.get("/metrics").decode()
    profile = profiler.summary("the worker from the first warning to the last breach")
    return result, metrics, profile


def other_events() -> list[tuple[bytes, bytes]]:
    """`LOAD_RATE` events a second of generated incidents for the whole loaded run, with
    instants a day ahead (so they add no dues)."""
    seconds = LEAD_S + ALLOWANCE_S * (1 - WARNING_AT) + SPREAD_S + 30
    count = int(LOAD_RATE * seconds)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    stream = iter_events(count // 3, 2, start, None, load_contracts(DEFAULT_CONTRACTS))
    return [(e.incident_id.encode(), e.to_json()) for e in itertools.islice(stream, count)]


async def _stream_load(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> int:
    """Send `records` at `LOAD_RATE` a second, in slices, until done or cancelled."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    sent, started = 0, time.monotonic()
    per_slice = int(LOAD_RATE * LOAD_SLICE_S)
    try:
        while sent < len(records):
            due = started + (sent / LOAD_RATE)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            for key, value in records[sent : sent + per_slice]:
                await producer.send(topic, value=value, key=key)
            sent += per_slice
    except asyncio.CancelledError:
        pass
    finally:
        await producer.stop()
    return sent


async def _measure(
    worker: kit.Worker,
    reader: kit.Collector,
    first_warning: datetime,
    profiler: Profiler,
    load: list[tuple[bytes, bytes]] | None = None,
) -> Result:
    """Produce the opens, wait for every warning and breach; (lateness by kind, opens taken,
    the load's events the worker processed a second while the dues fell)."""
    await reader.start()
    last_breach = first_warning.timestamp() + ALLOWANCE_S * (1 - WARNING_AT) + SPREAD_S
    topic = _events_topic(worker)
    streaming = None
    try:
        events = opened_events(first_warning)
        await kit.produce(worker.env["SLA_BROKER"], topic, events)
        produced_at = time.time()
        while (done := kit.processed(await asyncio.to_thread(worker.metrics) or {})) < INCIDENTS:
            if time.time() > first_warning.timestamp():
                raise TimeoutError(f"the worker took {done} of the opened events in time")
            await asyncio.sleep(0.25)
        taken_s = time.time() - produced_at
        if load:  # from here (the opens taken) to the last breach
            streaming = asyncio.create_task(_stream_load(worker.env["SLA_BROKER"], topic, load))
        await _sleep_until(first_warning.timestamp())
        done_at_first = kit.processed(await asyncio.to_thread(worker.metrics) or {})
        first_at = time.time()
        profiler.attach(worker.proc.pid if worker.proc else 0)
        deadline = last_breach + 240
        while (got := len(_ours(reader.values))) < len(KINDS) * INCIDENTS:
            if time.time() > deadline:
                raise TimeoutError(f"{got} alerts by the deadline")
            await asyncio.sleep(0.25)
        profiler.stop()
        await _sleep_until(last_breach)
        done_at_last = kit.processed(await asyncio.to_thread(worker.metrics) or {})
        last_at = time.time()
    finally:
        if streaming is not None:
            streaming.cancel()
            await streaming
        await reader.stop()
    late: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for received, value in _ours(reader.values):
        due = datetime.fromisoformat(value["emitted_at"]).timestamp()
        late.setdefault(value["kind"], []).append(received - due)
    load_rate = None
    if load:
        load_rate = (done_at_last - done_at_first) / (last_at - first_at)
    return late, taken_s, load_rate


def _ours(values: list[tuple[float, Any]]) -> list[tuple[float, Any]]:
    return [(at, v) for at, v in values if v["incident_id"].startswith(PREFIX)]


async def _sleep_until(wall: float) -> None:
    await asyncio.sleep(max(0.0, wall - time.time()))


def _events_topic(worker: kit.Worker) -> str:
    return f"{worker.env['SLA_TOPIC_PREFIX']}incident-events"


def report(
    load: kit.LoadNote,
    tick: float,
    quiet: tuple[Result, str, str],
    loaded: tuple[Result, str, str],
) -> str:
    (late, taken_s, _), metrics, profile = quiet
    (loaded_late, _, load_rate), loaded_metrics, loaded_profile = loaded
    rows = [
        "| run | alerts | count | p50 | p99 | max | min |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    what = {
        "warning": "warnings (tick path only)",
        "breach": "breaches (tick path, outcome to the rollup agent)",
    }
    for run_name, run_late in (("alone", late), ("under load", loaded_late)):
        for kind, values in run_late.items():
            p50, p99 = pct(values, 50), pct(values, 99)
            rows.append(
                f"| {run_name} | {what.get(kind, kind)} | {len(values):,} | {p50:.3f} s "
                f"| {p99:.3f} s | {max(values):.3f} s | {min(values):.3f} s |"
            )
    hist = "sla_alert_lateness_seconds"
    worst = max(pct(v, 99) for v in late.values())
    worst_loaded = max(pct(v, 99) for v in loaded_late.values())
    lines = [
        f"{INCIDENTS:,} incidents opened on a 24x7 contract whose first-response clock "
        f"({ALLOWANCE_S:.0f} s) warns at half its allowance and then breaches; the opened "
        f"instants put the {INCIDENTS:,} warnings evenly over {SPREAD_S:.0f} s starting "
        f"{LEAD_S:.0f} s after the events were produced, and the {INCIDENTS:,} breaches "
        f"evenly over {SPREAD_S:.0f} s starting {ALLOWANCE_S * (1 - WARNING_AT):.0f} s later. "
        f"One worker, default settings (tick every {tick} s). It had taken all "
        f"{INCIDENTS:,} opened events {taken_s:.1f} s after they were produced, before the "
        "first warning was due. The run is made twice, each on a fresh worker with topics of "
        f"its own: alone, and under load, where from the moment the opened events were taken "
        f"to the last breach the worker also ingests {LOAD_RATE:,} events a second of other "
        "generated incidents (instants a day ahead, so they add no dues of their own); from "
        f"the first warning to the last breach it processed {load_rate or 0:,.0f} events a "
        "second of them.",
        "",
        *rows,
        "",
        "Lateness = receive time at a consumer of the alerts topic minus the due instant "
        "(`emitted_at`), both on this machine's clock: waiting for the next tick (up to one "
        "interval), the tick's trip through the broker, the step, the producer's linger and "
        "the consumer's fetch. The worker's own histogram (`"
        f"{hist}`, at publish time, both kinds) puts p50 {bucket_quantile(metrics, hist, 0.5)} "
        f"and p99 {bucket_quantile(metrics, hist, 0.99)} alone, p50 "
        f"{bucket_quantile(loaded_metrics, hist, 0.5)} and p99 "
        f"{bucket_quantile(loaded_metrics, hist, 0.99)} under load.",
        "",
        load.line(),
    ]
    if worst > 1.0:
        lines += ["", profile]
    if worst_loaded > 0.5:
        lines += ["", loaded_profile]
    if worst_loaded > 0.5 and (load_rate or 0) < 0.98 * LOAD_RATE:
        lines += ["", BEHIND.format(rate=load_rate or 0, load=LOAD_RATE)]
    lines += [
        "",
        WHAT_WAS_DONE.format(wait=FETCH_MAX_WAIT_MS, n=INCIDENTS),
    ]
    return "\n".join(lines) + "\n"
