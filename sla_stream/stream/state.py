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

import logging
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from sla_stream.core.clock import OPEN_PHASES, Clock
from sla_stream.core.engine import IncidentState
from sla_stream.core.incident import FORMAT
from sla_stream.stream import index_snapshot
from sla_stream.stream.changelog_tap import ChangelogTap
from sla_stream.stream.checkpoint import ACKED_KEY, is_marker
from sla_stream.stream.due_index import DueIndex, Schedule
from sla_stream.stream.index_snapshot import PartitionIndex
from sla_stream.stream.local_state import OFFSET_KEY
from sla_stream.stream.outbox import LastWrites, OutboxHolders, Pending

__all__ = ["DueIndex", "LastWrites", "Pending"]  # the tests import them from here

log = logging.getLogger(__name__)

Slot = tuple[str, str]  # (metric, severity) of an open clock

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


# Decoded records `IncidentStore` keeps of its latest writes: about 9 kB each in memory for a
# generated incident of ~1.9 kB stored, so some 40 MB.
RECENT_RECORDS = 4096


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


class IncidentStore:
    """Reads and writes incident records; builds the indexes when partitions are assigned."""

    def __init__(
        self, table: Any, retention: timedelta | None = None, saved_dir: Path | None = None
    ) -> None:
        self.table = table
        self.retention = retention
        self.saved_dir = saved_dir  # the tables directory, where `index_snapshot` keeps files
        self.index = DueIndex()
        self.partitions: set[int] = set()
        # Open clocks per partition as of the last index build (the gauge's starting point).
        self.open_slots: dict[int, Counter[tuple[str, str]]] = {}
        self.loaded: set[int] = set()  # partitions whose last index came from a saved file
        self.holders = OutboxHolders()
        self.changelog = ChangelogTap(table)
        self.writes: Counter[int] = Counter()  # changelog records written, per partition
        self._marks: dict[int, tuple[int, float | None]] = {}  # at the last mark: writes, acked
        self._writes_at_tick: dict[int, int] = {}
        # The changelog offset of each partition's store before this run first wrote to it,
        # until the first index is built (None after: only that one may use saved files).
        self._offsets_before_writes: dict[int, int | None] | None = {}
        self.start_markers: dict[int, int] = {}  # see `note_start_markers`
        # The records this worker wrote last, decoded, oldest first: the next event of a busy
        # incident usually comes a few hundred events later, and decoding its record cost more
        # than the engine's step. Only this worker writes its active partitions' records, so an
        # entry is the stored record until the partitions are assigned again (`forget_recent`).
        self.recent: dict[str, IncidentRecord] = {}
        self.recent_max = RECENT_RECORDS

    def load(self, incident_id: str) -> IncidentRecord | None:
        record = self.recent.get(incident_id)
        if record is not None:
            return record
        raw = self.table.get(incident_id.encode())
        return None if raw is None else IncidentRecord.from_bytes(raw)

    def _remember(self, incident_id: str, record: IncidentRecord) -> None:
        recent = self.recent
        recent.pop(incident_id, None)  # re-inserted last: the newest write
        recent[incident_id] = record
        if len(recent) > self.recent_max:
            del recent[next(iter(recent))]

    def forget_recent(self) -> None:
        """Partitions were assigned: another worker may have written their records since."""
        self.recent.clear()

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

    def save(
        self, partition: int, incident_id: str, record: IncidentRecord, raw: bytes | None = None
    ) -> Any:
        """Write the record (`raw`, its bytes, when already encoded); returns the future of its
        changelog record (None without one)."""
        self._before_write(partition)
        self.changelog.take()
        # the one write of this step, or of this batch
        self.table[incident_id.encode()] = record.to_bytes() if raw is None else raw
        self._remember(incident_id, record)
        self.writes[partition] += 1
        written = self.changelog.take()
        self.holders.wrote(partition, incident_id, record.outbox)
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
        self._before_write(partition)
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

    def changelog_offset(self, partition: int) -> int | None:
        """The changelog offset the partition's store has applied (`index_snapshot`)."""
        store = self.table.data
        db = getattr(store, "_dbs", {}).get(partition)
        raw = None if db is None else db.get(getattr(store, "offset_key", OFFSET_KEY))
        return None if raw is None else int(raw)

    def _before_write(self, partition: int) -> None:
        before = self._offsets_before_writes
        if before is not None and partition not in before:
            before[partition] = self.changelog_offset(partition)

    def expires_at(self, state: IncidentState) -> datetime | None:
        return state_expires_at(state, self.retention)

    def delete(self, incident_id: str, partition: int | None = None) -> None:
        """Delete a record: a tombstone on the changelog, so a restore does not bring it back."""
        if partition is not None:
            self._before_write(partition)
        self.recent.pop(incident_id, None)
        del self.table[incident_id.encode()]
        if partition is not None:
            self.writes[partition] += 1
            self.holders.wrote(partition, incident_id, ())

    def items_by_partition(self) -> Iterator[tuple[int, str, bytes]]:
        for partition, records in self._stored(self.partitions):
            for key, value in records:
                yield partition, key.decode(), value

    def _stored(self, partitions: set[int]) -> Iterator[tuple[int, Iterator[tuple[bytes, bytes]]]]:
        """Each of `partitions`' stored records, as (partition, its (key, value) pairs).

        Faust keeps one RocksDB per partition; the public iterators hide which one a key is in,
        and the due index is per partition, so read the per-partition databases. The table's
        keys and values are raw bytes (no codec): they are read as stored, without Faust's
        per-item decoding calls (a fifth of a rebuild's time)."""
        store = self.table.data
        offset_key = getattr(store, "offset_key", None)
        for partition, db in list(getattr(store, "_dbs", {}).items()):
            if partition in partitions:
                yield (
                    partition,
                    ((k, v) for k, v in db.items() if k != offset_key and not is_marker(k)),
                )

    def build_index(self, partitions: set[int], outbox_window_s: float) -> list[Pending]:
        """Build the indexes and `open_slots` of `partitions`; return the outbox entries to
        re-send: within the window (see `LastWrites`) and after the partition's
        acknowledged-effects watermark.

        A partition's indexes come from the file an orderly stop saved (`index_snapshot`) when
        this is the run's first index and the file's changelog offset is the one the store had
        before this run wrote to it; what this run wrote since is added. Every other partition
        is read record by record, once.
        """
        saved = self._saved(partitions)
        before = self.index
        self.partitions = set(partitions)
        self.forget_recent()
        self.index = DueIndex()
        self.open_slots = {p: Counter() for p in self.partitions}
        self.holders.window_s = outbox_window_s
        self.holders.drop_partitions(self.partitions)
        last = LastWrites(outbox_window_s)
        for index in saved.values():
            self._load(index, before, last)
        self._rebuild(self.partitions - saved.keys(), last)
        self.loaded = set(saved)
        return last.entries({p: self.acked_watermark(p) for p in self.partitions})

    def note_start_markers(self, sealed: Mapping[str, Mapping[int, int]]) -> None:
        """Where this start's end markers went on the changelogs (`checkpoint.seal_changelogs`):
        a saved index stays good when the marker is the only record after it."""
        topic = self.table.changelog_topic.get_topic_name()
        self.start_markers = dict(sealed.get(topic, {}))

    def matches(self, partition: int, saved_at: int | None) -> bool:
        """Whether the partition's store holds what it held when its index was saved at
        changelog offset `saved_at`: it has applied nothing since, or only this start's end
        marker, written right after that offset (Kafka numbers a partition's records one by one,
        so a marker at `saved_at + 1` means no other record came between)."""
        before = self._offsets_before_writes or {}
        now = before[partition] if partition in before else self.changelog_offset(partition)
        if now == saved_at:
            return True
        marker = self.start_markers.get(partition)
        return marker is not None and now == marker == (-1 if saved_at is None else saved_at) + 1

    def _saved(self, partitions: set[int]) -> dict[int, PartitionIndex]:
        """The saved indexes of `partitions` that match their stores; the files are used once."""
        if self._offsets_before_writes is None or self.saved_dir is None:
            self._offsets_before_writes = None
            return {}
        found = {}
        opened = getattr(self.table.data, "_dbs", {})
        for p in sorted(partitions):
            index = index_snapshot.read(self.saved_dir, self.table.name, p) if p in opened else None
            if index is None:
                continue
            if not self.matches(p, index.offset):
                log.info(
                    "saved due index of partition %d ignored: saved at changelog offset %s, "
                    "the table has applied offset %s since",
                    *(p, index.offset, self.changelog_offset(p)),
                )
                continue
            found[p] = index
        self._offsets_before_writes = None  # only a run's first index may use saved files
        index_snapshot.discard(self.saved_dir)
        return found

    def _load(self, index: PartitionIndex, before: DueIndex, last: LastWrites) -> None:
        """Take a partition's saved indexes, add what this run wrote before, and read the
        records the saved index names as holding outbox entries."""
        p = index.partition
        for schedule, written in ((index.due, before.due), (index.expiries, before.expiries)):
            for at, incident_id in written[p].entries() if p in written else ():
                schedule.push(at, incident_id)
        self.index.due[p], self.index.expiries[p] = index.due, index.expiries
        for parked in (index.parked, before.parked.get(p, {})):
            for contract_id, ids in parked.items():
                for incident_id in ids:
                    self.index.park(p, contract_id, incident_id)
        self.open_slots[p] = Counter({(m, s): n for m, s, n in index.open_slots})
        self.holders.reset(p, {**index.recent, **self.holders.by_partition.get(p, {})})
        db = self.table.data._dbs[p]
        for incident_id in list(self.holders.by_partition[p]):
            raw = db.get(incident_id.encode())
            if raw is not None:
                last.add(p, RecordSummary.of(raw, self.retention).outbox)

    def _rebuild(self, partitions: set[int], last: LastWrites) -> None:
        """Build the indexes of `partitions` in one pass over their records."""
        for partition, records in self._stored(partitions):
            due_at, due_ids, expiry_at, expiry_ids = array("d"), [], array("d"), []
            slots = self.open_slots[partition]
            self.holders.reset(partition)
            for key, raw in records:
                record = RecordSummary.of(raw, self.retention)
                if record.parked and record.contract_id is not None:
                    self.index.park(partition, record.contract_id, key.decode())
                if record.next_due_at is not None:
                    due_at.append(record.next_due_at.timestamp())
                    due_ids.append(key)
                if record.expires_at is not None:
                    expiry_at.append(record.expires_at.timestamp())
                    expiry_ids.append(key)
                slots.update(record.open_slots)
                if record.outbox:
                    last.add(partition, record.outbox)
                    self.holders.held(partition, key.decode(), max(e["w"] for e in record.outbox))
            self.index.due[partition] = Schedule.of(due_at, due_ids)
            self.index.expiries[partition] = Schedule.of(expiry_at, expiry_ids)

    def partition_indexes(self, open_counts: Mapping[int, Counter[Slot]]) -> list[PartitionIndex]:
        """Each partition's indexes as an orderly stop saves them (`index_snapshot.save` stamps
        them), with what the last tick took put back; `open_counts` is the gauge's count."""
        out = []
        for p in sorted(self.partitions):
            due, expiries, parked = self.index.with_taken(p)
            counts = open_counts.get(p, Counter())
            out.append(
                PartitionIndex(
                    p,
                    None,
                    due,
                    expiries,
                    {c: sorted(ids) for c, ids in parked.items() if ids},
                    [(m, s, n) for (m, s), n in sorted(counts.items()) if n],
                    dict(self.holders.by_partition.get(p, {})),
                )
            )
        return out


def utc_from_wall(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
