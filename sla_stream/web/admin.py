"""Admin routes of a worker: `GET`/`POST /api/v1/admin/resume-events` (the dead-letter limit).

`GET` shows the limit's state; `POST` resumes the events topic that the limit paused (200 with
`{"resumed": true|false, ...}`: false when it was not paused). Both need a bearer token whose
SHA-256 is in `SLA_ADMIN_TOKEN_HASHES`; with none configured they answer clients on loopback only
(403 to anyone else), so a worker reachable from the network is not resumed by whoever asks.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from sla_stream.stream.dead_letter_limit import EventsGate
from sla_stream.web.auth import TokenSet

if TYPE_CHECKING:
    from sla_stream.web.access import Routes

RESUME_EVENTS_PATH = "/api/v1/admin/resume-events"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdminReply:
    status: int
    body: dict[str, Any]


class AdminAccess:
    """Admin tokens if configured, else loopback clients only."""

    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = tokens

    def refusal(self, authorization: str | None, remote: str | None) -> AdminReply | None:
        """None when allowed; else the 401 or 403 to answer."""
        if self.tokens:
            if self.tokens.authenticate(authorization) is None:
                return AdminReply(401, {"error": "a valid admin bearer token is required"})
            return None
        if not _is_loopback(remote):
            return AdminReply(
                403,
                {"error": "no SLA_ADMIN_TOKEN_HASHES set: admin routes answer loopback only"},
            )
        return None


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def resume_events(gate: EventsGate, who: str) -> AdminReply:
    resumed = gate.resume()
    if resumed:
        log.warning("resume of the events topic requested by %s", who)
    return AdminReply(200, {"resumed": resumed, **gate.status()})


def register_admin_views(routes: Routes, gate: EventsGate) -> None:
    """Add the admin routes to the worker's web server; the access gate checks the caller
    (`Access.ADMIN`, with `AdminAccess` above) before a view runs."""
    from faust.web import View

    from sla_stream.web.access import Access

    class ResumeEventsView(View):
        async def get(self, request: Any, **kwargs: Any) -> Any:
            return self._reply(AdminReply(200, gate.status()))

        async def post(self, request: Any, **kwargs: Any) -> Any:
            authorization = request.headers.get("Authorization")
            who = "a token holder" if authorization else f"loopback client {request.remote}"
            return self._reply(resume_events(gate, who))

        def _reply(self, reply: AdminReply) -> Any:
            return self.bytes(
                orjson.dumps(reply.body), content_type="application/json", status=reply.status
            )

    routes.page(RESUME_EVENTS_PATH, Access.ADMIN, name="admin_resume_events")(ResumeEventsView)
