"""Plain Kafka clients for the command line: publish events, follow a topic, format messages."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO, Any

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sla_stream.core.errors import InvalidEvent
from sla_stream.core.event_codec import decode_event
from sla_stream.core.models import IncidentEvent


def read_event_file(
    lines: IO[bytes] | Iterable[bytes],
) -> tuple[list[IncidentEvent], list[tuple[int, str]]]:
    """Parse JSON lines; returns the events and (line number, message) for each bad line."""
    events: list[IncidentEvent] = []
    errors: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(decode_event(line))
        except InvalidEvent as exc:
            errors.append((number, str(exc)))
    return events, errors


async def publish_events(bootstrap: str, topic: str, events: list[IncidentEvent]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        with click.progressbar(
            events, label="sending", file=click.get_text_stream("stderr")
        ) as bar:
            futures = [
                await producer.send(topic, e.to_json(), key=e.incident_id.encode()) for e in bar
            ]
        for f in futures:
            await f
    finally:
        await producer.stop()
    return len(events)


async def follow(
    bootstrap: str, topic: str, show: Callable[[bytes], None], from_beginning: bool = True
) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async for record in consumer:
            show(record.value)
    finally:
        await consumer.stop()


def format_message(what: str, m: dict[str, Any]) -> str:
    """One human-readable line per message."""
    if what == "alerts":
        threshold = f" {m['threshold']:.0%}" if m.get("threshold") is not None else ""
        extra = f" retracts {m['retracts']}" if m.get("retracts") else ""
        if m.get("kind") in ("target_missed", "target_headroom"):
            return _level_line(m, threshold)
        if m.get("kind") == "at_risk":
            why = "; ".join(m.get("reasons") or ())
            extra += f" p={m.get('probability', 0):.2f} ({why}) model {m.get('model_version')}"
        return (
            f"{m['emitted_at']}  {m['kind'].upper():9}{threshold:5} {m['incident_id']} "
            f"{m['metric']} {m['severity']} "
            f"elapsed {m['elapsed_s']:.0f}s of {m['allowance_s']:.0f}s"
            f"  [{m['contract_id']} clause {m['clause_id']}: {m['clause_title']}]{extra}"
        )
    if what == "outcomes":
        verdict = "withdrawn" if m.get("withdraws") else ("MET" if m["met"] else "BREACHED")
        return (
            f"{m['settled_at']}  {verdict:9} {m['incident_id']} {m['metric']} {m['severity']} "
            f"{m['elapsed_s']:.0f}s of {m['allowance_s']:.0f}s  [{m['contract_id']}]"
        )
    where = f"{m.get('topic')}[{m.get('partition')}]@{m.get('offset')}"
    return f"{m.get('reason')}: {m.get('detail', '')}  ({where})"


def _level_line(m: dict[str, Any], threshold: str) -> str:
    """A service-level alert: the contract's level and period, its figure, what is left."""
    n, d = m.get("numerator") or 0, m.get("denominator") or 0
    figure = f"{100 * n / d:.2f} % ({n}/{d})" if d else f"n/a ({n}/{d})"
    if m["kind"] == "target_missed":
        credit = m.get("credit_percent")
        tail = "missed" + (f", credit {credit:g} % of the fee" if credit is not None else "")
    else:
        more = (m.get("headroom") or 0) + 1
        tail = f"{more} more breach{'es' if more != 1 else ''} and the target is missed"
    return (
        f"{m['emitted_at']}  {m['kind'].upper():15}{threshold:5} {m['contract_id']} "
        f"{m.get('service_level')} {m.get('period')}: {figure}, {tail}"
        f"  [{m['contract_id']} clause {m['clause_id']}: {m['clause_title']}]"
    )
