"""The embedded broker accepts a real Kafka client's records and serves them back."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sla_stream.broker import EmbeddedBroker


async def test_produce_and_consume_round_trip(broker: EmbeddedBroker) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait("broker-smoke", f"m{i}".encode(), key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        "broker-smoke", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(20):
            while len(got) < 5:  # read until we have what we expect, never to the end offset
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    got.extend(r.value for r in records)
    finally:
        await consumer.stop()
    assert got == [f"m{i}".encode() for i in range(5)]
