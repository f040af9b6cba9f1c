"""Publish the engine's effects and dead letters; remember what was sent for the outbox.

Effects wait for their state: a step's alerts and outcomes are handed to the producer only when
the changelog record of the incident record that lists them in its outbox is acknowledged. So
whatever a worker has published, the changelog already holds the state that produced it, and a
restore anywhere (after a wipe, on another worker) resumes from a state consistent with every
published id: an outcome id is never derived a second time from an older state, which could give
it other content. Effects whose changelog record never made it are re-derived from the redelivered
event after the restore (`checkpoint.py`).

Acknowledgements are tracked per partition as a watermark: every effect written at or before it
(wall-clock seconds, `Pending.written_at`) has been acknowledged by the broker. The ticker stores
it in the table (`IncidentStore.mark`), and a restart re-sends only outbox entries after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError

from sla_stream.core.models import Alert, DeadLetter, Outcome
from sla_stream.stream.metrics import Metrics
from sla_stream.stream.outbox import Pending

LATENESS_KINDS = frozenset({"warning", "breach"})
# A dead letter is delivered or logged as lost: tries, the first backoff (doubled each time)
# and how long one try waits for the broker's acknowledgement.
DEAD_LETTER_ATTEMPTS = 5
DEAD_LETTER_BACKOFF_S = 0.2
DEAD_LETTER_ACK_TIMEOUT_S = 10.0
# A letter is keyed by its original's key, cut to this length (Kafka keys are rarely longer).
MAX_KEY_BYTES = 1024

log = logging.getLogger(__name__)


class _Step:
    """The effects of one step of one partition, counted down as the broker acknowledges them."""

    __slots__ = ("remaining", "written_at")

    def __init__(self, written_at: float, remaining: int) -> None:
        self.written_at = written_at
        self.remaining = remaining


@dataclass
class Prepared:
    """A step's effects as outbox entries, with the metric labels each is counted under."""

    pending: list[Pending] = field(default_factory=list)
    labels: list[tuple[tuple[str, ...], float | None]] = field(default_factory=list)


class Publisher:
    """Sends to the alerts, outcomes and dead-letter topics (Faust topics, raw bytes)."""

    def __init__(
        self, topics: dict[str, Any], metrics: Metrics, wall: Callable[[], float] = time.time
    ) -> None:
        self.topics = topics  # role -> faust Topic: "alerts", "outcomes", "dead-letter"
        self.metrics = metrics
        self.wall = wall  # the wall clock, epoch seconds (injected by `build_stream`)
        self._inflight: dict[int, deque[_Step]] = {}
        self._acked: dict[int, float] = {}  # partition -> acknowledged-effects watermark

    def prepare(
        self,
        alerts: Iterable[Alert],
        outcomes: Iterable[Outcome],
        now_wall: float | None = None,
    ) -> Prepared:
        """The outbox entries of a step's effects, in publishing order; nothing is sent yet.
        `now_wall` is the instant they are written at (a batch shares one: see `publish_batch`).
        """
        now_wall = self.wall() if now_wall is None else now_wall
        prepared = Prepared()
        for a in alerts:
            prepared.pending.append(Pending("alerts", a.incident_id, a.to_json(), now_wall))
            late = a.emitted_at.timestamp() if a.kind in LATENESS_KINDS else None
            prepared.labels.append(((a.kind, a.metric, a.severity), late))
        for o in outcomes:
            prepared.pending.append(Pending("outcomes", o.contract_id, o.to_json(), now_wall))
            result = "withdrawn" if o.withdraws else ("met" if o.met else "breached")
            prepared.labels.append(((o.metric, o.severity, result), None))
        return prepared

    def publish_after(self, partition: int, changelog: Any, prepared: Prepared) -> None:
        """Send the prepared effects once `changelog` (the future of the record listing them) is
        acknowledged; never when it failed (the outbox and the redelivered event cover it). No
        changelog (an in-memory test table): nothing to wait for."""
        self.publish_batch(partition, [(changelog, prepared)])

    def publish_batch(self, partition: int, written: list[tuple[Any, Prepared]]) -> None:
        """Send the effects of one batch of `partition`, each incident's once the changelog
        record listing them (its future, first of each pair) is acknowledged.

        The batch's entries share one `written_at` (`prepare(now_wall=...)`) and count as one
        step of the acknowledged-effects watermark, which moves past them only once every one
        is acknowledged: an incident whose record failed keeps the watermark behind, and a
        restart re-sends its outbox.
        """
        written = [(fut, p) for fut, p in written if p.pending]
        if not written:
            return
        first = min(p.pending[0].written_at for _, p in written)
        step = _Step(first, sum(len(p.pending) for _, p in written))
        self._inflight.setdefault(partition, deque()).append(step)
        for changelog, prepared in written:
            if changelog is None:
                self._send(partition, step, prepared)
            else:
                changelog.add_done_callback(self._release(partition, step, prepared))

    def _release(self, partition: int, step: _Step, prepared: Prepared) -> Callable[[Any], None]:
        def release(fut: Any) -> None:
            if not fut.cancelled() and fut.exception() is None:
                self._send(partition, step, prepared)

        return release

    def publish_now(self, prepared: Prepared) -> None:
        """Send effects that no record lists (not in any outbox): nothing to wait for, and
        outside the watermark, which only speaks of outbox entries."""
        self._send(0, None, prepared)

    def _send(self, partition: int, step: _Step | None, prepared: Prepared) -> None:
        def acked(fut: Any) -> None:
            if step is None or fut.cancelled() or fut.exception() is not None:
                return  # the watermark stays behind: a restart re-sends from the outbox
            step.remaining -= 1
            self._advance(partition)

        now_wall = self.wall()
        for p, (labels, due) in zip(prepared.pending, prepared.labels, strict=True):
            self.topics[p.role].send_soon(key=p.key.encode(), value=p.value, callback=acked)
            if p.role == "alerts":
                self.metrics.alerts.labels(*labels).inc()
                if due is not None:
                    self.metrics.lateness.observe(max(0.0, now_wall - due))
            else:
                self.metrics.outcomes.labels(*labels).inc()

    def _advance(self, partition: int) -> None:
        steps = self._inflight.get(partition)  # gone when the partition was revoked meanwhile
        while steps and steps[0].remaining <= 0:
            self._acked[partition] = max(self._acked.get(partition, 0.0), steps[0].written_at)
            steps.popleft()

    def acked_watermark(self, partition: int) -> float | None:
        """Every effect of `partition` written at or before this instant was acknowledged."""
        return self._acked.get(partition)

    def forget(self, keep: set[int]) -> None:
        """Drop the tracking of partitions this worker no longer owns."""
        for index in (self._inflight, self._acked):
            for p in [p for p in index if p not in keep]:
                del index[p]

    async def resend(self, pending: Iterable[Pending]) -> int:
        count = 0
        for p in pending:
            await self.topics[p.role].send(key=p.key.encode(), value=p.value)
            count += 1
        self.metrics.effects_resent.inc(count)
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
