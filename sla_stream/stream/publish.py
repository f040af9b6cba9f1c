"""Publish the engine's effects and dead letters; remember what was sent for the outbox."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sla_stream.core.models import Alert, DeadLetter, Outcome
from sla_stream.stream.metrics import Metrics
from sla_stream.stream.state import Pending

LATENESS_KINDS = frozenset({"warning", "breach"})


class Publisher:
    """Sends to the alerts, outcomes and dead-letter topics (Faust topics, raw bytes)."""

    def __init__(self, topics: dict[str, Any], metrics: Metrics) -> None:
        self.topics = topics  # role -> faust Topic: "alerts", "outcomes", "dead-letter"
        self.metrics = metrics

    async def effects(self, alerts: Iterable[Alert], outcomes: Iterable[Outcome]) -> list[Pending]:
        sent: list[Pending] = []
        now_wall = time.time()
        for alert in alerts:
            value = alert.to_json()
            await self.topics["alerts"].send(key=alert.incident_id.encode(), value=value)
            self.metrics.alerts.labels(alert.kind, alert.metric, alert.severity).inc()
            if alert.kind in LATENESS_KINDS:
                self.metrics.lateness.observe(max(0.0, now_wall - alert.emitted_at.timestamp()))
            sent.append(Pending("alerts", alert.incident_id, value, now_wall))
        for outcome in outcomes:
            value = outcome.to_json()
            await self.topics["outcomes"].send(key=outcome.contract_id.encode(), value=value)
            result = "withdrawn" if outcome.withdraws else ("met" if outcome.met else "breached")
            self.metrics.outcomes.labels(outcome.metric, outcome.severity, result).inc()
            sent.append(Pending("outcomes", outcome.contract_id, value, now_wall))
        return sent

    async def resend(self, pending: Iterable[Pending]) -> int:
        count = 0
        for p in pending:
            await self.topics[p.role].send(key=p.key.encode(), value=p.value)
            count += 1
        return count

    async def dead_letter(self, raw: bytes, key: bytes | None, letter: DeadLetter) -> None:
        await self.topics["dead-letter"].send(key=key, value=letter.to_json())
        self.metrics.dead_letters.labels(letter.reason).inc()
        self.metrics.rejected.labels(letter.reason).inc()
