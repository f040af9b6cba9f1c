"""Wire the read side onto a worker: incident fan-out, the client portal and the dashboard.

Every HTTP route of the worker is added through `sla_app.routes.page(path, access)` and names
its access class (web/access.py has the table of classes and what each accepts):

    from sla_stream.web.access import Access

    @sla_app.routes.page("/api/v1/forecast", Access.VIEWER)
    async def forecast_view(view: Any, request: Any) -> Any:
        ...

- `Access.VIEWER` for anything an operator or account manager reads (the dashboard, read
  APIs); `Access.PORTAL` only for views that scope by the token's customer themselves;
  `Access.CLUSTER` for endpoints only other workers call (`Cluster.get` sends the secret);
  `Access.INGEST` for writes from ticketing systems; `Access.OPEN` only for what carries no
  customer data (probes, scrapes).
- Never call `app.page` (or add aiohttp routes) directly: the gate answers 500 for a route with
  no declared class, and tests/integration/test_web_access.py fails on it.
- A `table_route`d handler is not a route: call it from a declared page, as adherence.py does.
- A test that adds a route adds its path to the expectations of test_web_access.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sla_stream.web.capacity import register_capacity
from sla_stream.web.cluster import Cluster, register_cluster_views
from sla_stream.web.dashboard import register_dashboard
from sla_stream.web.explain import register_explain_views
from sla_stream.web.open_incidents import LocalIncidents
from sla_stream.web.portal import WorkerBackend, register_portal_views

if TYPE_CHECKING:
    from sla_stream.stream.rollups import Rollups
    from sla_stream.worker_app import SlaApp


def register_site(sla_app: SlaApp, rollups: Rollups) -> Cluster:
    """`/` (dashboard), `/api/v1/dashboard*`, `/api/v1/portal/*` and the members' endpoint."""
    recent_s = sla_app.settings.portal_recent_days * 86_400  # what the portal lists
    cluster = Cluster(sla_app, LocalIncidents(sla_app.store, sla_app.contract, recent_s=recent_s))
    register_cluster_views(sla_app, cluster)
    backend = WorkerBackend(sla_app, cluster)
    register_portal_views(sla_app, cluster)
    register_explain_views(sla_app, cluster)  # /api/v1/incidents/{incident_id}/explain
    register_dashboard(sla_app, rollups, cluster, backend)
    register_capacity(sla_app)
    return cluster
