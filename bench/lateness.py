"""Alert lateness: 10k incidents whose breaches fall due over one minute on one worker.

Each incident's first-response clock breaches at its own instant, the 10k instants spread
evenly over a minute that starts after the worker has taken every `opened` event. Lateness is
the wall-clock time a consumer of the alerts topic received the breach minus the instant it fell
due (the alert's `emitted_at`); the worker's own `sla_alert_lateness_seconds` (publish time)
is shown beside it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from statistics import quantiles

import orjson

from bench import kit
from bench.profile import Profiler
from sla_stream.core.terms import ContractRecord, ContractTerms, Target
from sla_stream.settings import Settings

TITLE = "Alert lateness"
INCIDENTS = 10_000
SPREAD_S = 60.0
ALLOWANCE_S = 600.0  # first response; the opened instants lie this far before the deadlines
LEAD_S = 45.0  # from producing the events to the first deadline: time to take them all
CONTRACT = "bench-lateness"


def contract() -> ContractRecord:
    """24x7; the first-response clock has no warnings, so each incident sends one breach."""
    targets = []
    for severity in ("P1", "P2", "P3", "P4"):
        targets.append(_target("first_response", severity, ALLOWANCE_S, ()))
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


def opened_events(first_due: datetime) -> list[tuple[bytes, bytes]]:
    step = timedelta(seconds=SPREAD_S / INCIDENTS)
    out = []
    for i in range(INCIDENTS):
        incident = f"LATE-{i:06d}"
        at = first_due - timedelta(seconds=ALLOWANCE_S) + i * step
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


def run() -> str:
    load = kit.LoadNote()
    tick = Settings().tick_interval
    with kit.scratch("lateness") as root, kit.broker() as b:
        system = kit.System(b.bootstrap, root)
        system.create_topics()
        system.put_contracts({CONTRACT: contract()})
        worker = system.worker("lateness")
        profiler = Profiler(root / "lateness.pyspy")
        with kit.running(worker):
            worker.start()
            worker.wait_ticking(120)
            asyncio.run(
                kit.read_until(
                    b.bootstrap, "lateness-contracts-changelog", lambda got: len(got) >= 1, 60
                )
            )
            first_due = datetime.now(UTC) + timedelta(seconds=LEAD_S)
            reader = kit.Collector(b.bootstrap, system.topic("alerts"))
            result = asyncio.run(_measure(worker, reader, first_due, profiler))
            metrics = worker.get("/metrics").decode()
        profile = profiler.summary("the worker over the minute of deadlines")
    return report(load, tick, first_due, result, metrics, profile)


async def _measure(
    worker: kit.Worker, reader: kit.Collector, first_due: datetime, profiler: Profiler
) -> tuple[list[float], float, int]:
    """Produce the opens, wait for every breach; (lateness list, opens taken after, others)."""
    await reader.start()
    try:
        await kit.produce(worker.env["SLA_BROKER"], _events_topic(worker), opened_events(first_due))
        produced_at = time.time()
        while kit.processed(await asyncio.to_thread(worker.metrics) or {}) < INCIDENTS:
            if time.time() > first_due.timestamp() + SPREAD_S:
                raise TimeoutError("the worker did not take the opened events in time")
            await asyncio.sleep(0.25)
        taken_s = time.time() - produced_at
        profiler.attach(worker.proc.pid if worker.proc else 0)
        deadline = first_due.timestamp() + SPREAD_S + 120
        while sum(1 for _, v in reader.values if v["kind"] == "breach") < INCIDENTS:
            if time.time() > deadline:
                raise TimeoutError(f"{len(reader.values)} alerts by the deadline")
            await asyncio.sleep(0.25)
        profiler.stop()
    finally:
        await reader.stop()
    late = []
    others = 0
    for received, value in reader.values:
        if value["kind"] != "breach":
            others += 1
            continue
        late.append(received - datetime.fromisoformat(value["emitted_at"]).timestamp())
    return late, taken_s, others


def _events_topic(worker: kit.Worker) -> str:
    return f"{worker.env['SLA_TOPIC_PREFIX']}incident-events"


def report(
    load: kit.LoadNote,
    tick: float,
    first_due: datetime,
    result: tuple[list[float], float, int],
    metrics: str,
    profile: str,
) -> str:
    late, taken_s, others = result
    p50, p99 = pct(late, 50), pct(late, 99)
    hist = "sla_alert_lateness_seconds"
    lines = [
        f"{INCIDENTS:,} incidents opened on a 24x7 contract whose first-response clock (no "
        f"warnings) breaches {ALLOWANCE_S:.0f} s after opening; the opened instants are chosen "
        f"so the {INCIDENTS:,} breaches fall due evenly over {SPREAD_S:.0f} s, starting "
        f"{LEAD_S:.0f} s after the events were produced. One worker, default settings (tick "
        f"every {tick} s). The worker had taken all {INCIDENTS:,} opened events "
        f"{taken_s:.1f} s after they were produced, before the first deadline.",
        "",
        "| breaches | p50 | p99 | max | min |",
        "|---:|---:|---:|---:|---:|",
        f"| {len(late):,} | {p50:.3f} s | {p99:.3f} s | {max(late):.3f} s | {min(late):.3f} s |",
        "",
        "Lateness = receive time at a consumer of the alerts topic minus the due instant "
        "(`emitted_at`), both read on this machine's clock. It includes waiting for the next "
        "tick (up to one interval), the tick's round trip through the broker, the step, the "
        "producer's linger and the consumer's fetch. The worker's own histogram "
        f"(`{hist}`, at publish time) puts p50 {bucket_quantile(metrics, hist, 0.5)} and p99 "
        f"{bucket_quantile(metrics, hist, 0.99)}. Other alerts received: {others}.",
        "",
        load.line(),
    ]
    if p99 > 1.0:
        lines += ["", profile]
    return "\n".join(lines) + "\n"
