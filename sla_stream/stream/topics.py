"""Topic names and their specs, from settings: one place that knows partition counts."""

from __future__ import annotations

from dataclasses import dataclass

from sla_stream.settings import Settings
from sla_stream.stream.admin import TopicSpec
from sla_stream.stream.contracts_topic import contracts_topic


@dataclass(frozen=True)
class TopicNames:
    events: str
    ticks: str
    contracts: str
    alerts: str
    outcomes: str
    dead_letter: str

    @classmethod
    def of(cls, settings: Settings) -> TopicNames:
        t = settings.topic
        return cls(
            events=t("incident-events"),
            ticks=t("ticks"),
            contracts=t("contracts"),
            alerts=t("alerts"),
            outcomes=t("outcomes"),
            dead_letter=t("dead-letter"),
        )


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the system reads or writes; events and ticks are co-partitioned."""
    n = TopicNames.of(settings)
    p, rf = settings.partitions, settings.replication_factor
    return [
        TopicSpec(n.events, p, replication_factor=rf),
        TopicSpec(n.ticks, p, {"retention.ms": str(3600 * 1000)}, replication_factor=rf),
        contracts_topic(settings),
        TopicSpec(n.alerts, p, replication_factor=rf),
        TopicSpec(n.outcomes, p, replication_factor=rf),
        TopicSpec(n.dead_letter, 1, replication_factor=rf),
    ]
