"""Admin routes of a worker: `GET`/`POST /api/v1/admin/resume-events` (the dead-letter limit).

`GET` shows the limit's state; `POST` resumes the events topic that the limit paused (200 with
`{"resumed": true|false, ...}`: false when it was not paused). Both need a bearer token whose
SHA-256 is in `SLA_ADMIN_TOKEN_HASHES`; with none configured they answer clients on loopback only
(403 to anyone else), so a worker reachable from the network is not resumed by whoever asks.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from sla_stream.stream.dead_letter_limit import EventsGate
from sla_stream.web.auth import TokenSet
from sla_stream.web.replies import Reply, json_reply, send_reply

if TYPE_CHECKING:
    from sla_stream.web.access import Routes

RESUME_EVENTS_PATH = "/api/v1/admin/resume-events"

log = logging.getLogger(__name__)


class AdminAccess:
    """Admin tokens if configured, else loopback clients only."""

    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = tokens

    def refusal(self, authorization: str | None, remote: str | None) -> Reply | None:
        """None when allowed; else the 401 or 403 to answer."""
        if self.tokens:
            if self.tokens.authenticate(authorization) is None:
                return Reply(401, {"error": "a valid admin bearer token is required"})
            return None
        if not _is_loopback(remote):
            return Reply(
                403,
                {"error": "no SLA_ADMIN_TOKEN_HASHES set: admin routes answer loopback only"},
            )
        return None


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def resume_events(gate: EventsGate, who: str) -> Reply:
    resumed = gate.resume()
    if resumed:
        log.warning("resume of the events topic requested by %s", who)
    return Reply(200, {"resumed": resumed, **gate.status()})


def register_admin_views(routes: Routes, gate: EventsGate) -> None:
    """Add the admin routes to the worker's web server; the access gate checks the caller
    (`Access.ADMIN`, with `AdminAccess` above) before a view runs."""
    from faust.web import View

    from sla_stream.web.access import Access

    class ResumeEventsView(View):
        async def get(self, request: Any, **kwargs: Any) -> Any:
            return json_reply(self, gate.status())

        async def post(self, request: Any, **kwargs: Any) -> Any:
            authorization = request.headers.get("Authorization")
            who = "a token holder" if authorization else f"loopback client {request.remote}"
            return send_reply(self, resume_events(gate, who))

    routes.page(RESUME_EVENTS_PATH, Access.ADMIN, name="admin_resume_events")(ResumeEventsView)
