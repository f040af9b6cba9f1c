"""The due index saved at an orderly stop, so the next start need not read every record.

A worker builds its indexes (due instants, expiries, parked incidents, open-clock counts and the
records whose outbox a restart re-sends) in one pass over every record of its partitions: at 10M
open incidents that pass took over a minute before the first tick. At an orderly stop the worker
writes each partition's indexes here, stamped with the changelog offset its RocksDB store had
applied (`checkpoint.OFFSET_KEY`, which Faust moves on every changelog record it applies in a
recovery and on every acknowledged write). The next start loads a partition's file only when
the store's offset, read before this run's first write to it, is the stamp: any record that
came from the changelog since (another worker served the partition meanwhile) moves the offset,
and the partition is rebuilt by the full pass. The files live inside the tables directory, so
whatever wipes the tables (an unclean stop, another broker) takes them too; and a start uses
them once and deletes them, so only the stop that follows the run can write them again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from sla_stream.stream.due_index import Schedule
from sla_stream.stream.local_state import persisted_offsets

log = logging.getLogger(__name__)

DIRECTORY = "due-index"  # inside the tables directory
FORMAT = 1  # of the files; a file of another format is ignored (the partition is rebuilt)


@dataclass
class PartitionIndex:
    """What a start needs of one partition besides its records."""

    partition: int
    offset: int | None  # the changelog offset the store had applied when this was saved
    due: Schedule
    expiries: Schedule
    parked: dict[str, list[str]] = field(default_factory=dict)  # contract id -> incident ids
    open_slots: list[tuple[str, str, int]] = field(default_factory=list)  # metric, severity, n
    # Incidents whose record holds outbox entries a restart may re-send, with the latest
    # entry's wall-clock time (`IncidentStore.recent`).
    recent: dict[str, float] = field(default_factory=dict)


def directory(tabledir: Path) -> Path:
    return tabledir / DIRECTORY


def path_for(tabledir: Path, table: str, partition: int) -> Path:
    return directory(tabledir) / f"{table}-{partition}.npz"


def write(tabledir: Path, table: str, index: PartitionIndex) -> Path:
    """Write one partition's file (atomically: a crash leaves the old file or none)."""
    due_at, due_ids, due_rest = index.due.arrays()
    exp_at, exp_ids, exp_rest = index.expiries.arrays()
    meta = {
        "format": FORMAT,
        "partition": index.partition,
        "offset": index.offset,
        "due_rest": due_rest,
        "expiries_rest": exp_rest,
        "parked": index.parked,
        "open_slots": index.open_slots,
        "recent": index.recent,
    }
    path = path_for(tabledir, table, index.partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as f:
        np.savez(
            f,
            due_at=due_at,
            due_ids=due_ids,
            expiries_at=exp_at,
            expiries_ids=exp_ids,
            meta=np.frombuffer(orjson.dumps(meta), dtype=np.uint8),
        )
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
    return path


def read(tabledir: Path, table: str, partition: int) -> PartitionIndex | None:
    """One partition's file, or None when there is none or it cannot be trusted as written."""
    path = path_for(tabledir, table, partition)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as files:
            meta: dict[str, Any] = orjson.loads(files["meta"].tobytes())
            if meta.get("format") != FORMAT or meta.get("partition") != partition:
                raise ValueError(f"format {meta.get('format')}, partition {meta.get('partition')}")
            due = _schedule(files["due_at"], files["due_ids"], meta["due_rest"])
            expiries = _schedule(files["expiries_at"], files["expiries_ids"], meta["expiries_rest"])
        return PartitionIndex(
            partition,
            meta["offset"],
            due,
            expiries,
            {c: list(ids) for c, ids in meta["parked"].items()},
            [(m, s, int(n)) for m, s, n in meta["open_slots"]],
            {k: float(w) for k, w in meta["recent"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        log.warning("due index file %s ignored (the partition is rebuilt): %s", path, exc)
        return None


def _schedule(at: np.ndarray, ids: np.ndarray, rest: list[list[Any]]) -> Schedule:
    if at.dtype != np.float64 or ids.dtype.kind != "S" or at.ndim != 1 or ids.ndim != 1:
        raise ValueError(f"arrays of {at.dtype}/{ids.dtype}")
    if len(at) > 1 and not bool(np.all(at[1:] >= at[:-1])):
        raise ValueError("instants not sorted")
    schedule = Schedule(at, ids)
    for t, incident_id in rest:
        schedule.push(float(t), str(incident_id))
    return schedule


def save(tabledir: Path, table: str, indexes: list[PartitionIndex]) -> None:
    """At an orderly stop, once Faust has closed the tables: stamp each partition's indexes
    with the changelog offset its store applied last, and write them (any older file goes)."""
    discard(tabledir)
    offsets = persisted_offsets(tabledir)
    for index in indexes:
        index.offset = offsets.get((table, index.partition))
        write(tabledir, table, index)


def save_at_stop(tabledir: Path, steps: Any) -> None:
    """What the worker runs at an orderly stop (`checkpoint.clean_stop_recorded`): save the
    incident steps' indexes when they were built for the latest assignment; else, and when
    saving fails, leave no file (the next start rebuilds)."""
    try:
        if not steps.index_current():
            discard(tabledir)
            log.info("due index not saved: partitions were reassigned since it was built")
            return
        store = steps.store
        indexes = store.partition_indexes(steps.open_clocks.by_partition)
        save(tabledir, store.table.name, indexes)
        log.info("due index saved for partitions %s", [i.partition for i in indexes])
    except Exception:
        log.exception("due index not saved; the next start rebuilds it")
        discard(tabledir)


def discard(tabledir: Path) -> None:
    """Delete every saved file: a start uses them once."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(directory(tabledir))
