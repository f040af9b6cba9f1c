"""Incident records in the RocksDB-backed Faust table, and the in-memory due and parked indexes.

This is the only module that touches Faust tables. One table write per incident per step: the
record holds the engine state and a short outbox of the effects recent steps published.

Why an outbox: a step's effects are sent only after its record's changelog record is
acknowledged (`publish.py`), so a SIGKILL can leave a record whose effects never reached the
broker; the redelivered event is then a duplicate and would publish nothing. On partition
assignment the worker re-sends the outbox entries written within `outbox_window_s` of the
partition's last write and after its acknowledged-effects watermark (the `ACKED_KEY` record the
ticker writes), with the same ids, so notifiers drop repeats: at-least-once for effects, not
only for state. The window is measured back from that last write, not from the rebuild: a
restart that takes longer than the window (a slow group join, a restore, a crash-looping pod)
still re-sends what the crashed worker wrote last.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from sla_stream.core.clock import OPEN_PHASES, Clock
from sla_stream.core.engine import IncidentState
from sla_stream.core.incident import FORMAT
from sla_stream.stream.checkpoint import ACKED_KEY, is_marker
from sla_stream.stream.outbox import LastWrites, Pending

# Where the fields the indexes need sit in a stored clock (a NamedTuple stored as an array).
_METRIC, _SEVERITY, _PHASE = (Clock._fields.index(f) for f in ("metric", "severity", "phase"))


@dataclass(frozen=True)
class IncidentRecord:
    state: IncidentState
    outbox: tuple[Pending, ...] = ()

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "state": orjson.Fragment(self.state.to_bytes()),
                "outbox": [p.to_json() for p in self.outbox],
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> IncidentRecord:
        data = orjson.loads(raw)
        state = IncidentState.from_bytes(orjson.dumps(data["state"]))
        return cls(state, tuple(Pending.from_json(p) for p in data.get("outbox", ())))


def expires_at(
    final: str | None, opened: bool, last_event_at: datetime | None, retention: timedelta | None
) -> datetime | None:
    """When a stored incident may be deleted: `retention` after its last event, once nothing
    can change it any more (closed or cancelled), or when it never opened (events whose `opened`
    never came). None while it is open or parked, or when retention is off.

    Why delete at all: every incident ever seen would otherwise stay in RocksDB and in the
    changelog (with its events and ledger, about 1.5 kB), and a restore reads them all back.
    """
    if retention is None or last_event_at is None or (final is None and opened):
        return None
    return last_event_at + retention


def state_expires_at(state: IncidentState, retention: timedelta | None) -> datetime | None:
    last = state.events[-1].occurred_at if state.events else None
    return expires_at(state.final, state.opened_at is not None, last, retention)


class RecordSummary(NamedTuple):
    """What a rebuild needs of one stored record: its index entries, open clocks, outbox.

    A tuple rather than a frozen dataclass: a rebuild builds one per stored record, and the
    dataclass's `__init__` cost as much as parsing the record (6 of 18 µs per record).
    """

    parked: bool
    contract_id: str | None
    next_due_at: datetime | None
    open_slots: tuple[tuple[str, str], ...]  # (metric, severity) of each running or paused clock
    outbox: tuple[dict[str, Any], ...]  # entries as stored (`Pending.to_json`), not yet built
    expires_at: datetime | None = None  # see `expires_at`
    # What a listing decides from (web/open_incidents.py `shown_until`):
    evaluated: bool = False
    final: str | None = None
    phases: tuple[tuple[str, str], ...] = ()  # (metric, phase) of every clock
    last_event_at: datetime | None = None

    @classmethod
    def of(cls, raw: bytes, retention: timedelta | None = None) -> RecordSummary:
        """Read a record without building its engine state: the one reader of the stored
        format besides `IncidentRecord.from_bytes`.

        A rebuild reads every record of the assigned partitions (at 1M open incidents, building
        each state, twice, took minutes); the index needs a few fields. The stored state format
        is checked, and a record of any other format fails as `IncidentRecord.from_bytes` does.
        """
        data = orjson.loads(raw)
        state = data["state"]
        if state.get("v") != FORMAT:
            IncidentRecord.from_bytes(raw)  # raises its own error for an unknown format
            raise ValueError(f"not an incident record of format {FORMAT}")
        parked = state.get("parked", False)
        due = state.get("next_due_at")
        clocks = state.get("clocks", ())
        slots = () if parked else tuple(
            (c[_METRIC], c[_SEVERITY]) for c in clocks if c[_PHASE] in OPEN_PHASES
        )  # fmt: skip
        events = state.get("events")
        last = datetime.fromisoformat(events[-1][2]) if events else None  # events are sorted
        final = state.get("final")
        return cls(
            parked,
            state.get("contract_id"),
            None if due is None else datetime.fromisoformat(due),
            slots,
            tuple(data.get("outbox", ())),
            expires_at(final, "opened_at" in state, last, retention),
            bool(state.get("evaluated")),
            final,
            tuple((c[_METRIC], c[_PHASE]) for c in clocks),
            last,
        )


@dataclass
class DueIndex:
    """Per-partition heaps of (due instant, incident id); stale entries are skipped lazily.

    `expiries` holds, the same way, the instants at which finished incidents may be deleted."""

    heaps: dict[int, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    expiries: dict[int, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    parked: dict[int, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )

    def schedule(self, partition: int, incident_id: str, due_at: datetime | None) -> None:
        if due_at is not None:
            heapq.heappush(self.heaps[partition], (due_at.timestamp(), incident_id))

    def pop_due(self, partition: int, now: datetime) -> list[str]:
        """Incident ids with an entry due at or before `now` (each once)."""
        return _pop(self.heaps.get(partition), now.timestamp(), None)

    def schedule_expiry(self, partition: int, incident_id: str, at: datetime | None) -> None:
        if at is not None:
            heapq.heappush(self.expiries[partition], (at.timestamp(), incident_id))

    def pop_expired(self, partition: int, now: datetime, limit: int) -> list[str]:
        """At most `limit` incident ids whose expiry is at or before `now`; the rest stay."""
        return _pop(self.expiries.get(partition), now.timestamp(), limit)

    def park(self, partition: int, contract_id: str, incident_id: str) -> None:
        self.parked[partition][contract_id].add(incident_id)

    def unpark(self, partition: int, contract_id: str) -> set[str]:
        return self.parked[partition].pop(contract_id, set())

    def parked_contracts(self, partition: int) -> list[str]:
        return list(self.parked.get(partition, {}))

    def parked_count(self) -> int:
        return sum(len(ids) for p in self.parked.values() for ids in p.values())

    def drop_partitions(self, keep: set[int]) -> None:
        for index in (self.heaps, self.parked, self.expiries):
            for p in [p for p in index if p not in keep]:
                del index[p]


def _pop(heap: list[tuple[float, str]] | None, until: float, limit: int | None) -> list[str]:
    found: dict[str, None] = {}
    while heap and heap[0][0] <= until and (limit is None or len(found) < limit):
        found[heapq.heappop(heap)[1]] = None
    return list(found)


class ChangelogTap:
    """Keeps the future of the table's last changelog record: effects wait for it."""

    def __init__(self, table: Any) -> None:
        self.last: Any = None
        send = getattr(table, "send_changelog", None)
        if send is None:  # a plain mapping in unit tests: no changelog
            return

        def send_changelog(*args: Any, **kwargs: Any) -> Any:
            self.last = send(*args, **kwargs)
            return self.last

        table.send_changelog = send_changelog

    def take(self) -> Any:
        last, self.last = self.last, None
        return last


class IncidentStore:
    """Reads and writes incident records; rebuilds the indexes when partitions are assigned."""

    def __init__(self, table: Any, retention: timedelta | None = None) -> None:
        self.table = table
        self.retention = retention
        self.index = DueIndex()
        self.partitions: set[int] = set()
        # Open clocks per partition as of the last rebuild (the gauge's starting point).
        self.open_slots: dict[int, Counter[tuple[str, str]]] = {}
        self.changelog = ChangelogTap(table)
        self.writes: Counter[int] = Counter()  # changelog records written, per partition
        self._marks: dict[int, tuple[int, float | None]] = {}  # at the last mark: writes, acked
        self._writes_at_tick: dict[int, int] = {}

    def load(self, incident_id: str) -> IncidentRecord | None:
        raw = self.table.get(incident_id.encode())
        return None if raw is None else IncidentRecord.from_bytes(raw)

    def load_active(self, incident_id: str, partitions: set[int]) -> IncidentRecord | None:
        """The record of `incident_id` on one of `partitions` that this worker serves (a
        standby copy of another worker's partition may lag behind, so it is not read)."""
        store = self.table.data
        key = store._encode_key(incident_id.encode())
        for partition, db in list(getattr(store, "_dbs", {}).items()):
            if partition in self.partitions and partition in partitions:
                raw = db.get(key)
                if raw is not None:
                    return IncidentRecord.from_bytes(store._decode_value(raw))
        return None

    def save(self, partition: int, incident_id: str, record: IncidentRecord) -> Any:
        """Write the record; returns the future of its changelog record (None without one)."""
        self.changelog.take()
        self.table[incident_id.encode()] = record.to_bytes()  # the one write of this step
        self.writes[partition] += 1
        written = self.changelog.take()
        state = record.state
        if state.parked and state.contract_id is not None:
            self.index.park(partition, state.contract_id, incident_id)
        self.index.schedule(partition, incident_id, state.next_due_at)
        self.index.schedule_expiry(partition, incident_id, self.expires_at(state))
        return written

    def mark(self, partition: int, acked: float | None) -> bool:
        """On a tick: write the partition's `ACKED_KEY` record when its watermark moved, or when
        the partition went quiet since its last mark (nothing written during the last tick).

        The quiet-partition mark is sent after a tick interval without writes, so it travels
        alone: the changelog partition then ends with a one-record batch and the embedded
        broker's reported end offset is its true end (`checkpoint.py`). Runs inside iteration.
        """
        writes = self.writes[partition]
        marked_writes, marked_acked = self._marks.get(partition, (0, None))
        quiet = writes == self._writes_at_tick.get(partition) and writes != marked_writes
        moved = acked is not None and acked != marked_acked
        self._writes_at_tick[partition] = writes
        if not (quiet or moved):
            return False
        self.table[ACKED_KEY] = orjson.dumps({"acked": acked})
        self.writes[partition] += 1
        self._marks[partition] = (self.writes[partition], acked)
        self._writes_at_tick[partition] = self.writes[partition]
        return True

    def acked_watermark(self, partition: int) -> float | None:
        """The partition's stored acknowledged-effects watermark, if a mark was written."""
        db = getattr(self.table.data, "_dbs", {}).get(partition)
        raw = None if db is None else db.get(ACKED_KEY)
        return None if raw is None else orjson.loads(raw).get("acked")

    def expires_at(self, state: IncidentState) -> datetime | None:
        return state_expires_at(state, self.retention)

    def delete(self, incident_id: str, partition: int | None = None) -> None:
        """Delete a record: a tombstone on the changelog, so a restore does not bring it back."""
        del self.table[incident_id.encode()]
        if partition is not None:
            self.writes[partition] += 1

    def items_by_partition(self) -> Iterator[tuple[int, str, bytes]]:
        # Faust keeps one RocksDB per partition; the public iterators hide which one a key is
        # in, and the due index is per partition, so read the per-partition databases. The
        # table's keys and values are raw bytes (no codec): they are read as stored, without
        # Faust's per-item decoding calls (a fifth of a rebuild's time).
        store = self.table.data
        offset_key = getattr(store, "offset_key", None)
        for partition, db in list(getattr(store, "_dbs", {}).items()):
            if partition not in self.partitions:
                continue
            for key, value in db.items():
                if key == offset_key or is_marker(key):
                    continue
                yield partition, key.decode(), value

    def rebuild(self, partitions: set[int], outbox_window_s: float) -> list[Pending]:
        """Rebuild the indexes and `open_slots` for `partitions` in one pass over the records;
        return the outbox entries to re-send: within the window (see `LastWrites`) and after
        the partition's acknowledged-effects watermark."""
        self.partitions = set(partitions)
        self.index = DueIndex()
        self.open_slots = {p: Counter() for p in self.partitions}
        last = LastWrites(outbox_window_s)
        heaps, expiries = self.index.heaps, self.index.expiries
        for partition, incident_id, raw in self.items_by_partition():
            record = RecordSummary.of(raw, self.retention)
            if record.parked and record.contract_id is not None:
                self.index.park(partition, record.contract_id, incident_id)
            if record.next_due_at is not None:  # heapified below: one O(n) pass, not n pushes
                heaps[partition].append((record.next_due_at.timestamp(), incident_id))
            if record.expires_at is not None:
                expiries[partition].append((record.expires_at.timestamp(), incident_id))
            self.open_slots[partition].update(record.open_slots)
            last.add(partition, record.outbox)
        for heap in (*heaps.values(), *expiries.values()):
            heapq.heapify(heap)
        return last.entries({p: self.acked_watermark(p) for p in self.partitions})


def utc_from_wall(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
