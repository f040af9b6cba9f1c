"""The compacted contracts topic: publish resolved `ContractRecord`s, and read them back."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sla_stream.core.terms import ContractRecord
from sla_stream.settings import Settings
from sla_stream.stream.admin import TopicSpec, ensure_topics


def contracts_topic(settings: Settings) -> TopicSpec:
    """One partition (a GlobalTable reads it whole), compacted by contract id."""
    return TopicSpec(
        settings.topic("contracts"),
        1,
        {"cleanup.policy": "compact"},
        replication_factor=settings.replication_factor,
    )


def encode_record(record: ContractRecord) -> tuple[bytes, bytes]:
    """Key and value of one record: the contract id, and every version of it as JSON."""
    return record.contract_id.encode("utf-8"), record.model_dump_json().encode("utf-8")


async def publish_contracts(
    bootstrap: str, spec: TopicSpec, records: Mapping[str, ContractRecord]
) -> int:
    """Create the topic if needed, then send every record and wait for each to be acknowledged."""
    await ensure_topics(bootstrap, [spec])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        await producer.start()  # inside the try: a failed start still needs its stop
        pending = []
        for record in records.values():
            key, value = encode_record(record)
            pending.append(await producer.send(spec.name, value=value, key=key))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return len(pending)


async def read_published(bootstrap: str, spec: TopicSpec) -> dict[str, ContractRecord]:
    """What the contracts topic holds now (created first if missing, so a first apply reads
    an empty topic rather than waiting on one that does not exist)."""
    await ensure_topics(bootstrap, [spec])
    return await read_contracts(bootstrap, spec.name)


async def read_contracts(
    bootstrap: str, topic: str, *, idle_s: float = 1.5, deadline_s: float = 20.0
) -> dict[str, ContractRecord]:
    """The latest record of every contract id on the topic.

    Reads until nothing new has arrived for `idle_s` (or `deadline_s` has passed), and at least
    to the reported end offset: the embedded broker reports less than the log end after
    multi-record batches, so it is only a lower bound (a slow first fetch must not read as an
    empty topic), never the place to stop.
    """
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    latest: dict[str, bytes | None] = {}
    loop = asyncio.get_running_loop()
    try:
        await consumer.start()
        stop_at = loop.time() + deadline_s
        quiet_since = loop.time()
        numbers = consumer.partitions_for_topic(topic) or {0}
        at_least = await consumer.end_offsets([TopicPartition(topic, n) for n in numbers])
        while loop.time() < stop_at and (
            loop.time() - quiet_since < idle_s or not await _reached(consumer, at_least)
        ):
            batch = await consumer.getmany(timeout_ms=250)
            for messages in batch.values():
                for message in messages:
                    if message.key is not None:
                        latest[message.key.decode("utf-8")] = message.value
                    quiet_since = loop.time()
    finally:
        await consumer.stop()
    return {
        cid: ContractRecord.model_validate_json(raw)
        for cid, raw in latest.items()
        if raw is not None  # a tombstone deletes the contract
    }


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether the consumer has read every partition up to `ends`."""
    assigned = consumer.assignment()
    for tp, end in ends.items():
        if end > 0 and (tp not in assigned or await consumer.position(tp) < end):
            return False
    return True
