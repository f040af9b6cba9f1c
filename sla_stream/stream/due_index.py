"""The due index: per partition, the incidents due at each instant, kept in memory.

The due index and the expiry index hold one entry per open (or expiring) incident of the
worker's partitions: 10M incidents as Python tuples of (float, str) took about 1.5 GB and a
one-by-one build. A `Schedule` keeps the bulk as two compact sorted numpy arrays (instants and
fixed-width ids, about 8 + id-length bytes an entry), built in one sort or loaded from a
snapshot as they are, and a small heap of tuples for what is pushed since. Taking entries is a
binary search in the arrays plus pops of the heap; entries are never updated in place: a stale
one (the incident's due instant moved) is taken, checked against the record and dropped.
"""

from __future__ import annotations

import heapq
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

# Ids longer than this (or ending in NUL, which numpy's fixed-width bytes would strip) stay in
# the heap: one long id must not widen every entry of the arrays.
MAX_ARRAY_ID_BYTES = 64
# The heap is merged into the arrays once it holds this many entries and as many as the arrays
# still do: tuples cost about 150 B an entry, the arrays 8 + id length, and a merge costs a sort
# of both, so merging only when the heap has doubled the whole keeps that cost a constant per
# push (at 10M open incidents, a sort of about a second after some 10M pushes).
COMPACT_AT = 1_000_000


def _fits(key: bytes) -> bool:
    return len(key) <= MAX_ARRAY_ID_BYTES and not key.endswith(b"\0")


def _all_fit(keys: list[bytes]) -> bool:
    """`_fits` for every key, without a Python step per key (a rebuild has millions)."""
    if max(map(len, keys)) > MAX_ARRAY_ID_BYTES:
        return False
    joined = b"\x01".join(keys)  # a NUL before a separator, or at the end, ends a key
    return not joined.endswith(b"\0") and b"\0\x01" not in joined


class Schedule:
    """Sorted arrays (`at`, `ids`, read from `start` on) plus a heap of (instant, id) tuples."""

    __slots__ = ("at", "compact_at", "heap", "ids", "start")

    def __init__(self, at: np.ndarray | None = None, ids: np.ndarray | None = None) -> None:
        self.at: np.ndarray = np.empty(0, dtype=np.float64) if at is None else at
        self.ids: np.ndarray = np.empty(0, dtype="S1") if ids is None else ids
        if len(self.at) != len(self.ids):
            raise ValueError(f"{len(self.at)} instants for {len(self.ids)} ids")
        self.start = 0  # entries before it were taken
        self.heap: list[tuple[float, str]] = []
        self.compact_at = COMPACT_AT

    @classmethod
    def of(cls, at: array[float], keys: list[bytes]) -> Schedule:
        """Build from unsorted instants (epoch seconds) and UTF-8 incident ids, in one sort."""
        if len(at) != len(keys):
            raise ValueError(f"{len(at)} instants for {len(keys)} ids")
        instants = np.frombuffer(at, dtype=np.float64) if len(at) else np.empty(0)
        if keys and not _all_fit(keys):  # rare: some stay tuples
            fits = [_fits(k) for k in keys]
            rest = [(t, k.decode()) for t, k, ok in zip(at, keys, fits, strict=True) if not ok]
            keys = [k for k, ok in zip(keys, fits, strict=True) if ok]
            instants = instants[np.array(fits, dtype=bool)]
        else:
            rest = []
        order = np.argsort(instants, kind="stable")
        ids = np.array(keys, dtype=f"S{max(1, max(map(len, keys), default=1))}")
        schedule = cls(instants[order], ids[order])
        heapq.heapify(rest)
        schedule.heap = rest
        return schedule

    def __len__(self) -> int:
        return len(self.at) - self.start + len(self.heap)

    def push(self, at: float, incident_id: str) -> None:
        heapq.heappush(self.heap, (at, incident_id))

    def take(self, until: float, limit: int | None = None) -> list[tuple[float, str]]:
        """The entries at or before `until` (epoch seconds), removed: each id once, at its
        earliest instant; at most `limit` ids."""
        if len(self.heap) >= max(self.compact_at, len(self.at) - self.start):
            self.compact()
        found: dict[str, float] = {}
        end = int(np.searchsorted(self.at, until, side="right"))
        if limit is not None:
            end = min(end, self.start + limit)
        if end > self.start:
            ids = self.ids[self.start : end].tolist()
            for at, key in zip(self.at[self.start : end].tolist(), ids, strict=True):
                found.setdefault(key.decode(), at)
            self.start = end
        heap = self.heap
        while heap and heap[0][0] <= until and (limit is None or len(found) < limit):
            at, incident_id = heapq.heappop(heap)
            found[incident_id] = min(at, found.get(incident_id, at))
        return [(at, incident_id) for incident_id, at in found.items()]

    def compact(self) -> None:
        """Merge the heap into the arrays (and drop what was taken from them)."""
        self.at, self.ids, rest = self.arrays()
        self.start = 0
        heapq.heapify(rest)
        self.heap = rest

    def arrays(self) -> tuple[np.ndarray, np.ndarray, list[tuple[float, str]]]:
        """Every entry not taken: sorted instants and ids, and the entries that stay tuples."""
        at, ids = self.at[self.start :], self.ids[self.start :]
        pushed = [(t, i.encode()) for t, i in self.heap]
        rest = [(t, k.decode()) for t, k in pushed if not _fits(k)]
        fitting = [(t, k) for t, k in pushed if _fits(k)]
        if not fitting:
            return at, ids, rest
        # Sort the pushed entries alone and insert them: no sort of the (large) arrays.
        more_at = np.array([t for t, _ in fitting], dtype=np.float64)
        order = np.argsort(more_at, kind="stable")
        more_ids = np.array([k for _, k in fitting])[order]
        width = max(ids.dtype.itemsize, more_ids.dtype.itemsize)
        where = np.searchsorted(at, more_at[order], side="right")
        return (
            np.insert(at, where, more_at[order]),
            np.insert(ids.astype(f"S{width}", copy=False), where, more_ids.astype(f"S{width}")),
            rest,
        )

    def entries(self) -> list[tuple[float, str]]:
        """Every entry not taken, as tuples (for tests and small partitions)."""
        at, ids, rest = self.arrays()
        pairs = zip(at.tolist(), (i.decode() for i in ids.tolist()), strict=True)
        return sorted([*pairs, *rest])


@dataclass
class DueIndex:
    """Per-partition schedules of (due instant, incident id); stale entries are skipped lazily.

    `expiries` holds, the same way, the instants at which finished incidents may be deleted.
    `taken` remembers what the partition's current tick took from them (a tick starts with
    `pop_due`): a stop in the middle of a tick leaves some of it unhandled, and an index saved
    then must still hold it (`with_taken`)."""

    due: dict[int, Schedule] = field(default_factory=lambda: defaultdict(Schedule))
    expiries: dict[int, Schedule] = field(default_factory=lambda: defaultdict(Schedule))
    parked: dict[int, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )
    taken: dict[int, Taken] = field(default_factory=dict)

    def schedule(self, partition: int, incident_id: str, due_at: datetime | None) -> None:
        if due_at is not None:
            self.due[partition].push(due_at.timestamp(), incident_id)

    def pop_due(self, partition: int, now: datetime) -> list[str]:
        """Incident ids with an entry due at or before `now` (each once); starts a tick."""
        self.taken[partition] = taken = Taken()
        entries = self.due[partition].take(now.timestamp()) if partition in self.due else []
        taken.due.extend(entries)
        return [incident_id for _, incident_id in entries]

    def schedule_expiry(self, partition: int, incident_id: str, at: datetime | None) -> None:
        if at is not None:
            self.expiries[partition].push(at.timestamp(), incident_id)

    def pop_expired(self, partition: int, now: datetime, limit: int) -> list[str]:
        """At most `limit` incident ids whose expiry is at or before `now`; the rest stay."""
        schedule = self.expiries.get(partition)
        entries = [] if schedule is None else schedule.take(now.timestamp(), limit)
        self.taken.setdefault(partition, Taken()).expiries.extend(entries)
        return [incident_id for _, incident_id in entries]

    def park(self, partition: int, contract_id: str, incident_id: str) -> None:
        self.parked[partition][contract_id].add(incident_id)

    def unpark(self, partition: int, contract_id: str) -> set[str]:
        ids = self.parked[partition].pop(contract_id, set())
        if ids:
            self.taken.setdefault(partition, Taken()).parked.append((contract_id, set(ids)))
        return ids

    def parked_contracts(self, partition: int) -> list[str]:
        return list(self.parked.get(partition, {}))

    def parked_count(self) -> int:
        return sum(len(ids) for p in self.parked.values() for ids in p.values())

    def drop_partitions(self, keep: set[int]) -> None:
        for index in (self.due, self.parked, self.expiries, self.taken):
            for p in [p for p in index if p not in keep]:
                del index[p]

    def with_taken(self, partition: int) -> tuple[Schedule, Schedule, dict[str, set[str]]]:
        """The partition's due and expiry schedules and parked sets, what its last tick took
        put back (again where the tick had handled it: a stale entry is checked and skipped)."""
        due, expiries = self.due[partition], self.expiries[partition]
        parked = {c: set(ids) for c, ids in self.parked.get(partition, {}).items()}
        taken = self.taken.pop(partition, Taken())
        for schedule, entries in ((due, taken.due), (expiries, taken.expiries)):
            for at, incident_id in entries:
                schedule.push(at, incident_id)
        for contract_id, ids in taken.parked:
            parked.setdefault(contract_id, set()).update(ids)
        return due, expiries, parked


@dataclass
class Taken:
    """What one tick of a partition took from its indexes."""

    due: list[tuple[float, str]] = field(default_factory=list)
    expiries: list[tuple[float, str]] = field(default_factory=list)
    parked: list[tuple[str, set[str]]] = field(default_factory=list)  # (contract id, ids)
