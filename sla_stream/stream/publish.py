"""Publish the engine's effects and dead letters; remember what was sent for the outbox."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError

from sla_stream.core.models import Alert, DeadLetter, Outcome
from sla_stream.stream.metrics import Metrics
from sla_stream.stream.state import Pending

LATENESS_KINDS = frozenset({"warning", "breach"})
# A dead letter is delivered or logged as lost: tries, the first backoff (doubled each time)
# and how long one try waits for the broker's acknowledgement.
DEAD_LETTER_ATTEMPTS = 5
DEAD_LETTER_BACKOFF_S = 0.2
DEAD_LETTER_ACK_TIMEOUT_S = 10.0
# A letter is keyed by its original's key, cut to this length (Kafka keys are rarely longer).
MAX_KEY_BYTES = 1024

log = logging.getLogger(__name__)


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

    async def dead_letter(self, letter: DeadLetter, key: bytes | None) -> bool:
        """Send a letter and wait for the broker to acknowledge it; True once it did.

        A letter is never dropped quietly: one the producer finds too large is sent again with
        a smaller copy of the original (down to none), other failures are retried with backoff,
        and a letter that still could not be delivered is logged at ERROR with where its
        original lies on the events topic, and counted (`sla_dead_letter_failures`).
        """
        if key is not None and len(key) > MAX_KEY_BYTES:
            letter = letter.model_copy(
                update={
                    "detail": f"{letter.detail} (record key cut to {MAX_KEY_BYTES} of "
                    f"{len(key)} bytes)"
                }
            )
            key = key[:MAX_KEY_BYTES]
        failure: BaseException | None = None
        for attempt in range(DEAD_LETTER_ATTEMPTS):
            try:
                ack = await self.topics["dead-letter"].send(key=key, value=letter.to_json())
                await asyncio.wait_for(asyncio.shield(ack), DEAD_LETTER_ACK_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # too large, timed out, refused: try again, smaller if need be
                failure = exc
                log.warning(
                    "dead letter (%s, %s:%s) not delivered (attempt %d): %r",
                    letter.reason,
                    letter.partition,
                    letter.offset,
                    attempt + 1,
                    exc,
                )
                if isinstance(exc, MessageSizeTooLargeError):
                    letter = shrink(letter)
                else:
                    await asyncio.sleep(DEAD_LETTER_BACKOFF_S * 2**attempt)
                continue
            self.metrics.dead_letters.labels(letter.reason).inc()
            self.metrics.rejected.labels(letter.reason).inc()
            return True
        self.metrics.dead_letter_failures.inc()
        self.metrics.rejected.labels(letter.reason).inc()
        log.error(
            "DEAD LETTER LOST after %d attempts (%r): reason=%s field=%s detail=%.200s; its "
            "original (%s bytes) is still on %s, partition %s, offset %s",
            DEAD_LETTER_ATTEMPTS, failure, letter.reason, letter.field, letter.detail,
            letter.original_size, letter.topic, letter.partition, letter.offset,
        )  # fmt: skip
        return False


def shrink(letter: DeadLetter) -> DeadLetter:
    """The same letter with a copy of the original a quarter as long (none below 1 KiB)."""
    kept = len(letter.original())
    keep = kept // 4 if kept > 1024 else 0
    raw = letter.original()[:keep]
    smaller = DeadLetter.of(
        raw, topic=letter.topic, reason=letter.reason, detail=letter.detail,
        partition=letter.partition, offset=letter.offset, field=letter.field,
    )  # fmt: skip
    size = letter.original_size
    return smaller.model_copy(update={"original_size": size, "truncated": True})
