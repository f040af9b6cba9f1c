"""Which broker a worker talks to, and whether its local tables came from that broker.

The data directory outlives the embedded broker, which is memory-only: after `make run` is
stopped and started again, the new broker has no topics, no changelog and no committed offsets,
while the RocksDB tables still hold the last run's incidents and changelog offsets. Resumed, they
would restart the old clocks and take the new feed's events as duplicates. So the worker records
beside its tables the cluster id of the broker they came from, and at start compares it with the
broker's: another cluster (a restarted embedded broker gets a new id) means the tables are
wiped and rebuilt from this broker's changelog instead of resumed.

The cluster id is asked for rather than inferred from offsets: the embedded broker reports end
offsets wrong after multi-record batches (DESIGN, "Embedded broker facts"), so "persisted offset
beyond the end" is no evidence there. It also tells the embedded broker from Kafka however the
worker reaches it (`sla.broker.is_embedded_cluster`). One offset fact does hold on every broker:
a changelog partition that ever had a record reports an end offset of at least 1. So tables that
applied records of a changelog partition the broker holds empty (or not at all: a topic deleted
and created again, a Tansu started without a cluster id of its own) are rebuilt as well.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.protocol.metadata import MetadataRequest

from sla_stream.broker import is_embedded_cluster

MARKER_NAME = "broker-cluster-id"  # beside the tables directory: the cluster they came from
OFFSET_KEY = b"__faust\x00offset__"  # where Faust's RocksDB store keeps the changelog offset


@dataclass(frozen=True)
class BrokerIdentity:
    """What a broker says it is: its cluster id (Kafka's Metadata v2 and later)."""

    bootstrap: str
    cluster_id: str | None
    # The end offset of every partition of the app's changelog topics, {topic: {partition: end}}.
    changelog_ends: Mapping[str, Mapping[int, int]] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return is_embedded_cluster(self.cluster_id)


async def probe_broker(bootstrap: str, app_id: str) -> BrokerIdentity:
    """Ask the broker for its cluster id and the end offsets of the app's changelogs."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        response = await client.send(client.get_random_node(), MetadataRequest([]))
    finally:
        await client.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        changelogs = {t for t in await consumer.topics() if _is_changelog(t, app_id)}
        partitions = [
            TopicPartition(t, p) for t in changelogs for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    by_topic: dict[str, dict[int, int]] = {}
    for tp, end in ends.items():
        by_topic.setdefault(tp.topic, {})[tp.partition] = end
    return BrokerIdentity(bootstrap, getattr(response, "cluster_id", None), by_topic)


def _is_changelog(topic: str, app_id: str) -> bool:
    return topic.startswith(f"{app_id}-") and topic.endswith("-changelog")


def persisted_offsets(tabledir: Path) -> dict[tuple[str, int], int]:
    """The changelog offset each local table partition last applied, {(table, partition): n}."""
    from rocksdict import AccessType, Options, Rdict

    found = {}
    for path in sorted(tabledir.glob("*-*.db")):
        table, _, partition = path.name.removesuffix(".db").rpartition("-")
        if not partition.isdigit():
            continue
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            raw = db.get(OFFSET_KEY)
        finally:
            db.close()
        if raw is not None:
            found[(table, int(partition))] = int(raw)
    return found


def _unknown_changelog(tabledir: Path, broker: BrokerIdentity, app_id: str) -> str | None:
    for (table, partition), offset in persisted_offsets(tabledir).items():
        topic = f"{app_id}-{table}-changelog"
        if broker.changelog_ends.get(topic, {}).get(partition, 0) == 0:
            return (
                f"they applied {topic} partition {partition} up to offset {offset}, and "
                f"{broker.bootstrap} holds no record of it"
            )
    return None


def marker_path(tabledir: Path) -> Path:
    return tabledir.parent / MARKER_NAME


def stale_reason(tabledir: Path, broker: BrokerIdentity, app_id: str) -> str | None:
    """Why the tables in `tabledir` must not be resumed on `broker`, or None when they may."""
    if not tabledir.is_dir() or not any(tabledir.iterdir()):
        return None  # nothing local to resume
    marker = marker_path(tabledir)
    recorded = marker.read_text(encoding="utf-8").strip() if marker.exists() else None
    if recorded in (None, broker.cluster_id) or broker.cluster_id is None:
        return _unknown_changelog(tabledir, broker, app_id)
    restarted = " (the embedded broker keeps nothing across restarts)" if broker.embedded else ""
    return (
        f"they came from broker cluster {recorded}, and {broker.bootstrap} is cluster "
        f"{broker.cluster_id}, which does not know them{restarted}"
    )


def rebuild_if_stale(tabledir: Path, broker: BrokerIdentity, app_id: str) -> str | None:
    """Wipe the tables when `stale_reason` finds one (the worker then restores them from the
    changelog), and record the broker's cluster id beside them; returns the reason, if any."""
    reason = stale_reason(tabledir, broker, app_id)
    if reason is not None:
        shutil.rmtree(tabledir)
    if broker.cluster_id is not None:
        tabledir.mkdir(parents=True, exist_ok=True)
        marker_path(tabledir).write_text(broker.cluster_id + "\n", encoding="utf-8")
    return reason
