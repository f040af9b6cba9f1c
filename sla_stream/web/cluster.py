"""Read data that other workers own: incidents by fan-out, per-contract figures by routing.

Why fan out rather than keep a shared view: each incident's record already lives on exactly
one worker (the owner of its partition), and the hot path is allowed one table write per event
(DESIGN "Performance facts"); a shared, globally readable copy would add a second write and a
changelog send to every event for the sake of a page read now and then. A read instead asks
every member for the partitions it owns, using the map Faust's assignor already distributes to
all members (`app.router.table_metadata`, the same map `app.table_route` routes by), and
checks that the answers cover every partition: during a rebalance, or with a member down, the
caller learns which partitions are missing instead of silently showing less.

Per-contract figures (adherence rollups) live on one worker each; a request for a contract
goes to the worker's own `table_route`d endpoint, which forwards it to the owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from sla_stream.web.access import Access
from sla_stream.web.open_incidents import IncidentFilter, LocalIncidents
from sla_stream.web.replies import json_reply

if TYPE_CHECKING:
    from sla_stream.worker_app import SlaApp

log = logging.getLogger(__name__)

INCIDENTS_PATH = "/api/v1/cluster/incidents"
PEER_TIMEOUT_S = 10.0
INCIDENTS_TABLE = "incidents"


@dataclass
class Gathered:
    """Incidents (as JSON) from every member, and the partitions no member answered for."""

    incidents: list[dict[str, Any]] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def _url_key(url: Any) -> str:
    return str(url).rstrip("/")


class Cluster:
    """Fan-out reads over the members of the group, and HTTP calls to this worker's own API."""

    def __init__(self, sla_app: SlaApp, local: LocalIncidents) -> None:
        self.sla = sla_app
        self.local = local

    @property
    def self_url(self) -> str:
        return _url_key(self.sla.faust.conf.canonical_url)

    def owners(self) -> dict[str, set[int]]:
        """Member URL -> partitions of the incidents table it owns (actives), as assigned."""
        app = self.sla.faust
        topic = app.tables[INCIDENTS_TABLE].changelog_topic.get_topic_name()
        meta = app.router.table_metadata(INCIDENTS_TABLE)
        return {_url_key(url): set(tps.get(topic, ())) for url, tps in meta.items()}

    async def incidents(self, flt: IncidentFilter, now: datetime) -> Gathered:
        """Every member's incidents that `flt` keeps, read at `now`."""
        wanted = set(range(self.sla.settings.partitions))
        owners = self.owners()
        calls = []
        for url, partitions in owners.items():
            asked = partitions & wanted
            if not asked:
                continue
            if url == self.self_url:
                calls.append(self._local(asked, flt, now))
            else:
                calls.append(self._remote(url, asked, flt, now))
        out = Gathered()
        served: set[int] = set()
        for got in await asyncio.gather(*calls):
            if got is None:
                continue
            part, incidents = got
            served |= part
            out.incidents.extend(incidents)
        out.missing = sorted(wanted - served)
        out.incidents.sort(key=lambda i: (i["contract_id"], i["incident_id"]))
        return out

    async def _local(
        self, partitions: set[int], flt: IncidentFilter, now: datetime
    ) -> tuple[set[int], list[dict[str, Any]]]:
        views, served = await self.local.views(partitions)
        return served, [v.to_json(now) for v in views if flt.keeps(v, now)]

    async def _remote(
        self, url: str, partitions: set[int], flt: IncidentFilter, now: datetime
    ) -> tuple[set[int], list[dict[str, Any]]] | None:
        params = {
            **flt.to_params(),
            "partitions": ",".join(str(p) for p in sorted(partitions)),
            "at": now.isoformat(),
        }
        status, body = await self.get(url + INCIDENTS_PATH, params)
        if status != 200 or not isinstance(body, dict):
            log.warning("member %s did not answer for partitions %s: %s", url, partitions, status)
            return None
        return set(body["partitions"]), body["incidents"]

    async def get(self, url: str, params: Mapping[str, str]) -> tuple[int, Any]:
        """GET a member's JSON document; (status, body), or (0, None) when it is unreachable."""
        client = self.sla.faust.http_client
        try:
            async with client.get(
                url,
                params=dict(params),
                headers=self.sla.routes.keys.cluster_headers,  # members ask with the secret
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S),
            ) as response:
                raw = await response.read()
                try:
                    return response.status, orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    return response.status, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("GET %s failed: %s", url, exc)
            return 0, None

    async def get_own(self, path: str, params: Mapping[str, str]) -> tuple[int, Any]:
        """GET this worker's own endpoint (a `table_route`d one forwards to the owner)."""
        return await self.get(self.self_url + path, params)


def member_query(params: Mapping[str, str]) -> tuple[IncidentFilter, datetime, set[int]]:
    """The member endpoint's filter, instant and partitions; KeyError or ValueError if bad."""
    flt = IncidentFilter.from_params(params)
    at = datetime.fromisoformat(params["at"])
    if at.utcoffset() is None:
        # Views compare `at` with aware due instants: a naive one cannot be placed in time.
        raise ValueError(f"'at' must have a UTC offset, got {params['at']!r}")
    asked = {int(p) for p in params.get("partitions", "").split(",") if p}
    return flt, at, asked


def register_cluster_views(sla_app: SlaApp, cluster: Cluster) -> None:
    """The members' endpoint: incidents of the asked partitions this worker owns."""

    @sla_app.routes.page(INCIDENTS_PATH, Access.CLUSTER)
    async def cluster_incidents(view: Any, request: Any) -> Any:
        try:
            flt, at, asked = member_query(request.query)
        except (KeyError, ValueError) as exc:
            return json_reply(view, {"error": f"bad parameters: {exc}"}, 400)
        served, incidents = await cluster._local(asked, flt, at)
        body = {"partitions": sorted(served), "incidents": incidents}
        return json_reply(view, body)
