"""When a worker's local tables may be resumed on a broker, and when they are rebuilt."""

from __future__ import annotations

from pathlib import Path

from sla_stream.broker import EmbeddedBroker, is_embedded_cluster
from sla_stream.stream.local_state import BrokerIdentity, marker_path, rebuild_if_stale

KAFKA = BrokerIdentity("kafka:9092", "MkU3OEVBNTcwNTJENDM2Qk")


def tables(root: Path) -> Path:
    tabledir = root / "v1" / "tables"
    (tabledir / "app-incidents-0.db").mkdir(parents=True)
    (tabledir / "app-incidents-0.db" / "CURRENT").write_text("MANIFEST-000001\n")
    return tabledir


def test_the_embedded_broker_is_recognised_by_its_cluster_id() -> None:
    a, b = EmbeddedBroker(), EmbeddedBroker()
    assert a.cluster_id != b.cluster_id  # each start is a broker of its own
    assert is_embedded_cluster(a.cluster_id) and is_embedded_cluster("tansu_cluster")
    assert not is_embedded_cluster(KAFKA.cluster_id) and not is_embedded_cluster(None)


def test_tables_of_the_same_cluster_are_resumed(tmp_path: Path) -> None:
    tabledir = tmp_path / "v1" / "tables"
    assert rebuild_if_stale(tabledir, KAFKA) is None  # a first start: nothing local yet
    assert marker_path(tabledir).read_text().strip() == KAFKA.cluster_id
    tables(tmp_path)  # what the worker then wrote
    assert rebuild_if_stale(tabledir, KAFKA) is None
    assert (tabledir / "app-incidents-0.db" / "CURRENT").exists()


def test_tables_of_another_cluster_are_wiped_with_the_reason(tmp_path: Path) -> None:
    tabledir = tables(tmp_path)
    old, new = (
        EmbeddedBroker().cluster_id,
        BrokerIdentity("127.0.0.1:9092", "sla-stream-embedded-2"),
    )
    marker_path(tabledir).write_text(old + "\n")
    reason = rebuild_if_stale(tabledir, new)
    assert reason is not None and old in reason and "sla-stream-embedded-2" in reason
    assert "keeps nothing across restarts" in reason
    assert tabledir.is_dir() and not any(tabledir.iterdir())
    assert marker_path(tabledir).read_text().strip() == "sla-stream-embedded-2"
    assert rebuild_if_stale(tabledir, new) is None  # the next start resumes


def test_tables_without_a_record_of_their_broker_are_rebuilt(tmp_path: Path) -> None:
    tabledir = tables(tmp_path)
    reason = rebuild_if_stale(tabledir, KAFKA)
    assert reason == "they carry no record of the broker cluster they came from"
    assert not any(tabledir.iterdir())
