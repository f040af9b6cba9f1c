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
worker reaches it (`sla.broker.is_embedded_cluster`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaClient
from aiokafka.protocol.metadata import MetadataRequest

from sla_stream.broker import is_embedded_cluster

MARKER_NAME = "broker-cluster-id"  # beside the tables directory: the cluster they came from


@dataclass(frozen=True)
class BrokerIdentity:
    """What a broker says it is: its cluster id (Kafka's Metadata v2 and later)."""

    bootstrap: str
    cluster_id: str | None

    @property
    def embedded(self) -> bool:
        return is_embedded_cluster(self.cluster_id)


async def probe_broker(bootstrap: str) -> BrokerIdentity:
    """Ask the broker for its cluster id."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        response = await client.send(client.get_random_node(), MetadataRequest([]))
    finally:
        await client.close()
    return BrokerIdentity(bootstrap, getattr(response, "cluster_id", None))


def marker_path(tabledir: Path) -> Path:
    return tabledir.parent / MARKER_NAME


def stale_reason(tabledir: Path, broker: BrokerIdentity) -> str | None:
    """Why the tables in `tabledir` must not be resumed on `broker`, or None when they may."""
    if broker.cluster_id is None or not tabledir.is_dir() or not any(tabledir.iterdir()):
        return None  # nothing to compare with, or nothing local to resume
    marker = marker_path(tabledir)
    recorded = marker.read_text(encoding="utf-8").strip() if marker.exists() else None
    if recorded == broker.cluster_id:
        return None
    if recorded is None:
        return "they carry no record of the broker cluster they came from"
    restarted = " (the embedded broker keeps nothing across restarts)" if broker.embedded else ""
    return (
        f"they came from broker cluster {recorded}, and {broker.bootstrap} is cluster "
        f"{broker.cluster_id}, which does not know them{restarted}"
    )


def rebuild_if_stale(tabledir: Path, broker: BrokerIdentity) -> str | None:
    """Wipe the tables when `stale_reason` finds one (the worker then restores them from the
    changelog), and record the broker's cluster id beside them; returns the reason, if any."""
    reason = stale_reason(tabledir, broker)
    if reason is not None:
        shutil.rmtree(tabledir)
    if broker.cluster_id is not None:
        tabledir.mkdir(parents=True, exist_ok=True)
        marker_path(tabledir).write_text(broker.cluster_id + "\n", encoding="utf-8")
    return reason
