"""The outbox: the effects a step published, kept in the incident's record for a while, so a
worker that stopped before the broker acknowledged them re-sends them (same ids) after a
restart or a rebalance.

This module owns the entries (`Pending`), how long a record keeps them (`trim`), and which
of them a rebuild re-sends (`LastWrites`); `IncidentStore.rebuild` feeds it in its one pass over
the records and `Publisher.resend` sends what it picks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Pending:
    """One published effect remembered in the outbox: topic role, key and JSON value."""

    role: str  # "alerts" or "outcomes"
    key: str
    value: bytes
    written_at: float  # wall-clock seconds, only ever compared with another wall-clock reading

    def to_json(self) -> dict[str, Any]:
        return {
            "r": self.role,
            "k": self.key,
            "v": orjson.Fragment(self.value),
            "w": self.written_at,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Pending:
        return cls(d["r"], d["k"], orjson.dumps(d["v"]), d["w"])


def trim(outbox: tuple[Pending, ...], now_wall: float, window_s: float) -> tuple[Pending, ...]:
    """The entries a record keeps at its next write: those written within `window_s`."""
    return tuple(p for p in outbox if now_wall - p.written_at <= window_s)


class LastWrites:
    """The outbox entries of a partition written within `window_s` of its last write.

    Collected in the rebuild's one pass, in key order (unrelated to time): entries already
    older than the window before the latest write seen so far are dropped as they come, and the
    kept list is trimmed again whenever it doubles, so it stays near the true answer's size.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.latest: dict[int, float] = {}
        self.kept: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self._trim_at: dict[int, int] = {}

    def add(self, partition: int, entries: tuple[dict[str, Any], ...]) -> None:
        if not entries:
            return
        latest = max(self.latest.get(partition, float("-inf")), *(e["w"] for e in entries))
        self.latest[partition] = latest
        kept = self.kept[partition]
        kept.extend(e for e in entries if e["w"] >= latest - self.window_s)
        if len(kept) > self._trim_at.get(partition, 1024):
            kept[:] = [e for e in kept if e["w"] >= latest - self.window_s]
            self._trim_at[partition] = max(1024, 2 * len(kept))

    def entries(self, acked: dict[int, float | None] | None = None) -> list[Pending]:
        """Every partition's entries within the window of its last write and after its
        `acked` watermark (every entry written at or before it was acknowledged), oldest first."""
        out: list[Pending] = []
        for partition, kept in self.kept.items():
            cut = self.latest[partition] - self.window_s
            watermark = (acked or {}).get(partition)
            if watermark is not None:
                kept = [e for e in kept if e["w"] > watermark]
            fresh = sorted((e for e in kept if e["w"] >= cut), key=lambda e: e["w"])
            out.extend(Pending.from_json(e) for e in fresh)
        return out
