"""The worker's stream side on a Faust app: topics, tables, the incident agent, the ticker and
the rollups.

`build_stream(app, settings)` declares them on an app built by the composition root
(`sla_stream/worker_app.py`), which also adds the web routes: nothing here knows of HTTP.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import EventT

from sla_stream.core.terms import ContractRecord
from sla_stream.settings import Settings
from sla_stream.stream.codecs import ContractCache, decode_tick, encode_tick
from sla_stream.stream.dead_letter_limit import DeadLetterWindow, EventsGate
from sla_stream.stream.incidents import IncidentSteps
from sla_stream.stream.metrics import Metrics
from sla_stream.stream.publish import Publisher
from sla_stream.stream.rollups import Rollups, build_rollups
from sla_stream.stream.state import IncidentStore, utc_from_wall
from sla_stream.stream.topics import TopicNames

log = logging.getLogger(__name__)


@dataclass
class StreamParts:
    """What the stream side declared on the app, for the web side and the tests to read."""

    settings: Settings
    faust: faust.App
    topics: TopicNames
    metrics: Metrics
    store: IncidentStore
    contracts_table: Any
    steps: IncidentSteps
    gate: EventsGate  # the dead-letter limit's pause of the events topic
    rollups: Rollups

    def contract(self, contract_id: str) -> ContractRecord | None:
        return self.steps.contracts(contract_id)


def build_stream(app: faust.App, settings: Settings) -> StreamParts:
    """Declare the topics, tables, agents and timers of one worker on `app`."""
    names = TopicNames.of(settings)
    metrics = Metrics()
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    p = settings.partitions
    source = app.topic(names.events, names.ticks, partitions=p, **raw)
    ticks = app.topic(names.ticks, partitions=p, **raw)
    outputs = {
        "alerts": app.topic(names.alerts, partitions=p, **raw),
        "outcomes": app.topic(names.outcomes, partitions=p, **raw),
        "dead-letter": app.topic(names.dead_letter, partitions=1, **raw),
    }
    incidents = app.Table("incidents", partitions=p, key_type=bytes, value_type=bytes)
    # Fed by an agent rather than used as the table's changelog: on the embedded broker a
    # GlobalTable whose changelog is an outside topic never finished its first rebalance.
    contracts = app.GlobalTable(
        "contracts", partitions=1, key_type=bytes, value_type=bytes, recovery_buffer_size=1
    )
    contracts_source = app.topic(names.contracts, partitions=1, **raw)

    cache = ContractCache()

    def lookup(contract_id: str) -> ContractRecord | None:
        return cache.get(contract_id, contracts.get(contract_id.encode()))

    store = IncidentStore(incidents, settings.incident_retention)
    window = DeadLetterWindow(
        settings.dead_letter_max_ratio, settings.dead_letter_window, settings.dead_letter_min_count
    )
    gate = EventsGate(window, metrics, names.events, lambda: app.consumer)
    steps = IncidentSteps(
        store,
        lookup,
        Publisher(outputs, metrics),
        metrics,
        events_topic=names.events,
        max_event_bytes=settings.max_event_bytes,
        outbox_window_s=settings.outbox_window_s,
        dead_letter_max_bytes=settings.dead_letter_max_bytes,
        gate=gate,
    )

    def my_partitions() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == names.events}

    assignments = [0, -1]  # assignments seen, and the one the index was last rebuilt for

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Rebuild after every assignment, even of the same partitions: while they were away
        # another worker may have changed their records (and the index of a revoked
        # partition is stale).
        assignments[0] += 1

    async def ensure_index() -> None:
        assigned = my_partitions()
        if assigned != store.partitions or assignments[0] != assignments[1]:
            assignments[1] = assignments[0]
            resend = store.rebuild(assigned, settings.outbox_window_s)
            steps.publisher.forget(assigned)
            steps.open_clocks.recount_counts(store.open_slots)  # counted in the same pass
            sent = await steps.publisher.resend(resend)
            log.info(
                "due index rebuilt for partitions %s; re-sent %d effects", sorted(assigned), sent
            )

    @app.agent(source, name="incidents")
    async def incident_agent(stream: Any) -> None:
        event: EventT
        async for event in stream.events():
            message = event.message
            if message.topic == names.ticks:
                await ensure_index()
                await steps.on_tick(message.partition, decode_tick(event.value))
            else:
                await steps.on_event(event.value, message.key, message.partition, message.offset)

    @app.agent(contracts_source, name="contracts")
    async def contracts_agent(stream: Any) -> None:
        async for event in stream.events():
            if event.message.key is None:
                continue
            if event.value is None:  # a tombstone retires the contract
                contracts.pop(event.message.key, None)
                continue
            try:
                record = ContractRecord.model_validate_json(event.value)
                if record.contract_id.encode() != event.message.key:
                    raise ValueError(f"keyed {event.message.key!r}, not by its contract_id")
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                # `sla-stream contracts apply` validates; a record that is bad anyway must not
                # replace the terms in force, nor fail every incident that looks it up.
                log.error("contract record at offset %s refused: %s", event.message.offset, exc)
                metrics.rejected.labels("invalid_contract").inc()
                continue
            contracts[event.message.key] = event.value

    @app.timer(settings.tick_interval)
    async def ticker() -> None:
        payload = encode_tick(utc_from_wall(time.time()))  # the one place that reads the clock
        for partition in sorted(my_partitions()):
            await ticks.send(key=None, value=payload, partition=partition)

    # adherence table, rollup agent, gauge refresher
    rollups = build_rollups(app, p, names.outcomes, lookup, metrics.adherence)
    return StreamParts(settings, app, names, metrics, store, contracts, steps, gate, rollups)
