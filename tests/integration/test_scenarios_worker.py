"""Every scenario in tests/scenarios runs through a real worker on the embedded broker and gives
what it says: the same files and expectations as the replay driver (tests/unit/test_scenarios.py).

One worker serves them all. Each scenario gets its own partition (its incidents' events and its
ticks go there), and its own namespace (`s<n>.` before incident, event and contract ids), so one
scenario's simulated time never fires another's dues. The driver moves simulated time as the
replay does, through ticks the test sends itself (the worker's own ticker is slowed to an hour):
before an event later than the scenario's time, a tick 1 µs before it fires what is due strictly
before it; a contract arriving is published, then ticked at its instant until the worker has
evaluated its parked incidents; at the end a tick at `until` fires what is due up to then. The
events and ticks topics are read concurrently by the worker, so each tick waits for the events
sent before it, and each event for the tick before it (`/metrics` counts both).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from sla_stream.core.models import Alert, IncidentEvent, Outcome
from sla_stream.core.terms import ContractRecord
from sla_stream.stream.codecs import encode_tick
from tests.integration.harness import System, TopicReader, WorkerProcess
from tests.scenario_support import ContractArrives, Scenario, compare, load_scenario, scenario_paths

pytestmark = pytest.mark.integration
MICROSECOND = timedelta(microseconds=1)


def renamed(record: ContractRecord, contract_id: str) -> ContractRecord:
    versions = tuple(v.model_copy(update={"contract_id": contract_id}) for v in record.versions)
    return record.model_copy(update={"contract_id": contract_id, "versions": versions})


class Driver:
    """Feeds scenarios to one worker, one partition each, in simulated time."""

    def __init__(self, system: System, worker: WorkerProcess, producer: AIOKafkaProducer) -> None:
        self.system, self.worker, self.producer = system, worker, producer
        self.sent_events = 0
        self.sent_ticks = 0

    def metrics(self, **labels: str) -> dict[str, float]:
        """Each sample name's total over the samples carrying `labels`."""
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(self.worker.get("/metrics").decode()):
            for sample in family.samples:
                if labels.items() <= sample.labels.items():
                    totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals

    async def until(self, done: Callable[[dict[str, float]], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if done(self.metrics()):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"worker did not get to {what}:\n{self.worker.output()[-3000:]}")

    async def events_done(self) -> None:
        handled = ("sla_events_total", "sla_events_rejected_total", "sla_dead_letters_total")
        await self.until(
            lambda m: sum(m.get(k, 0.0) for k in handled) >= self.sent_events, "its events"
        )

    async def tick(self, partition: int, at: datetime) -> None:
        await self.events_done()
        topic = self.system.topic("ticks")
        await self.producer.send_and_wait(topic, encode_tick(at), partition=partition)
        self.sent_ticks += 1
        await self.until(lambda m: m.get("sla_tick_seconds_count", 0) >= self.sent_ticks, "ticks")

    async def send(self, partition: int, event: IncidentEvent) -> None:
        topic = self.system.topic("incident-events")
        key = event.incident_id.encode()
        await self.producer.send_and_wait(topic, event.to_json(), key=key, partition=partition)
        self.sent_events += 1

    async def run(self, scenario: Scenario, n: int) -> None:
        ns = f"s{n}."
        await self.system.put_contracts(
            [renamed(c, ns + k) for k, c in scenario.known_contracts().items()]
        )
        now: datetime | None = None
        for step in scenario.steps:
            if isinstance(step, ContractArrives):
                now = await self.contract_arrives(scenario, step, n, now)
                continue
            t = step.occurred_at
            if t > scenario.until:
                continue  # the replay leaves these out too
            if now is not None and t > now:
                await self.tick(n, t - MICROSECOND)
            now = t if now is None else max(now, t)
            update: dict[str, Any] = {
                "incident_id": ns + step.incident_id,
                "event_id": ns + step.event_id,
            }
            if step.contract_id is not None:
                update["contract_id"] = ns + step.contract_id
            await self.send(n, step.model_copy(update=update))
        await self.tick(n, scenario.until)

    async def contract_arrives(
        self, scenario: Scenario, step: ContractArrives, n: int, now: datetime | None
    ) -> datetime | None:
        at = step.at or now
        assert at is not None
        if now is not None and at > now:
            await self.tick(n, at - MICROSECOND)
        await self.events_done()
        parked = self.metrics().get("sla_parked_incidents", 0.0)
        record = scenario.contracts[step.contract_id]
        await self.system.put_contracts([renamed(record, f"s{n}." + step.contract_id)])
        # The contracts topic is read apart from the ticks: tick until the worker has it.
        for _ in range(100):
            await self.tick(n, at)
            if self.metrics().get("sla_parked_incidents", 0.0) < parked:
                break
            await asyncio.sleep(0.1)
        return at


async def serving(worker: WorkerProcess) -> None:
    deadline = time.monotonic() + 60
    while worker.partitions() is None:
        if time.monotonic() > deadline or (worker.proc and worker.proc.poll() is not None):
            raise AssertionError(f"worker not serving:\n{worker.output()[-3000:]}")
        await asyncio.sleep(0.2)


def own(values: list[dict[str, Any]], ns: str, model: type[Alert] | type[Outcome]) -> list[Any]:
    """The scenario's effects, with its namespace taken off the ids it put on (a service-level
    alert has no incident: it is the scenario's by its contract)."""
    out = []
    for v in values:
        contract_level = not v["incident_id"] and v["contract_id"].startswith(ns)
        if v["incident_id"].startswith(ns) or contract_level:
            fields = {**v, "incident_id": v["incident_id"][len(ns) :]}
            fields["contract_id"] = v["contract_id"][len(ns) :]
            out.append(model.model_validate(fields))
    return out


async def test_every_scenario_gives_the_same_effects_on_a_worker(make_system: Any) -> None:
    scenarios = [load_scenario(p) for p in scenario_paths()]
    system = make_system(partitions=len(scenarios))
    system.extra_env["SLA_TICK_INTERVAL"] = "3600"
    await system.create_topics()
    worker = system.worker("w1").start()
    await serving(worker)  # its due index is built on the first message, the driver's
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    outcomes = await TopicReader(system.bootstrap, system.topic("outcomes")).start()
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, linger_ms=0)
    await producer.start()
    try:
        driver = Driver(system, worker, producer)
        for n, scenario in enumerate(scenarios):
            await driver.run(scenario, n)
        want_alerts = sum(len(s.alerts) for s in scenarios)
        want_outcomes = sum(len(s.outcomes) for s in scenarios)
        await alerts.wait_for(lambda v: len(v) >= want_alerts, 30)
        await outcomes.wait_for(lambda v: len(v) >= want_outcomes, 30)
        await asyncio.sleep(1.0)  # anything more than expected would show up now
        problems = []
        for n, s in enumerate(scenarios):
            ns = f"s{n}."
            found = compare("alerts", own(alerts.values, ns, Alert), s.alerts)
            found += compare("outcomes", own(outcomes.values, ns, Outcome), s.outcomes)
            problems += [f"{s.path.stem}: {p}" for p in found]
        assert not problems, "\n".join(problems)
        for reason in ("duplicate", "after_final"):
            want = sum(s.ignored.get(reason, 0) for s in scenarios)
            got = driver.metrics(reason=reason).get("sla_events_rejected_total", 0.0)
            assert got == want, reason
        parked = driver.metrics().get("sla_parked_incidents", 0.0)
        assert parked == sum(s.parked or 0 for s in scenarios)
    finally:
        await producer.stop()
        await alerts.stop()
        await outcomes.stop()
