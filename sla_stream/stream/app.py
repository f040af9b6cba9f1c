"""Build the Faust app from settings: topics, tables, the incident agent and the ticker.

`create_app(settings)` wires everything explicitly (no import-time app), passing every Faust
setting in code with `env={}` so stray variables such as `WEB_PORT` cannot override it.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import EventT

from sla_stream.core.terms import ContractRecord
from sla_stream.settings import WILDCARD_HOSTS, Settings
from sla_stream.stream.codecs import ContractCache, decode_tick, encode_tick
from sla_stream.stream.incidents import IncidentSteps
from sla_stream.stream.metrics import Metrics
from sla_stream.stream.publish import Publisher
from sla_stream.stream.rollups import register_rollups
from sla_stream.stream.state import IncidentStore, utc_from_wall
from sla_stream.stream.topics import TopicNames
from sla_stream.web.site import register_site

log = logging.getLogger(__name__)


@dataclass
class SlaApp:
    """The Faust app and the parts tests and web views need to reach."""

    settings: Settings
    faust: faust.App
    topics: TopicNames
    metrics: Metrics
    store: IncidentStore
    contracts_table: Any
    steps: IncidentSteps

    def contract(self, contract_id: str) -> ContractRecord | None:
        return self.steps.contracts(contract_id)


def canonical_url(settings: Settings, fqdn: Callable[[], str] = socket.getfqdn) -> str:
    """Where other workers reach this one. Faust forwards table-routed requests there and the
    partition assignor tells members apart by it, so `0.0.0.0` (every worker the same URL, each
    taking every request as its own) is never used: SLA_WEB_URL, else the bound host, else
    this machine's fully qualified name (a StatefulSet pod's is its stable DNS name)."""
    if settings.web_url:
        return settings.web_url
    host = settings.web_host
    if host in WILDCARD_HOSTS:
        host = fqdn()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}"


def faust_settings(settings: Settings, bootstrap: str) -> dict[str, Any]:
    return {
        "broker": f"kafka://{bootstrap}",
        "store": "rocksdb://",
        "datadir": str(settings.data_dir),
        "env": {},
        "autodiscover": False,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "topic_disable_leader": True,
        "topic_allow_declare": True,
        "table_standby_replicas": settings.standby_replicas,
        "broker_rebalance_timeout": settings.rebalance_timeout,
        "broker_session_timeout": max(10.0, settings.rebalance_timeout * 3),
        "broker_heartbeat_interval": 1.0,
        # Tansu reports end offsets wrong after multi-record batches; on Kafka keep the check.
        "recovery_consistency_check": settings.consistency_check,
        "consumer_auto_offset_reset": "earliest",
        "producer_linger": settings.producer_linger_s,
        "stream_buffer_maxsize": settings.stream_buffer_maxsize,
        "broker_commit_every": settings.commit_every,
        "broker_commit_interval": settings.commit_interval_s,
        "web_enabled": True,
        "web_bind": settings.web_host,
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        "canonical_url": canonical_url(settings),
        "web_in_thread": False,
        "worker_redirect_stdouts": False,
        "timezone": "UTC",
    }


def create_app(settings: Settings, bootstrap: str) -> SlaApp:
    app = faust.App(settings.app_id, **faust_settings(settings, bootstrap))
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
    steps = IncidentSteps(
        store,
        lookup,
        Publisher(outputs, metrics),
        metrics,
        events_topic=names.events,
        max_event_bytes=settings.max_event_bytes,
        outbox_window_s=settings.outbox_window_s,
    )

    if settings.forecast_model is not None:  # without one, the steps run exactly as before
        from sla_stream.stream.risk import load_watch

        steps.risk = load_watch(
            settings.forecast_model, metrics.registry, settings.forecast_rescore_s
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

    from sla_stream.web.ingest import register_ingest_view

    register_ingest_view(app, settings, names.events)  # POST /api/v1/events

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        from prometheus_client import generate_latest

        # aiohttp refuses a charset inside content_type; the text format 0.0.4 is UTF-8.
        return web.bytes(
            generate_latest(metrics.registry), content_type="text/plain; version=0.0.4"
        )

    @app.page("/healthz")
    async def health_view(web: Any, request: Any) -> Any:
        return web.json({"ok": True, "partitions": sorted(store.partitions)})

    sla_app = SlaApp(settings, app, names, metrics, store, contracts, steps)
    rollups = register_rollups(sla_app)  # adherence table, rollup agent, gauge, /api/v1/adherence
    register_site(sla_app, rollups)  # dashboard at /, portal API, incidents across workers
    from sla_stream.web.risk import register_risk_views

    register_risk_views(sla_app)  # /api/v1/incidents/at-risk
    return sla_app
