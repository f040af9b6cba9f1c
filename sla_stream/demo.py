"""`make run`: embedded broker, sample contracts, a worker and a live demo feed, in one command.

The feed plays incidents on the `demo` contract in real time (windows of tens of seconds), so
warnings and breaches appear within a minute. Ctrl-C (or SIGTERM, SIGHUP) stops everything this
command started. Incident and event ids carry a run id, so a second run's feed is its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson
from aiokafka import AIOKafkaProducer

from sla_stream.core.contracts import load_contracts
from sla_stream.core.models import IncidentEvent
from sla_stream.processes import die_with_parent, stop_on_signals
from sla_stream.settings import Settings
from sla_stream.stream.admin import ensure_topics
from sla_stream.stream.client import follow, format_message
from sla_stream.stream.contracts_topic import contracts_topic, publish_contracts
from sla_stream.stream.topics import topic_specs

DEMO_CONTRACT = "demo"


def run_id() -> str:
    """A short id of its own for each run, in every incident id: a second `make run` on the same
    broker or data directory opens new incidents instead of replaying old ids as duplicates."""
    return uuid.uuid4().hex[:6]


async def play_feed(
    bootstrap: str, topic: str, run: str, seed: int = 7, every_s: float = 4.0
) -> None:
    """Open an incident every few seconds and play its life out in real time."""
    rng = random.Random(seed)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    tasks: set[asyncio.Task[None]] = set()
    try:
        for number in range(1, 1_000_000):
            incident = f"DEMO-{run}-{number:04d}"
            task = asyncio.create_task(_incident(producer, topic, incident, rng))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(rng.expovariate(1 / every_s))
    finally:
        for task in tasks:
            task.cancel()
        await producer.stop()


def _plan(rng: random.Random) -> list[tuple[float, str, dict[str, Any]]]:
    """One incident's life: (seconds after opening, event type, fields), in time order."""
    severity = rng.choices(["P1", "P2", "P3"], weights=[2, 3, 3])[0]
    where = {
        "category": rng.choice(["network", "database", "access", "email"]),
        "team": rng.choice(["service-desk", "infra"]),
    }
    steps: list[tuple[float, str, dict[str, Any]]] = [(0, "opened", {"severity": severity})]
    respond_at = rng.lognormvariate(3.2, 0.6)  # median ~25 s against 30-60 s windows
    steps.append((respond_at, "responded", {}))
    t = respond_at
    if rng.random() < 0.3:
        steps.append((t + 3, "status_changed", {"status": "pending_customer"}))
        t += 3 + rng.uniform(5, 20)
        steps.append((t, "status_changed", {"status": "active"}))
    if rng.random() < 0.15:
        steps.append((t + 2, "severity_changed", {"severity": "P1"}))
    steps.append((t + rng.lognormvariate(3.6, 0.5), "resolved", {}))
    return [(at, kind, {**where, **extra}) for at, kind, extra in sorted(steps, key=lambda s: s[0])]


def _event(incident: str, n: int, kind: str, at: datetime, extra: dict[str, Any]) -> dict:
    return {
        "event_id": f"{incident}-{n}",
        "incident_id": incident,
        "type": kind,
        "occurred_at": at.isoformat(),
        "contract_id": DEMO_CONTRACT,
        "source": "demo",
        **extra,
    }


async def _incident(
    producer: AIOKafkaProducer, topic: str, incident: str, rng: random.Random
) -> None:
    started = asyncio.get_running_loop().time()
    for n, (offset, kind, extra) in enumerate(_plan(rng)):
        delay = started + offset - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
        event = _event(incident, n, kind, datetime.now(UTC), extra)
        await producer.send(topic, orjson.dumps(event), key=incident.encode())


def demo_history(count: int, seed: int, every_s: float = 4.0) -> list[IncidentEvent]:
    """The feed's incidents, played in simulated time instead of waited for: a history the
    forecast can be trained on in seconds."""
    rng = random.Random(seed)
    opened_at = datetime(2026, 1, 5, 8, tzinfo=UTC)
    events = []
    for number in range(1, count + 1):
        opened_at += timedelta(seconds=rng.expovariate(1 / every_s))
        for n, (offset, kind, extra) in enumerate(_plan(rng)):
            at = opened_at + timedelta(seconds=offset)
            events.append(IncidentEvent(**_event(f"HIST-{number:05d}", n, kind, at, extra)))
    return events


# Decision points of the demo's history: its windows are seconds, not the log's hours.
DEMO_POINTS = {"first_event": None, **{f"{s}s": s / 3600 for s in (10, 20, 30, 45, 60, 90, 120)}}


def train_demo_model(contracts_file: Path, out: Path, count: int = 800) -> str:
    """Train the breach forecast on a generated history of the demo feed; its version."""
    import numpy as np

    from sla_stream.analytics.forecast import train
    from sla_stream.analytics.forecast_data import group_incidents, rows_and_verdicts

    contracts = load_contracts(contracts_file)
    incidents = group_incidents(demo_history(count, seed=99))
    rows, verdicts = rows_and_verdicts(incidents, contracts, DEMO_POINTS)
    rows = [r for r in rows if r.incident_id in verdicts]
    labels = np.array([verdicts[r.incident_id] for r in rows], dtype=bool)
    opened = np.array([r.opened_at.timestamp() for r in rows])
    model = train([r.features for r in rows], labels, opened >= np.quantile(opened, 0.8))
    model.save(out)
    return f"{model.version} on {len(verdicts)} incidents ({labels.mean():.0%} of rows breached)"


def _start_worker(
    settings: Settings, bootstrap: str, model: Path | None
) -> subprocess.Popen[bytes]:
    forecast = {"SLA_FORECAST_MODEL": str(model), "SLA_FORECAST_RESCORE_S": "3"} if model else {}
    env = {
        **os.environ,
        **forecast,
        "SLA_BROKER": bootstrap,
        "SLA_DATA_DIR": str(settings.data_dir),
        "SLA_RECOVERY_CONSISTENCY_CHECK": str(settings.consistency_check).lower(),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "sla_stream.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(settings.data_dir / "worker.log").open("ab"),
        start_new_session=True,
        preexec_fn=die_with_parent(signal.SIGTERM),  # a killed demo leaves no worker behind
    )


async def _run(settings: Settings, bootstrap: str, contracts_file: Path) -> None:
    await ensure_topics(bootstrap, topic_specs(settings))
    records = load_contracts(contracts_file)
    await publish_contracts(bootstrap, contracts_topic(settings), records)
    click.echo(f"applied {len(records)} contracts from {contracts_file}")
    run = run_id()
    click.echo(f"demo feed: incidents DEMO-{run}-0001 onwards")
    feed = asyncio.create_task(play_feed(bootstrap, settings.topic("incident-events"), run))

    def show(value: bytes) -> None:
        click.echo(format_message("alerts", orjson.loads(value)))

    try:
        await follow(bootstrap, settings.topic("alerts"), show, from_beginning=False)
    finally:
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed


def run_demo(contracts_file: Path) -> None:
    from sla_stream.stream.worker import broker_for

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stop_on_signals()  # SIGTERM and SIGHUP stop everything, as Ctrl-C does
    model: Path | None = settings.data_dir / "forecast-model.json"
    started = time.monotonic()
    try:
        about = train_demo_model(contracts_file, model)  # type: ignore[arg-type]
        click.echo(f"forecast model {about}, trained in {time.monotonic() - started:.1f} s")
    except Exception as exc:  # the demo runs without a forecast rather than not at all
        click.echo(f"forecast model not trained ({exc}); running without at_risk alerts")
        model = None
    with broker_for(settings) as bootstrap:
        worker = _start_worker(settings, bootstrap, model)
        base = f"http://{settings.web_host}:{settings.web_port}"
        click.echo(f"broker {bootstrap}; worker log {settings.data_dir / 'worker.log'}")
        click.echo(f"dashboard {base}/   metrics {base}/metrics   Ctrl-C stops everything")
        try:
            asyncio.run(_run(settings, bootstrap, contracts_file))
        except KeyboardInterrupt:
            click.echo("stopping")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
