"""`GET /api/v1/incidents/at-risk`: this worker's open incidents by forecast breach risk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sla_stream.web.access import Access
from sla_stream.web.replies import json_reply

if TYPE_CHECKING:
    from sla_stream.worker_app import SlaApp

PATH = "/api/v1/incidents/at-risk"
DEFAULT_LIMIT = 50


def register_risk_views(sla_app: SlaApp) -> None:
    """Add the at-risk endpoint (viewer access); without a model it answers 404 saying so."""
    assert sla_app.routes is not None

    @sla_app.routes.page(PATH, Access.VIEWER)
    async def at_risk_view(view: Any, request: Any) -> Any:
        watch = sla_app.steps.risk
        if watch is None:
            body = {"error": "no forecast model configured (SLA_FORECAST_MODEL)"}
            return json_reply(view, body, 404)
        try:
            limit = int(request.query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            body = {"error": f"'limit' must be an integer, not {request.query.get('limit')!r}"}
            return json_reply(view, body, 400)
        body = {
            "model_version": watch.model.version,
            "partitions": "this worker's",
            "incidents": watch.at_risk_now()[: max(limit, 0)],
        }
        return json_reply(view, body)
