"""Every Prometheus metric the Alertmanager bridge exports (a process of its own, own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class BridgeMetrics:
    """The bridge's metrics on a fresh `CollectorRegistry` unless one is given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # Records read from the alerts topic, by alert kind; `replayed` ones rebuilt state only.
        self.consumed = Counter(
            "sla_notify_alerts_consumed", "Alert records read", ["kind", "mode"], registry=r
        )
        # Posts to Alertmanager by result: accepted, refused (400: never retried) or failed.
        self.posts = Counter(
            "sla_notify_posts", "Posts to Alertmanager by result", ["result"], registry=r
        )
        # Partition assignments received; a rise with no bridge started or stopped is group churn.
        self.assignments = Counter(
            "sla_notify_assignments", "Partition assignments this bridge received", registry=r
        )
        # Alerts currently firing as far as this bridge knows (what it re-posts).
        self.firing = Gauge(
            "sla_notify_firing_alerts", "Alerts the bridge keeps firing", registry=r
        )
        # Seconds since the last post Alertmanager accepted (0 right after one); grows in outages.
        self.last_accepted = Gauge(
            "sla_notify_last_accepted_timestamp_seconds",
            "Unix time of the last post Alertmanager accepted",
            registry=r,
        )
