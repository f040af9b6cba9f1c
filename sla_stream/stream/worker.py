"""Run one worker: make sure the broker and topics exist, then hand the loop to Faust."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from sla_stream.broker import EmbeddedBroker, _accepts
from sla_stream.settings import Settings
from sla_stream.stream.admin import ensure_topics
from sla_stream.stream.topics import topic_specs

EMBEDDED_HOST = "127.0.0.1"

log = logging.getLogger(__name__)


def default_bootstrap(settings: Settings) -> str:
    """Where clients connect: `SLA_BROKER`, else the embedded broker's documented address."""
    return settings.broker or f"{EMBEDDED_HOST}:{settings.embedded_port}"


@contextlib.contextmanager
def broker_for(settings: Settings) -> Iterator[str]:
    """Yield a bootstrap address; start the embedded broker when none is configured or running."""
    if settings.broker:
        yield settings.broker
        return
    port = settings.embedded_port
    if _accepts(EMBEDDED_HOST, port):
        log.info("using the broker already listening on %s:%s", EMBEDDED_HOST, port)
        yield f"{EMBEDDED_HOST}:{port}"
        return
    with EmbeddedBroker(EMBEDDED_HOST, port) as broker:
        log.info("started the embedded broker on %s (memory-only)", broker.bootstrap)
        yield broker.bootstrap


def prepare_topics(settings: Settings, bootstrap: str) -> None:
    asyncio.run(ensure_topics(bootstrap, topic_specs(settings)))


def run_worker(settings: Settings, bootstrap: str) -> int:
    """Declare topics, build the app and run it until stopped; returns the exit code."""
    import faust

    from sla_stream.stream.app import create_app

    prepare_topics(settings, bootstrap)
    asyncio.set_event_loop(asyncio.new_event_loop())
    sla = create_app(settings, bootstrap)
    worker = faust.Worker(sla.faust, loglevel=settings.log_level.upper(), quiet=True)
    # Faust's terminal spinner, at WARNING and above, sets the root logger to DEBUG and adds a
    # handler: every debug call in Faust and aiokafka then built and dispatched a LogRecord
    # (2.5-4 % of a busy worker's samples). Our output is a log, not a terminal; no spinner.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0
