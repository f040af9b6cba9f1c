"""Every Prometheus metric a worker exports, declared in one place, on one registry per worker.

Labels stay low-cardinality: event types, reasons, kinds, metrics, severities, contracts —
never incident ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The worker's metrics; a fresh `CollectorRegistry` unless one is given (tests read it)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._declare_input(self.registry)
        self._declare_output(self.registry)
        self._declare_state(self.registry)

    def _declare_input(self, r: CollectorRegistry) -> None:
        """What came in: events applied or refused, dead letters and their limit."""
        # Events accepted onto a clock, by lifecycle type.
        self.events = Counter("sla_events", "Incident events applied", ["type"], registry=r)
        # Events refused (dead-lettered) or ignored, by reason.
        self.rejected = Counter(
            "sla_events_rejected", "Incident events refused or ignored", ["reason"], registry=r
        )
        # Messages written to the dead-letter topic, by reason.
        self.dead_letters = Counter(
            "sla_dead_letters", "Messages sent to the dead-letter topic", ["reason"], registry=r
        )
        # Dead letters that could not be delivered after every retry (each also logged at ERROR
        # with the offset of its original on the events topic).
        self.dead_letter_failures = Counter(
            "sla_dead_letter_failures", "Dead letters that could not be delivered", registry=r
        )
        # 1 while consumption of the events topic is paused by the dead-letter limit.
        self.dead_letter_paused = Gauge(
            "sla_dead_letter_paused",
            "1 while the events topic is paused because too many messages were dead letters",
            registry=r,
        )
        # Share of dead letters among the last SLA_DEAD_LETTER_WINDOW messages of the events topic.
        self.dead_letter_ratio = Gauge(
            "sla_dead_letter_window_ratio",
            "Dead letters / messages over the recent window of the events topic",
            registry=r,
        )

    def _declare_output(self, r: CollectorRegistry) -> None:
        """What went out: alerts, outcomes, re-sends, and how late alerts left."""
        # Alerts published, by kind, metric and severity.
        self.alerts = Counter(
            "sla_alerts", "Alerts published", ["kind", "metric", "severity"], registry=r
        )
        # Outcomes published: result is met, breached or withdrawn.
        self.outcomes = Counter(
            "sla_outcomes", "Clock outcomes published", ["metric", "severity", "result"], registry=r
        )
        # How late an alert left the worker: publish time minus the instant it fell due.
        self.lateness = Histogram(
            "sla_alert_lateness_seconds",
            "Alert publish time minus due instant",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        # Outbox entries re-sent after a restart or a rebalance (same ids): effects the broker may
        # not have acknowledged before the worker stopped (see `stream/publish.py`).
        self.effects_resent = Counter(
            "sla_effects_resent", "Alerts and outcomes re-sent from the outbox", registry=r
        )

    def _declare_state(self, r: CollectorRegistry) -> None:
        """What the worker holds and how long its steps take."""
        # Clocks currently running or paused on this worker's partitions.
        self.open_clocks = Gauge(
            "sla_open_clocks", "Open SLA clocks", ["metric", "severity"], registry=r
        )
        # Incident records deleted once their retention passed (SLA_INCIDENT_RETENTION).
        self.deleted = Counter(
            "sla_incidents_deleted", "Finished incident records deleted", registry=r
        )
        # Steps that raised (a bug or an unreadable record); the input is dead-lettered or the
        # incident's tick retried a minute later.
        self.step_errors = Counter(
            "sla_step_errors", "Incident steps that raised an error", registry=r
        )
        # Partitions whose due index was built on assignment: from the file an orderly stop
        # saved (source="saved") or by reading every record (source="rebuilt").
        self.index_partitions = Counter(
            "sla_due_index_partitions",
            "Partition due indexes built on assignment",
            ["source"],
            registry=r,
        )
        # Incidents waiting for their contract to become known.
        self.parked = Gauge("sla_parked_incidents", "Incidents parked", registry=r)
        # Wall time spent applying one event (decode to publish).
        self.processing = Histogram(
            "sla_event_processing_seconds",
            "Time to process one event",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # Events per batch the incident agent took, and incident records written per batch.
        self.batch_events = Histogram(
            "sla_event_batch_events",
            "Events of the events topic in one batch the incident agent took",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_writes = Histogram(
            "sla_event_batch_writes",
            "Incident records one batch wrote (each incident it touched, once)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        # Incidents whose due time a tick processed, and the time a tick took.
        self.tick_seconds = Histogram(
            "sla_tick_seconds", "Time to process one tick", buckets=LATENCY_BUCKETS, registry=r
        )
        # Adherence over settled clocks seen by this worker's rollups.
        self.adherence = Gauge(
            "sla_adherence_ratio",
            "Met / (met + breached) over settled clocks",
            ["contract", "metric"],
            registry=r,
        )
