"""Local tables the changelog can vouch for: wiped after an unclean stop, restored to the end.

Two hazards of a RocksDB-backed Faust table, and the answer to each:

1. A table write reaches RocksDB at once while its changelog record waits in the producer. A
   SIGKILL can keep the write and lose the record; the redelivered event is then a duplicate for
   the local store, the record is never sent again, and any later restore (a lost disk, a
   partition moving to another worker) brings older state back. As Kafka Streams does when it
   finds no clean checkpoint, a worker that finds no clean-stop file in its data directory wipes
   its local tables and Faust restores them from the changelogs. An orderly stop writes the file;
   a start removes it. Effects are published only once their state's changelog record is
   acknowledged (`publish.py`), so the changelog never lags what the world has seen.
2. The embedded broker reports a partition's end offset as its last batch's base offset + 1, so a
   restore into an empty data directory stopped short of the records behind the first one of a
   multi-record last batch. Before Faust starts, the worker appends one marker record, alone, to
   every partition of the tables' changelogs, so the last batch of each is a single record and
   the reported end is the true end; the ticker keeps doing so for idle partitions
   (`IncidentStore.mark`). Readers of the tables skip keys that start with `MARKER_PREFIX`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)

CLEAN_STOP_FILE = "clean-stop"
# Keys of bookkeeping records inside the tables: incident ids and contract ids are typed by
# people and never start with control characters; the rollups' outcome-id markers use b"\x1e".
MARKER_PREFIX = b"\x1e\x1f"
END_KEY = MARKER_PREFIX + b"end"  # appended alone at start; carries nothing
ACKED_KEY = MARKER_PREFIX + b"acked"  # a partition's acknowledged-effects watermark


def is_marker(key: bytes) -> bool:
    return key.startswith(MARKER_PREFIX)


def begin_run(data_dir: Path, tabledir: Path) -> bool:
    """Start a run on `data_dir`: True when the last run stopped cleanly (or left no tables).

    Without the clean-stop file the local tables may hold writes whose changelog records were
    lost; they are deleted so Faust restores every partition from its changelog.
    """
    marker = data_dir / CLEAN_STOP_FILE
    if marker.exists():
        marker.unlink()
        return True
    if tabledir.is_dir() and any(tabledir.iterdir()):
        log.warning(
            "the last run on %s did not stop cleanly (no %s file): its local tables may be ahead "
            "of their changelogs, so they are deleted and restored from the changelogs",
            data_dir,
            CLEAN_STOP_FILE,
        )
        shutil.rmtree(tabledir)
        return False
    return True


def mark_clean_stop(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / CLEAN_STOP_FILE).write_bytes(b"")


@contextlib.contextmanager
def clean_stop_recorded(
    data_dir: Path, *services: Any, before_mark: Callable[[], None] | None = None
) -> Iterator[None]:
    """Write the clean-stop file when the block exits with status 0 and no service crashed,
    after `before_mark` (which saves what only a clean stop may leave for the next start).

    Faust's worker exits by `SystemExit` after it committed offsets and flushed its producer; a
    crash re-raises its reason instead, and a SIGKILL runs nothing at all.
    """
    try:
        yield
    except SystemExit as exc:
        crashed = any(getattr(s, "crash_reason", None) is not None for s in services)
        if exc.code in (0, None) and not crashed:
            if before_mark is not None:
                before_mark()
            mark_clean_stop(data_dir)
        raise


def changelog_topics(app: Any) -> list[str]:
    """The changelog topics of the app's partitioned tables (not the global contracts table)."""
    return sorted(
        t.changelog_topic.get_topic_name() for t in app.tables.values() if not t.is_global
    )


async def seal_changelogs(bootstrap: str, topics: Iterable[str]) -> dict[str, dict[int, int]]:
    """Append `END_KEY`, alone, to every partition of the existing `topics`; returns the offset
    of each marker, {topic: {partition: offset}}.

    Each send waits for its acknowledgement before the next, so each marker is a batch of one.
    A topic that does not exist yet is left for Faust to create with the table's partitions.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = [t for t in topics if t in set(await admin.list_topics())]
    finally:
        await admin.close()
    if not existing:
        return {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    sealed: dict[str, dict[int, int]] = {}
    try:
        for topic in existing:
            for partition in sorted(await producer.partitions_for(topic)):
                sent = await producer.send_and_wait(topic, b"", key=END_KEY, partition=partition)
                sealed.setdefault(topic, {})[partition] = sent.offset
    finally:
        await producer.stop()
    return sealed


def prepare_tables(app: Any, data_dir: Path, bootstrap: str) -> dict[str, dict[int, int]]:
    """Before Faust starts: wipe the tables after an unclean stop, then seal the changelogs;
    returns the offsets of the markers (`seal_changelogs`)."""
    begin_run(data_dir, Path(app.conf.tabledir))
    # Faust's loop, not `asyncio.run`, which would leave the thread without a current loop.
    loop = asyncio.get_event_loop_policy().get_event_loop()
    sealed = loop.run_until_complete(seal_changelogs(bootstrap, changelog_topics(app)))
    log.info("appended an end marker to %d changelog partitions", sum(map(len, sealed.values())))
    return sealed
