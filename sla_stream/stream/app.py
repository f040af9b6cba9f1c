"""The worker's stream side on a Faust app: topics, tables, the incident agent, the ticker and
the rollups.

`build_stream(app, settings)` declares them on an app built by the composition root
(`sla_stream/worker_app.py`), which also adds the web routes: nothing here knows of HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
from sla_stream.stream.worker import current_generation, make_current

log = logging.getLogger(__name__)

RAW = {"key_serializer": "raw", "value_serializer": "raw"}  # bytes in, bytes out: our codecs


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


def build_stream(
    app: faust.App, settings: Settings, wall: Callable[[], float] = time.time
) -> StreamParts:
    """Declare the topics, tables, agents and timers of one worker on `app`; `wall` is the
    wall clock (epoch seconds), the only one the worker reads."""
    names = TopicNames.of(settings)
    metrics = Metrics()
    p = settings.partitions
    outputs = {
        "alerts": app.topic(names.alerts, partitions=p, **RAW),
        "outcomes": app.topic(names.outcomes, partitions=p, **RAW),
        "dead-letter": app.topic(names.dead_letter, partitions=1, **RAW),
    }
    incidents = app.Table("incidents", partitions=p, key_type=bytes, value_type=bytes)
    # Fed by an agent rather than used as the table's changelog: on the embedded broker a
    # GlobalTable whose changelog is an outside topic never finished its first rebalance.
    contracts = app.GlobalTable(
        "contracts", partitions=1, key_type=bytes, value_type=bytes, recovery_buffer_size=1
    )
    cache = ContractCache()

    def lookup(contract_id: str) -> ContractRecord | None:
        return cache.get(contract_id, contracts.get(contract_id.encode()))

    store = IncidentStore(incidents, settings.incident_retention, Path(app.conf.tabledir))
    window = DeadLetterWindow(
        settings.dead_letter_max_ratio, settings.dead_letter_window, settings.dead_letter_min_count
    )
    gate = EventsGate(window, metrics, names.events, lambda: app.consumer)
    steps = IncidentSteps(
        store,
        lookup,
        Publisher(outputs, metrics, wall),
        metrics,
        events_topic=names.events,
        max_event_bytes=settings.max_event_bytes,
        outbox_window_s=settings.outbox_window_s,
        dead_letter_max_bytes=settings.dead_letter_max_bytes,
        gate=gate,
    )
    if settings.forecast_model is not None:  # without one, the steps run exactly as before
        from sla_stream.stream.risk import load_watch

        steps.risk = load_watch(
            settings.forecast_model, metrics.registry, settings.forecast_rescore_s
        )
    declare_incident_agent(app, names, p, steps, settings, wall)
    declare_contracts_agent(app, names.contracts, contracts, metrics)
    # adherence table, rollup agent, gauge refresher
    rollups = build_rollups(app, p, names.outcomes, lookup, metrics.adherence, outputs["alerts"])
    return StreamParts(settings, app, names, metrics, store, contracts, steps, gate, rollups)


def declare_incident_agent(
    app: faust.App,
    names: TopicNames,
    partitions: int,
    steps: IncidentSteps,
    settings: Settings,
    wall: Callable[[], float],
) -> None:
    """The incident agent (events and ticks, one step each, taken in batches) and the ticker
    that feeds it."""
    source = app.topic(names.events, names.ticks, partitions=partitions, **RAW)
    ticks = app.topic(names.ticks, partitions=partitions, **RAW)

    def my_partitions() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == names.events}

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        steps.on_assigned()

    @app.agent(source, name="incidents")
    async def incident_agent(stream: Any) -> None:
        if settings.event_batch == 1:  # one message at a time, as Faust iterates
            await one_at_a_time(stream)
            return
        # The batch is handled in the agent's task, not in the stream iteration that filled
        # it: the steps make each event current themselves before writing the table.
        steps.set_current = make_current
        batches = stream.take_events(settings.event_batch, settings.event_batch_within_s)
        batch: list[EventT]
        async for batch in batches:
            current = current_generation(app, batch)
            await steps.on_batch(current, names.ticks, my_partitions)

    async def one_at_a_time(stream: Any) -> None:
        event: EventT
        async for event in stream.events():
            message = event.message
            if message.topic == names.ticks:
                await steps.ensure_index(my_partitions())
                await steps.on_tick(message.partition, decode_tick(event.value))
            else:
                await steps.on_event(event.value, message.key, message.partition, message.offset)

    @app.timer(settings.tick_interval)
    async def ticker() -> None:
        payload = encode_tick(utc_from_wall(wall()))  # time enters the stream here
        for partition in sorted(my_partitions()):
            await ticks.send(key=None, value=payload, partition=partition)


def declare_contracts_agent(app: faust.App, topic: str, contracts: Any, metrics: Metrics) -> None:
    """Keep the contracts GlobalTable: every valid record keyed by its own contract id."""

    @app.agent(app.topic(topic, partitions=1, **RAW), name="contracts")
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
