"""Declare topics explicitly (partitions, compaction) rather than let a first send create them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

# Another client created the topic between our listing and our request: that is success.
_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicSpec:
    """A topic as it should exist: name, partition count and topic-level configs."""

    name: str
    partitions: int = 1
    config: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic; names the topic and the broker's reason."""


async def ensure_topics(
    bootstrap: str, topics: Sequence[TopicSpec], *, timeout_ms: int = 30_000
) -> list[str]:
    """Create the topics that do not exist yet; existing ones are left as they are.

    Idempotent and safe against a concurrent creator. Returns the names it created. It does not
    alter an existing topic's partitions or configs: a mismatch is the operator's call.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [
                NewTopic(
                    name=t.name,
                    num_partitions=t.partitions,
                    replication_factor=t.replication_factor,
                    topic_configs=dict(t.config),
                )
                for t in missing
            ],
            timeout_ms=timeout_ms,
        )
        _raise_for_errors(response.to_object().get("topic_errors", []))
        return [t.name for t in missing]
    finally:
        await admin.close()


def _raise_for_errors(topic_errors: list[dict[str, object]]) -> None:
    for entry in topic_errors:
        code = int(entry.get("error_code", 0))  # type: ignore[call-overload]
        if code in (0, _TOPIC_ALREADY_EXISTS):
            continue
        name = entry.get("topic")
        message = entry.get("error_message") or for_code(code).__name__
        raise TopicCreationError(f"cannot create topic {name!r}: {message} (error code {code})")
