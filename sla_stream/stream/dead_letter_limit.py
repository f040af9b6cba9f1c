"""The dead-letter limit: too many dead letters pause the events topic until an operator resumes.

In the spirit of arroyo's `DlqLimit`: a misconfigured producer should page someone, not fill the
dead-letter topic. Past `SLA_DEAD_LETTER_MAX_RATIO` dead letters among the last
`SLA_DEAD_LETTER_WINDOW` messages of the events topic (once the window holds at least
`SLA_DEAD_LETTER_MIN_COUNT` of them), the worker stops fetching its partitions of the events
topic; ticks keep flowing, so clocks already running still warn and breach on time. It says so
at ERROR, in `sla_dead_letter_paused` and on `/healthz`, and resumes when told to
(`POST /api/v1/admin/resume-events`, `sla-stream resume-events`). Messages fetched before the
pause, or by the fetch in flight at the pause (Faust waits up to 1 s for records), are still
processed: they are never skipped, since skipping would commit them unread.

`DeadLetterWindow` is the pure count; `EventsGate` applies it to Faust's consumer.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from sla_stream.stream.metrics import Metrics

log = logging.getLogger(__name__)


class DeadLetterWindow:
    """The last `size` messages of the events topic, each dead-lettered or not."""

    def __init__(self, max_ratio: float, size: int, min_count: int) -> None:
        self.max_ratio = max_ratio
        self.size = size
        self.min_count = min_count
        self._outcomes: deque[bool] = deque(maxlen=size)
        self.dead = 0

    def record(self, dead: bool) -> bool:
        """Count one message; True when the window is now past the limit."""
        if len(self._outcomes) == self.size:
            self.dead -= self._outcomes[0]  # falls out of the window as the new one comes in
        self._outcomes.append(dead)
        self.dead += dead
        return self.exceeded

    @property
    def count(self) -> int:
        return len(self._outcomes)

    @property
    def ratio(self) -> float:
        return self.dead / len(self._outcomes) if self._outcomes else 0.0

    @property
    def exceeded(self) -> bool:
        return self.dead >= self.min_count and self.ratio > self.max_ratio

    def reset(self) -> None:
        self._outcomes.clear()
        self.dead = 0


class EventsGate:
    """Pauses this worker's partitions of the events topic while the limit holds.

    `consumer` returns Faust's consumer (created late, so it is looked up when needed).
    """

    def __init__(
        self,
        window: DeadLetterWindow,
        metrics: Metrics,
        events_topic: str,
        consumer: Callable[[], Any],
    ) -> None:
        self.window = window
        self.metrics = metrics
        self.events_topic = events_topic
        self.consumer = consumer
        self.paused = False
        self.paused_ratio: float | None = None

    def record(self, dead: bool) -> None:
        """Count one message of the events topic; pause when it takes the window past the limit."""
        exceeded = self.window.record(dead)
        self.metrics.dead_letter_ratio.set(self.window.ratio)
        if exceeded and not self.paused:
            self.pause()

    def pause(self) -> None:
        w = self.window
        self.paused, self.paused_ratio = True, w.ratio
        self.metrics.dead_letter_paused.set(1)
        log.error(
            "EVENTS PAUSED: %d of the last %d messages of %s were dead letters (ratio %.3f > "
            "SLA_DEAD_LETTER_MAX_RATIO %.3f); this worker stops consuming the topic until "
            "`POST /api/v1/admin/resume-events` (or `sla-stream resume-events`); ticks go on",
            w.dead, w.count, self.events_topic, w.ratio, w.max_ratio,
        )  # fmt: skip
        self.enforce()

    def enforce(self) -> None:
        """Keep the events partitions out of the fetch while paused (called on every tick).

        A rebalance, the end of a table recovery and a drained stream buffer each hand Faust's
        consumer its partitions back; checking on every tick takes them out again.
        """
        if self.paused:
            pause_fetching(self.consumer(), self._events_partitions())

    def resume(self) -> bool:
        """Resume the events topic and start a fresh window; False when it was not paused."""
        if not self.paused:
            return False
        self.paused, self.paused_ratio = False, None
        self.window.reset()
        self.metrics.dead_letter_paused.set(0)
        self.metrics.dead_letter_ratio.set(0)
        consumer = self.consumer()
        consumer.resume_partitions(self._events_partitions())
        log.warning("events resumed on %s; dead-letter window reset", self.events_topic)
        return True

    def status(self) -> dict[str, Any]:
        w = self.window
        return {
            "paused": self.paused,
            "paused_ratio": self.paused_ratio,
            "ratio": round(w.ratio, 4),
            "dead_letters": w.dead,
            "messages": w.count,
            "max_ratio": w.max_ratio,
            "window": w.size,
            "min_count": w.min_count,
        }

    def _events_partitions(self) -> set[Any]:
        return {tp for tp in self.consumer().assignment() if tp.topic == self.events_topic}


def pause_fetching(consumer: Any, tps: set[Any]) -> None:
    """Stop fetching `tps` without losing what was already fetched for them.

    Faust's `pause_partitions` removes them from the set of active partitions in place, while
    its fetch loop may be yielding a batch already taken from aiokafka and filtering it by that
    same set: the rest of the batch for those partitions would be skipped, read but never
    delivered, and lost until a restart. A new set leaves the batch in flight whole; the next
    fetch asks for the others only (aiokafka keeps what it buffered for the paused ones).
    """
    active = consumer._get_active_partitions()
    if not tps & active and tps <= consumer._paused_partitions:
        return
    consumer._paused_partitions.update(tps)
    consumer._active_partitions = set(active) - tps
