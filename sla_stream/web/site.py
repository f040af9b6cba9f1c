"""Wire the read side onto a worker: incident fan-out, the client portal and the dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sla_stream.web.cluster import Cluster, register_cluster_views
from sla_stream.web.dashboard import register_dashboard
from sla_stream.web.open_incidents import LocalIncidents
from sla_stream.web.portal import WorkerBackend, register_portal_views

if TYPE_CHECKING:
    from sla_stream.stream.app import SlaApp
    from sla_stream.stream.rollups import Rollups


def register_site(sla_app: SlaApp, rollups: Rollups) -> Cluster:
    """`/` (dashboard), `/api/v1/dashboard*`, `/api/v1/portal/*` and the members' endpoint."""
    recent_s = sla_app.settings.portal_recent_days * 86_400  # what the portal lists
    cluster = Cluster(sla_app, LocalIncidents(sla_app.store, sla_app.contract, recent_s=recent_s))
    register_cluster_views(sla_app, cluster)
    backend = WorkerBackend(sla_app, cluster)
    register_portal_views(sla_app, cluster)
    register_dashboard(sla_app, rollups, cluster, backend)
    return cluster
