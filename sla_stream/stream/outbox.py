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


class OutboxHolders:
    """Per partition, the incidents whose record holds outbox entries a restart may re-send,
    with the latest entry's time: what a saved index names so that a start reads those records
    instead of all of them to find the entries `LastWrites` picks.

    Kept by every write, and trimmed whenever a partition's list doubles to the incidents whose
    latest entry is within `window_s` of the partition's latest: the others hold only entries
    `LastWrites` leaves out. Without a window (before the first index) nothing is trimmed.
    """

    def __init__(self) -> None:
        self.window_s: float | None = None
        self.by_partition: dict[int, dict[str, float]] = defaultdict(dict)
        self._trim_at: dict[int, int] = {}

    def wrote(self, partition: int, incident_id: str, outbox: tuple[Pending, ...]) -> None:
        """The record of `incident_id` was written with `outbox` (or deleted: empty)."""
        held = self.by_partition[partition]
        if not outbox:
            held.pop(incident_id, None)
            return
        held[incident_id] = max(p.written_at for p in outbox)
        if self.window_s is not None and len(held) > self._trim_at.get(partition, 1024):
            self.trim(partition)

    def held(self, partition: int, incident_id: str, latest: float) -> None:
        """A record read whole (a rebuild) holds entries up to `latest`."""
        self.by_partition[partition][incident_id] = latest
        if len(self.by_partition[partition]) > self._trim_at.get(partition, 1024):
            self.trim(partition)

    def trim(self, partition: int) -> None:
        held = self.by_partition[partition]
        if self.window_s is not None and held:
            cut = max(held.values()) - self.window_s
            self.by_partition[partition] = held = {i: w for i, w in held.items() if w >= cut}
        self._trim_at[partition] = max(1024, 2 * len(held))

    def reset(self, partition: int, held: dict[str, float] | None = None) -> None:
        self.by_partition[partition] = dict(held or {})
        self._trim_at.pop(partition, None)

    def drop_partitions(self, keep: set[int]) -> None:
        for p in [p for p in self.by_partition if p not in keep]:
            del self.by_partition[p]
