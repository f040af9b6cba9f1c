"""`sla-stream contracts apply` publishes resolved contracts that a real consumer reads back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from click.testing import CliRunner

from sla_stream.broker import EmbeddedBroker
from sla_stream.cli import main
from sla_stream.core.contracts import load_contracts
from sla_stream.core.terms import ContractRecord
from sla_stream.stream.admin import TopicSpec, ensure_topics

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contracts.yaml"

pytestmark = pytest.mark.integration


async def consume(bootstrap: str, topic: str, count: int) -> list[tuple[str, bytes]]:
    """Read `count` records from the start of `topic`: until we have them, never to the end."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    got: list[tuple[str, bytes]] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    got.extend((r.key.decode("utf-8"), r.value) for r in records)
    finally:
        await consumer.stop()
    return got


async def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [resource] = response.to_object()["resources"]
    return {e["config_names"]: e["config_value"] for e in resource["config_entries"]}


def apply(broker: EmbeddedBroker, prefix: str) -> str:
    result = CliRunner().invoke(
        main,
        ["contracts", "apply", str(EXAMPLE), "--broker", broker.bootstrap],
        env={"SLA_TOPIC_PREFIX": prefix, "SLA_BROKER": None},
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_apply_then_a_consumer_gets_the_resolved_contracts(broker: EmbeddedBroker) -> None:
    expected = load_contracts(EXAMPLE)
    output = apply(broker, "apply1.")
    assert f"published {len(expected)} contracts to apply1.contracts" in output
    got = asyncio.run(consume(broker.bootstrap, "apply1.contracts", len(expected)))
    assert sorted(key for key, _ in got) == sorted(expected)
    for key, value in got:
        record = ContractRecord.model_validate_json(value)
        assert record == expected[key]
    nordwind = ContractRecord.model_validate_json(dict(got)["nordwind-logistik-msa"])
    assert [v.version for v in nordwind.versions] == [1, 2]
    config = asyncio.run(topic_config(broker.bootstrap, "apply1.contracts"))
    assert config.get("cleanup.policy") == "compact"


def test_apply_twice_republishes_the_same_records(broker: EmbeddedBroker) -> None:
    apply(broker, "apply2.")
    apply(broker, "apply2.")  # the topic exists now: creating it again is not an error
    count = len(load_contracts(EXAMPLE))
    got = asyncio.run(consume(broker.bootstrap, "apply2.contracts", 2 * count))
    assert got[:count] == got[count:]


def test_show_reads_the_terms_back_from_the_topic(broker: EmbeddedBroker) -> None:
    apply(broker, "apply3.")
    result = CliRunner().invoke(
        main,
        ["contracts", "show", "demo", "--broker", broker.bootstrap],
        env={"SLA_TOPIC_PREFIX": "apply3."},
    )
    assert result.exit_code == 0, result.output
    assert "demo version 1: customer demo-co" in result.output
    assert "first_response  P1        30 seconds" in result.output
    assert "D-1 Demo Response" in result.output


def test_apply_refuses_an_invalid_file_before_touching_the_broker(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text(encoding="utf-8").replace("tier: demo\n", "tier: dem\n"))
    result = CliRunner().invoke(
        main,
        ["contracts", "apply", str(bad), "--broker", broker.bootstrap],
        env={"SLA_TOPIC_PREFIX": "apply4."},
    )
    assert result.exit_code == 1
    assert f"{bad}:contracts[7].tier: unknown tier" in result.output
    created = asyncio.run(ensure_topics(broker.bootstrap, [TopicSpec("apply4.contracts", 1)]))
    assert created == ["apply4.contracts"]  # apply never created it


def test_apply_refuses_to_change_a_published_version(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    apply(broker, "apply5.")
    count = len(load_contracts(EXAMPLE))
    text = EXAMPLE.read_text(encoding="utf-8")
    changed = tmp_path / "changed.yaml"
    # Version 1 of nordwind-logistik-msa runs to 2028; ending it early rewrites version 1.
    changed.write_text(text.replace("effective_to: 2028-01-01", "effective_to: 2026-01-01", 1))
    result = CliRunner().invoke(
        main,
        ["contracts", "apply", str(changed), "--broker", broker.bootstrap],
        env={"SLA_TOPIC_PREFIX": "apply5.", "SLA_BROKER": None},
    )
    assert result.exit_code == 1, result.output
    assert f"{changed}: refused, nothing published" in result.output
    assert (
        "nordwind-logistik-msa version 1 is already published and would change (effective_to): "
        "publish the new terms as version 3 with a later effective_from instead"
    ) in result.output
    # The same file again is accepted: nothing changes. The refused apply published nothing, so
    # the topic holds the first apply's records, then this one's, and nothing between.
    apply(broker, "apply5.")
    got = asyncio.run(consume(broker.bootstrap, "apply5.contracts", 2 * count))
    assert got[:count] == got[count:]
    assert all(ContractRecord.model_validate_json(v) for _, v in got)
