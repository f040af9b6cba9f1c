"""Where an incident's explanation is served: one spelling for the routes and the links."""

from __future__ import annotations

from urllib.parse import quote

EXPLAIN_ROUTE = "/api/v1/incidents/{incident_id}/explain"
PORTAL_EXPLAIN_ROUTE = "/api/v1/portal/incidents/{incident_id}/explain"


def explain_path(incident_id: str, *, portal: bool = False) -> str:
    """The explanation's path for `incident_id` (quoted: an id may hold any character)."""
    route = PORTAL_EXPLAIN_ROUTE if portal else EXPLAIN_ROUTE
    return route.replace("{incident_id}", quote(incident_id, safe=""))
