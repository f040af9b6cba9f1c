"""Events taken in one batch give the same alerts and outcomes as events taken one at a time.

Two real workers on the embedded broker read the same events, each on its own topics: one takes
up to 500 events at once (`SLA_EVENT_BATCH=500`), the other one message at a time as Faust
iterates (`SLA_EVENT_BATCH=1`).

- The stories of a few incidents lie a day ahead of the wall clock, so every effect of theirs
  comes from the events themselves. They are produced together after both workers are ready, so
  the batched worker takes several events of one incident in one batch (its
  `sla_event_batch_writes` histogram shows fewer records written than events applied).
- Incidents opened an hour ago, sent in waves over a few seconds on every partition, get their
  warnings, breaches and outcomes from ticks: ticks land inside batches next to events of other
  partitions, and each must still fire what is due on its own partition.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import System, TopicReader, WorkerProcess
from tests.integration.test_worker import event, fast_contract, opened

INCIDENTS = 6
OVERDUE = 32  # incidents opened an hour ago: their effects come from ticks
WAVES = 8


def story(incident: str, t0: datetime, severity: str) -> list[dict[str, Any]]:
    """Warnings and breaches on both clocks, a pause, a repeat, and a late response that
    retracts the first-response breach and settles it met (its outcome withdrawn)."""
    s = timedelta(seconds=1)
    return [
        opened(incident, t0, severity=severity),
        event("p", incident, "status_changed", t0 + 3 * s, status="pending_customer"),
        event("a", incident, "status_changed", t0 + 8 * s, status="active"),
        event("resp", incident, "responded", t0 + 9 * s),
        opened(incident, t0, severity=severity),  # a repeat of the first event
        event("res", incident, "resolved", t0 + 20 * s),
        event("early", incident, "responded", t0 + 4 * s),  # late: the response came at 4 s
    ]


def overdue(incident: str, at: datetime) -> dict[str, Any]:
    """Opened an hour ago: every deadline has passed, so the first tick after it fires the
    warnings and the breach of both clocks. (Only the one event: a second one could reach a
    worker before or after that tick, a legitimate difference in what is published.)"""
    return opened(incident, at, severity="P2")


def metrics(worker: WorkerProcess) -> dict[str, float]:
    text = worker.get("/metrics").decode()
    return {
        sample.name + repr(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(values: dict[str, float], name: str, **labels: str) -> float:
    return values.get(name + repr(sorted(labels.items())), 0.0)


async def produce_together(system: System, events: list[dict[str, Any]]) -> None:
    """Send every event without waiting for each acknowledgement: few produce requests."""
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, linger_ms=50)
    await producer.start()
    try:
        for e in events:
            await producer.send(
                system.topic("incident-events"), orjson.dumps(e), key=e["incident_id"].encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


def by_incident(values: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each incident's effects in the order they were published (one partition per key)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for v in values:
        out[v["incident_id"]].append(v)
    return dict(out)


async def settled(
    reader: TopicReader, count: Callable[[], int], quiet_s: float = 2.0, timeout_s: float = 60.0
) -> None:
    """Wait until `count` stops moving for `quiet_s`."""
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif now > 0 and time.monotonic() - since >= quiet_s:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{reader.topic} never settled; {last} messages")


async def test_a_batch_of_events_gives_the_effects_of_one_at_a_time(make_system: Any) -> None:
    batched = make_system(extra_env={"SLA_EVENT_BATCH": "500"})
    single = make_system(extra_env={"SLA_EVENT_BATCH": "1"})
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    events = [
        e
        for i in range(INCIDENTS)
        for e in story(f"INC-B{i}", t0 + timedelta(minutes=i), ("P1", "P2", "P3")[i % 3])
    ]
    readers: dict[str, dict[str, TopicReader]] = {}
    workers = {}
    for name, system in (("batched", batched), ("single", single)):
        await system.create_topics()
        await system.put_contracts([fast_contract()])
        workers[name] = system.worker(name).start()
        readers[name] = {
            topic: await TopicReader(system.bootstrap, system.topic(topic)).start()
            for topic in ("alerts", "outcomes")
        }
    try:
        for worker in workers.values():
            worker.wait_ready(90)
        for system in (batched, single):
            await produce_together(system, events)
        late = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        waves: list[list[dict[str, Any]]] = [[] for _ in range(WAVES)]
        for i in range(OVERDUE):
            at = late + timedelta(seconds=i)
            waves[i % WAVES].append(overdue(f"INC-L{i:02d}", at))
        for wave in waves:  # a tick interval apart: ticks and events share batches
            for system in (batched, single):
                await produce_together(system, wave)
            await asyncio.sleep(0.25)
        late_events = sum(len(w) for w in waves)
        for name, worker in workers.items():
            for topic in ("alerts", "outcomes"):
                r = readers[name][topic]
                await settled(r, lambda r=r: len(r.messages))
            applied = metrics(worker)
            assert metric(applied, "sla_events_total", type="opened") == INCIDENTS + OVERDUE
            assert metric(applied, "sla_events_rejected_total", reason="duplicate") == INCIDENTS

        for topic in ("alerts", "outcomes"):
            got = by_incident(readers["batched"][topic].values)
            want = by_incident(readers["single"][topic].values)
            assert got == want, topic
        # Every overdue clock settled, from ticks: one breached outcome each.
        late_outcomes = [
            o for o in readers["batched"]["outcomes"].values if o["incident_id"].startswith("INC-L")
        ]
        assert len(late_outcomes) == 2 * OVERDUE
        assert not any(o["met"] for o in late_outcomes)
        alerts = readers["batched"]["alerts"].values
        kinds = {a["kind"] for a in alerts}
        assert {"warning", "breach", "retracted", "met"} <= kinds, kinds
        assert any(o.get("withdraws") for o in readers["batched"]["outcomes"].values)

        # The batched worker did take several events of an incident at once and wrote each
        # touched incident once; the other wrote one record per applied event.
        one, many = metrics(workers["single"]), metrics(workers["batched"])
        taken = len(events) + late_events
        applied_events = taken - INCIDENTS  # the repeats write nothing
        assert metric(one, "sla_event_batch_writes_count") == 0  # never batched
        assert metric(many, "sla_event_batch_events_sum") == taken
        # Each applied event writes its incident at most once: fewer writes than applied events
        # means some batch held several events of one incident and wrote it once for them.
        assert metric(many, "sla_event_batch_writes_sum") < applied_events
        assert metric(many, "sla_event_batch_events_count") < taken
    finally:
        for by_topic in readers.values():
            for r in by_topic.values():
                await r.stop()
