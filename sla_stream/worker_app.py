"""The composition root: build one worker's Faust app, its stream side and its web routes.

`create_app(settings, bootstrap)` is the only place that joins `stream/` (topics, tables, agents)
and `web/` (routes, access): `stream/` never imports `web/`, and the web modules read the worker
through the `SlaApp` built here. Every Faust setting is passed in code with `env={}`, so stray
variables such as `WEB_PORT` cannot override it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import faust

from sla_stream.settings import WILDCARD_HOSTS, Settings
from sla_stream.stream import checkpoint, index_snapshot
from sla_stream.stream.app import StreamParts, build_stream
from sla_stream.stream.local_state import rebuild_if_stale
from sla_stream.stream.worker import (
    keep_queued_messages,
    leave_group_on_stop,
    prepare_topics,
    prompt_fetches,
    recovery_check_for,
    start_tables_at_once,
)
from sla_stream.web.access import Access, ClusterRouter, Keys, Routes, bind_host
from sla_stream.web.adherence import register_adherence_views
from sla_stream.web.admin import register_admin_views
from sla_stream.web.ingest import register_ingest_view
from sla_stream.web.risk import register_risk_views
from sla_stream.web.site import register_site

log = logging.getLogger(__name__)


@dataclass
class SlaApp(StreamParts):
    """The worker: its stream parts and the one way to add a web route (see web/site.py)."""

    routes: Routes | None = None


def canonical_url(settings: Settings, fqdn: Callable[[], str] = socket.getfqdn) -> str:
    """Where other workers reach this one. Faust forwards table-routed requests there and the
    partition assignor tells members apart by it, so `0.0.0.0` (every worker the same URL, each
    taking every request as its own) is never used: SLA_WEB_URL, else the bound host, else
    this machine's fully qualified name (a StatefulSet pod's is its stable DNS name)."""
    if settings.web_url:
        return settings.web_url
    host = bind_host(settings)
    if host in WILDCARD_HOSTS:
        host = fqdn()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}"


def log_web_access(settings: Settings, keys: Keys) -> None:
    """Say at start who can reach the web server, in one line an operator cannot miss."""
    where = f"{bind_host(settings)}:{settings.web_port}"
    if keys.viewer:
        log.info(
            "web: listening on %s; %d viewer token(s), cluster secret set; /healthz and /metrics "
            "are open",
            where,
            len(keys.viewer),
        )
        return
    ignored = (
        ""
        if bind_host(settings) == settings.web_host
        else f" (SLA_WEB_HOST={settings.web_host} ignored)"
    )
    log.warning(
        "web: no SLA_VIEWER_TOKEN_HASHES, so listening on loopback only, %s%s; the dashboard "
        "and read APIs are open to local users. Set SLA_VIEWER_TOKEN_HASHES and "
        "SLA_CLUSTER_SECRET to serve other machines",
        where,
        ignored,
    )


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
        "broker_session_timeout": settings.session_timeout,
        "broker_heartbeat_interval": 1.0,
        # Tansu reports end offsets wrong after multi-record batches; on Kafka keep the check.
        "recovery_consistency_check": settings.consistency_check,
        "consumer_auto_offset_reset": "earliest",
        "producer_linger": settings.producer_linger_s,
        "stream_buffer_maxsize": settings.stream_buffer_maxsize,
        "broker_commit_every": settings.commit_every,
        "broker_commit_interval": settings.commit_interval_s,
        "web_enabled": True,
        "web_bind": bind_host(settings),
        "web_host": bind_host(settings),
        "web_port": settings.web_port,
        "canonical_url": canonical_url(settings),
        "web_in_thread": False,
        # Faust's own pages (table contents, routing maps) would bypass the access gate.
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "Router": ClusterRouter,  # forwards carry the cluster secret
        "worker_redirect_stdouts": False,
        "timezone": "UTC",
    }


def create_app(settings: Settings, bootstrap: str) -> SlaApp:
    keys = Keys.from_settings(settings)  # before anything starts: a bad token list stops here
    app = faust.App(settings.app_id, **faust_settings(settings, bootstrap))
    routes = Routes(app, keys)
    parts = build_stream(app, settings)
    sla_app = SlaApp(**vars(parts), routes=routes)
    register_web(sla_app, keys)
    return sla_app


def register_web(sla_app: SlaApp, keys: Keys) -> None:
    """Every route of the worker, each with its access class (web/access.py)."""
    app, routes, settings = sla_app.faust, sla_app.routes, sla_app.settings
    assert routes is not None
    register_ingest_view(app, settings, sla_app.topics.events, routes)  # POST /api/v1/events
    # GET/POST /api/v1/admin/resume-events: the dead-letter limit's state, and its resume
    register_admin_views(routes, sla_app.gate)

    @routes.page("/metrics", Access.OPEN)
    async def metrics_view(web: Any, request: Any) -> Any:
        from prometheus_client import generate_latest

        # aiohttp refuses a charset inside content_type; the text format 0.0.4 is UTF-8.
        return web.bytes(
            generate_latest(sla_app.metrics.registry), content_type="text/plain; version=0.0.4"
        )

    @routes.page("/healthz", Access.OPEN)
    async def health_view(web: Any, request: Any) -> Any:
        partitions = sorted(sla_app.store.partitions)
        return web.json(
            {"ok": True, "partitions": partitions, "dead_letters": sla_app.gate.status()}
        )

    @app.task
    async def announce_web_access() -> None:
        log_web_access(settings, keys)

    register_adherence_views(sla_app, sla_app.rollups, sla_app.rollups.table)  # /api/v1/adherence
    register_risk_views(sla_app)  # /api/v1/incidents/at-risk
    register_site(sla_app, sla_app.rollups)  # dashboard at /, portal API, incidents across workers


def run_worker(settings: Settings, bootstrap: str) -> int:
    """Declare topics, build the app and run it until stopped; returns the exit code."""
    broker = prepare_topics(settings, bootstrap)
    settings, check_note = recovery_check_for(settings, broker)
    prompt_fetches()
    leave_group_on_stop()
    start_tables_at_once()
    asyncio.set_event_loop(asyncio.new_event_loop())
    sla = create_app(settings, bootstrap)
    tabledir = Path(sla.faust.conf.tabledir)
    stale = rebuild_if_stale(tabledir, broker, settings.app_id)  # before Faust opens a table
    sealed = checkpoint.prepare_tables(sla.faust, settings.data_dir, bootstrap)
    sla.store.note_start_markers(sealed)
    keep_queued_messages(sla.faust.flow_control)
    notes = [check_note] if check_note else []
    if stale:
        notes.append(f"rebuilding the local tables in {tabledir} from the changelog: {stale}")
    worker = worker_class()(sla.faust, loglevel=settings.log_level.upper(), quiet=True)
    worker.notes = notes
    # Faust's terminal spinner, at WARNING and above, sets the root logger to DEBUG and adds a
    # handler: every debug call in Faust and aiokafka then built and dispatched a LogRecord
    # (2.5-4 % of a busy worker's samples). Our output is a log, not a terminal; no spinner.
    worker.spinner = None
    save_index = partial(index_snapshot.save_at_stop, tabledir, sla.steps)
    with checkpoint.clean_stop_recorded(
        settings.data_dir, worker, sla.faust, before_mark=save_index
    ):
        worker.execute_from_commandline()
    return 0


def worker_class() -> type[Any]:
    """Faust's worker, stopping on SIGHUP as on SIGTERM (a closed terminal), and logging the
    start-up decisions taken before Faust had set up logging."""
    import faust

    class SlaWorker(faust.Worker):  # type: ignore[misc]
        notes: list[str] = []

        async def on_execute(self) -> None:
            await super().on_execute()
            for note in self.notes:
                log.warning(note)

        def _install_signal_handlers_unix(self) -> None:
            super()._install_signal_handlers_unix()
            self.loop.add_signal_handler(signal.SIGHUP, self._on_sigterm)

    return SlaWorker
