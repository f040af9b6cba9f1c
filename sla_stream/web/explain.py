"""`GET /api/v1/incidents/{incident_id}/explain`: each clock's deadline and how it was derived.

The incident's record lives on the worker owning its partition. As for the incident lists
(`cluster.py`), a request asks every member for the partitions it owns
(`/api/v1/cluster/explain`), and the member holding the record explains it with the core
(`core/explain.py`) at the reading instant the asking worker chose. Answers: 200 with the
explanation; 404 when every partition answered and none holds the incident; 503 with
`Retry-After` when it was not found and some partitions had no answer (a rebalance, a member
down). The portal serves the same for the token's customer's incidents only (`portal.py`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sla_stream.core.explain import explain
from sla_stream.web.access import Access
from sla_stream.web.explain_path import EXPLAIN_ROUTE
from sla_stream.web.replies import json_reply

if TYPE_CHECKING:
    from sla_stream.web.cluster import Cluster
    from sla_stream.worker_app import SlaApp

log = logging.getLogger(__name__)

MEMBER_PATH = "/api/v1/cluster/explain"
RETRY_AFTER_S = 5
NOT_FOUND = {"error": "not found"}


@dataclass
class Found:
    """The explanation (JSON) if a member holds the incident, and the partitions unanswered."""

    explanation: dict[str, Any] | None = None
    missing: list[int] = field(default_factory=list)


def explain_local(
    sla_app: SlaApp, incident_id: str, partitions: set[int], now: datetime
) -> tuple[set[int], dict[str, Any] | None]:
    """The partitions of `partitions` this worker serves, and the explanation if one holds it."""
    served = partitions & set(sla_app.store.partitions)
    record = sla_app.store.load_active(incident_id, served)
    if record is None:
        return served, None
    state = record.state
    contract = sla_app.contract(state.contract_id) if state.contract_id else None
    return served, explain(state, contract, now).to_json()


async def find_explanation(cluster: Cluster, incident_id: str, now: datetime) -> Found:
    """Ask every member for the incident on the partitions it owns, read at `now`."""
    sla_app = cluster.sla
    wanted = set(range(sla_app.settings.partitions))

    async def ask(url: str, asked: set[int]) -> tuple[set[int], dict[str, Any] | None] | None:
        if url == cluster.self_url:
            return explain_local(sla_app, incident_id, asked, now)
        params = {
            "incident": incident_id,
            "at": now.isoformat(),
            "partitions": ",".join(str(p) for p in sorted(asked)),
        }
        status, body = await cluster.get(url + MEMBER_PATH, params)
        if status != 200 or not isinstance(body, dict):
            log.warning("member %s did not answer for partitions %s: %s", url, asked, status)
            return None
        return set(body["partitions"]), body["explanation"]

    calls = [ask(url, ps & wanted) for url, ps in cluster.owners().items() if ps & wanted]
    found, served = Found(), set()
    for got in await asyncio.gather(*calls):
        if got is None:
            continue
        served |= got[0]
        found.explanation = found.explanation or got[1]
    found.missing = sorted(wanted - served)
    return found


def found_reply(view: Any, found: Found) -> Any:
    if found.explanation is not None:
        return json_reply(view, found.explanation)
    if found.missing:
        body = {"error": "some partitions are not available", "missing": found.missing}
        return json_reply(view, body, 503, {"Retry-After": str(RETRY_AFTER_S)})
    return json_reply(view, NOT_FOUND, 404)


def register_explain_views(sla_app: SlaApp, cluster: Cluster) -> None:
    """The staff's explain route (viewer) and the members' endpoint it fans out to (cluster)."""
    assert sla_app.routes is not None

    @sla_app.routes.page(EXPLAIN_ROUTE, Access.VIEWER, name="incident_explain")
    async def explain_view(view: Any, request: Any, **_: Any) -> Any:
        incident_id = request.match_info["incident_id"]
        return found_reply(view, await find_explanation(cluster, incident_id, datetime.now(UTC)))

    @sla_app.routes.page(MEMBER_PATH, Access.CLUSTER)
    async def member_explain(view: Any, request: Any) -> Any:
        params = request.query
        try:
            at = datetime.fromisoformat(params["at"])
            if at.utcoffset() is None:
                raise ValueError(f"'at' must have a UTC offset, got {params['at']!r}")
            asked = {int(p) for p in params.get("partitions", "").split(",") if p}
            incident_id = params["incident"]
        except (KeyError, ValueError) as exc:
            return json_reply(view, {"error": f"bad parameters: {exc}"}, 400)
        served, explanation = explain_local(sla_app, incident_id, asked, at)
        return json_reply(view, {"partitions": sorted(served), "explanation": explanation})
