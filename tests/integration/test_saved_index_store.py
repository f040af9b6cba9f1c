"""A saved due index, loaded, holds everything a rebuild from the same RocksDB files finds.

No broker here: Faust's table is reduced to what `IncidentStore` uses of it (one real RocksDB
per partition, and the changelog offset Faust keeps in each, moved by every write as an
acknowledged changelog record moves it). The runs are the worker's: build the index, take
events and ticks, stop in the middle of a tick, save; then start on the same files, write
before the first index, and load.
"""

from __future__ import annotations

import itertools
import zlib
from array import array
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from faust.stores.rocksdb import RocksDBOptions
from rocksdict import Rdict

from sla_stream.core import engine
from sla_stream.core.contracts import load_contracts
from sla_stream.core.models import IncidentEvent
from sla_stream.generate import DEFAULT_CONTRACTS, iter_events
from sla_stream.stream import index_snapshot
from sla_stream.stream.due_index import Schedule
from sla_stream.stream.index_snapshot import PartitionIndex
from sla_stream.stream.local_state import OFFSET_KEY
from sla_stream.stream.open_clocks import open_slots
from sla_stream.stream.outbox import Pending
from sla_stream.stream.state import IncidentRecord, IncidentStore, RecordSummary

PARTITIONS = 4
WINDOW_S = 30.0


def partition_of(key: bytes) -> int:
    return zlib.crc32(key) % PARTITIONS


class RocksTable:
    """Faust's RocksDB-backed table, reduced to what the store reads and writes."""

    name = "incidents"
    offset_key = OFFSET_KEY

    def __init__(self, tabledir: Path) -> None:
        tabledir.mkdir(parents=True, exist_ok=True)
        self.data = self
        self.partition = 0  # of the current event (Faust takes it from the event)
        self._dbs = {
            p: RocksDBOptions().open(tabledir / f"{self.name}-{p}.db") for p in range(PARTITIONS)
        }

    def get(self, key: bytes) -> bytes | None:
        return self._dbs[partition_of(key)].get(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        db = self._dbs[self.partition]
        db[key] = value
        self._acknowledged(db)

    def __delitem__(self, key: bytes) -> None:
        db = self._dbs[self.partition]
        del db[key]
        self._acknowledged(db)

    def _acknowledged(self, db: Rdict) -> None:
        offset = db.get(OFFSET_KEY)
        db[OFFSET_KEY] = str(0 if offset is None else int(offset) + 1).encode()

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()


class Run:
    """One worker run's store over the files in `tabledir`, and the incidents' engine steps."""

    def __init__(self, tabledir: Path, wall: itertools.count[int]) -> None:
        self.table = RocksTable(tabledir)
        self.store = IncidentStore(self.table, timedelta(days=1), tabledir)
        self.wall = wall
        self.contracts = load_contracts(DEFAULT_CONTRACTS)

    def write(self, incident_id: str, record: IncidentRecord) -> None:
        self.table.partition = partition_of(incident_id.encode())
        self.store.save(self.table.partition, incident_id, record)

    def apply(
        self, event: IncidentEvent
    ) -> tuple[engine.IncidentState | None, engine.IncidentState]:
        incident_id = event.incident_id
        record = self.store.load(incident_id)
        before = record.state if record else None
        contract_id = (before.contract_id if before else None) or event.contract_id
        known = int(incident_id.rsplit("-", 1)[1]) % 5 != 0  # every fifth: parked
        contract = self.contracts.get(contract_id) if known and contract_id else None
        step = engine.apply(before, event, contract)
        self._commit(incident_id, record, step)
        return before, step.state

    def tick(self, partition: int, now: datetime, handled: float) -> list[str]:
        """Advance the incidents due by `now`; the first `handled` share of them only."""
        due = self.store.index.pop_due(partition, now)
        for incident_id in due[: int(len(due) * handled)]:
            record = self.store.load(incident_id)
            if record is None or record.state.next_due_at is None:
                continue
            if record.state.next_due_at > now:  # as `IncidentSteps._fire_due`: a stale entry
                self.store.index.schedule(partition, incident_id, record.state.next_due_at)
                continue
            contract = self.contracts.get(record.state.contract_id or "")
            self.table.partition = partition
            self._commit(incident_id, record, engine.advance(record.state, now, contract))
        return due

    def _commit(self, incident_id: str, record: IncidentRecord | None, step: engine.Result) -> None:
        w = float(next(self.wall))
        kept = tuple(p for p in (record.outbox if record else ()) if w - p.written_at <= WINDOW_S)
        new = tuple(Pending("alerts", a.incident_id, a.to_json(), w) for a in step.alerts)
        self.write(incident_id, IncidentRecord(step.state, kept + new))

    def counts(self) -> dict[int, Counter[tuple[str, str]]]:
        """The open-clock gauge's counts, from every record."""
        out: dict[int, Counter[tuple[str, str]]] = {p: Counter() for p in range(PARTITIONS)}
        for p, db in self.table._dbs.items():
            for key, raw in db.items():
                if key != OFFSET_KEY and not key.startswith(b"\x1e\x1f"):
                    out[p].update(open_slots(IncidentRecord.from_bytes(raw).state))
        return out

    def stop(self) -> None:
        self.table.close()


def records(run: Run) -> dict[str, tuple[int, RecordSummary]]:
    out = {}
    for p, db in run.table._dbs.items():
        for key, raw in db.items():
            if key != OFFSET_KEY and not key.startswith(b"\x1e\x1f"):
                out[key.decode()] = (p, RecordSummary.of(raw, timedelta(days=1)))
    return out


def earliest(schedules: dict[int, Schedule]) -> dict[str, float]:
    found: dict[str, float] = {}
    for schedule in schedules.values():
        for at, incident_id in schedule.entries():
            found[incident_id] = min(at, found.get(incident_id, at))
    return found


@pytest.mark.parametrize("seed", [3, 11])
def test_a_loaded_index_holds_every_entry_a_rebuild_finds(tmp_path: Path, seed: int) -> None:
    tabledir = tmp_path / "tables"
    wall = itertools.count(1_000_000)
    events = list(itertools.islice(iter_events(300, seed), 1800))
    everyone = set(range(PARTITIONS))

    first = Run(tabledir, wall)
    first.store.build_index(everyone, WINDOW_S)
    for event in events[:1200]:
        first.apply(event)
    now = max(e.occurred_at for e in events[:1200])
    taken = [first.tick(p, now, handled=0.5) for p in sorted(everyone)]  # stopped mid-tick
    assert sum(map(len, taken)) > 10
    for incident_id in list(records(first))[:5]:  # a few finished and deleted
        first.table.partition = partition_of(incident_id.encode())
        first.store.delete(incident_id, first.table.partition)
    counts = first.counts()
    indexes = first.store.partition_indexes(counts)
    first.stop()
    index_snapshot.save(tabledir, "incidents", indexes)
    assert len(list((tabledir / "due-index").glob("*.npz"))) == PARTITIONS

    second = Run(tabledir, wall)
    changed = [second.apply(event) for event in events[1200:1300]]  # before the first index
    resend = second.store.build_index(everyone, WINDOW_S)
    assert second.store.loaded == everyone
    loaded = second.store
    loaded_due, loaded_expiries = earliest(loaded.index.due), earliest(loaded.index.expiries)
    held = records(second)
    second.stop()

    third = Run(tabledir, wall)  # the files were used once: this one rebuilds
    rebuilt_resend = third.store.build_index(everyone, WINDOW_S)
    assert third.store.loaded == set()
    rebuilt = third.store
    assert held == records(third)

    due = {i: r.next_due_at.timestamp() for i, (_, r) in held.items() if r.next_due_at}
    expiring = {i: r.expires_at.timestamp() for i, (_, r) in held.items() if r.expires_at}
    assert due and expiring
    assert earliest(rebuilt.index.due) == due
    assert earliest(rebuilt.index.expiries) == expiring
    # Loaded: an entry at or before every due instant (stale ones are checked and skipped).
    missing = {i: at for i, at in due.items() if loaded_due.get(i, float("inf")) > at}
    assert not missing, [(i, at, loaded_due.get(i), held[i]) for i, at in missing.items()][:3]
    assert all(loaded_expiries.get(i, float("inf")) <= at for i, at in expiring.items())
    parked = {(c, i) for p in rebuilt.index.parked.values() for c, ids in p.items() for i in ids}
    assert parked
    assert parked <= {
        (c, i) for p in loaded.index.parked.values() for c, ids in p.items() for i in ids
    }
    # The gauge: saved counts, plus this run's steps before the index (`ensure_index`).
    for before, after in changed:
        p = partition_of(after.incident_id.encode())
        loaded.open_slots[p].update(open_slots(after))
        loaded.open_slots[p].subtract(open_slots(before))
    assert {p: +c for p, c in loaded.open_slots.items()} == {
        p: +c for p, c in rebuilt.open_slots.items()
    }
    assert rebuilt_resend
    assert sorted(map(repr, resend)) == sorted(map(repr, rebuilt_resend))
    third.stop()


def test_a_partition_written_after_the_save_and_a_damaged_file_are_rebuilt(
    tmp_path: Path,
) -> None:
    tabledir = tmp_path / "tables"
    wall = itertools.count(1_000_000)
    events = list(itertools.islice(iter_events(120, 5), 600))
    everyone = set(range(PARTITIONS))
    first = Run(tabledir, wall)
    first.store.build_index(everyone, WINDOW_S)
    for event in events[:500]:
        first.apply(event)
    indexes = first.store.partition_indexes(first.counts())
    first.stop()
    index_snapshot.save(tabledir, "incidents", indexes)

    # Another worker served partition 1 meanwhile: its store applied a record from the changelog
    # (an incident opened there), so the offset moved past the file's stamp.
    template = next(e for e in events if e.type == "opened")
    n = next(n for n in itertools.count(1) if n % 5 and partition_of(b"LATE-%06d" % n) == 1)
    late = template.model_copy(update={"incident_id": f"LATE-{n:06d}", "event_id": f"L{n}"})
    other = Run(tabledir, wall)
    other.apply(late)
    other.stop()
    (tabledir / "due-index" / "incidents-2.npz").write_bytes(b"not an index")

    second = Run(tabledir, wall)
    second.store.build_index(everyone, WINDOW_S)
    assert second.store.loaded == {0, 3}
    due = {i: r.next_due_at.timestamp() for i, (_, r) in records(second).items() if r.next_due_at}
    found = earliest(second.store.index.due)
    assert late.incident_id in due
    assert all(found.get(i, float("inf")) <= at for i, at in due.items())
    second.stop()


def test_a_saved_file_reads_back_as_written_and_one_of_another_format_is_ignored(
    tmp_path: Path,
) -> None:
    due = Schedule.of(array("d", [3.0, 1.0, 2.0]), [b"INC-3", b"INC-1", b"x" * 100])
    due.push(0.5, "INC-0\0")
    expiries = Schedule.of(array("d", [9.0]), [b"INC-9"])
    index = PartitionIndex(
        2, 41, due, expiries, {"c1": ["INC-7"]}, [("resolution", "P1", 3)], {"INC-8": 12.5}
    )
    index_snapshot.write(tmp_path, "incidents", index)
    got = index_snapshot.read(tmp_path, "incidents", 2)
    assert got is not None
    assert (got.partition, got.offset, got.parked, got.open_slots, got.recent) == (
        2,
        41,
        {"c1": ["INC-7"]},
        [("resolution", "P1", 3)],
        {"INC-8": 12.5},
    )
    assert got.due.entries() == [(0.5, "INC-0\0"), (1.0, "INC-1"), (2.0, "x" * 100), (3.0, "INC-3")]
    assert got.expiries.entries() == [(9.0, "INC-9")]
    assert index_snapshot.read(tmp_path, "incidents", 1) is None  # none saved

    path = index_snapshot.path_for(tmp_path, "incidents", 2)
    with np.load(path) as files:
        arrays = {name: files[name] for name in files.files}
    meta = orjson.loads(arrays["meta"].tobytes())
    arrays["meta"] = np.frombuffer(orjson.dumps({**meta, "format": 0}), dtype=np.uint8)
    np.savez(path, **arrays)
    assert index_snapshot.read(tmp_path, "incidents", 2) is None
    path.write_bytes(path.read_bytes()[:100])  # cut short
    assert index_snapshot.read(tmp_path, "incidents", 2) is None
