"""When a worker's local tables may be resumed on a broker, and when they are rebuilt."""

from __future__ import annotations

from pathlib import Path

from rocksdict import Options, Rdict

from sla_stream.broker import EmbeddedBroker, is_embedded_cluster
from sla_stream.stream.local_state import (
    OFFSET_KEY,
    BrokerIdentity,
    marker_path,
    persisted_offsets,
    rebuild_if_stale,
)

APP = "sla-stream"
CHANGELOG = f"{APP}-incidents-changelog"


def kafka(end: int | None) -> BrokerIdentity:
    """A Kafka cluster whose incidents changelog partition 0 ends at `end` (None: no topic)."""
    ends = {} if end is None else {CHANGELOG: {0: end, 1: 0}}
    return BrokerIdentity("kafka:9092", "MkU3OEVBNTcwNTJENDM2Qk", ends)


def tables(root: Path, applied: int | None = 41) -> Path:
    """A real RocksDB partition as Faust leaves it: records and the changelog offset applied."""
    tabledir = root / "v1" / "tables"
    tabledir.mkdir(parents=True, exist_ok=True)
    db = Rdict(str(tabledir / "incidents-0.db"), options=Options(raw_mode=True))
    db[b"INC-1"] = b"{}"
    if applied is not None:
        db[OFFSET_KEY] = str(applied).encode()
    db.close()
    return tabledir


def test_the_embedded_broker_is_recognised_by_its_cluster_id() -> None:
    a, b = EmbeddedBroker(), EmbeddedBroker()
    assert a.cluster_id != b.cluster_id  # each start is a broker of its own
    assert is_embedded_cluster(a.cluster_id) and is_embedded_cluster("tansu_cluster")
    assert not is_embedded_cluster(kafka(1).cluster_id) and not is_embedded_cluster(None)


def test_tables_of_the_same_cluster_with_their_changelog_are_resumed(tmp_path: Path) -> None:
    tabledir = tmp_path / "v1" / "tables"
    assert rebuild_if_stale(tabledir, kafka(None), APP) is None  # a first start: nothing local
    assert marker_path(tabledir).read_text().strip() == kafka(1).cluster_id
    tables(tmp_path)  # what the worker then wrote
    assert persisted_offsets(tabledir) == {("incidents", 0): 41}
    assert rebuild_if_stale(tabledir, kafka(42), APP) is None
    assert rebuild_if_stale(tabledir, kafka(1), APP) is None  # the embedded broker's low ends
    assert (tabledir / "incidents-0.db").is_dir()


def test_tables_of_another_cluster_are_wiped_with_the_reason(tmp_path: Path) -> None:
    tabledir = tables(tmp_path)
    old = EmbeddedBroker().cluster_id
    new = BrokerIdentity("127.0.0.1:9092", "sla-stream-embedded-2")
    marker_path(tabledir).write_text(old + "\n")
    reason = rebuild_if_stale(tabledir, new, APP)
    assert reason is not None and old in reason and "sla-stream-embedded-2" in reason
    assert "keeps nothing across restarts" in reason
    assert tabledir.is_dir() and not any(tabledir.iterdir())
    assert marker_path(tabledir).read_text().strip() == "sla-stream-embedded-2"
    assert rebuild_if_stale(tabledir, new, APP) is None  # the next start resumes


def test_tables_that_applied_a_changelog_the_broker_holds_empty_are_rebuilt(
    tmp_path: Path,
) -> None:
    for ends in (kafka(0), kafka(None)):  # emptied (deleted and created again), or gone
        tabledir = tables(tmp_path)
        marker_path(tabledir).write_text(ends.cluster_id or "")
        reason = rebuild_if_stale(tabledir, ends, APP)
        assert reason == (
            f"they applied {CHANGELOG} partition 0 up to offset 41, and kafka:9092 holds no "
            "record of it"
        )
        assert not any(tabledir.iterdir())


def test_a_partition_that_never_had_a_changelog_record_acknowledged_is_no_evidence(
    tmp_path: Path,
) -> None:
    tabledir = tables(tmp_path, applied=None)
    marker_path(tabledir).write_text(kafka(0).cluster_id or "")
    assert rebuild_if_stale(tabledir, kafka(0), APP) is None
