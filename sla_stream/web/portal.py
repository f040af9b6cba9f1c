"""The client portal API: each customer's commitments, incidents and adherence, and nothing else.

    GET /api/v1/portal/commitments   [contract]
    GET /api/v1/portal/incidents     [contract] [incident] [lifecycle=open|all]
    GET /api/v1/portal/adherence     [contract] [from] [to] [step] [metric]
    GET /api/v1/portal/incidents/{incident_id}/explain   each clock's deadline, derived

Every request carries `Authorization: Bearer <token>`. The worker knows tokens only by their
SHA-256 digest, each naming its customer (`SLA_PORTAL_TOKEN_HASHES`, entries
`<digest>:<customer_id>`, printed by `sla-stream token hash`). The customer comes from the
token alone; parameters only narrow inside it:

- no token, or one that matches no digest: 401 with `WWW-Authenticate: Bearer`;
- a `contract` or `incident` that is not the customer's, whether it belongs to another
  customer or does not exist, and a `customer` other than the token's: 404 with the same body,
  so an answer never tells whether another customer's thing exists;
- an unknown parameter: 400 (a typo must not silently widen or narrow an answer).

Commitments and incidents are served per contract version and per incident, so a contract with
some versions of another customer shows only the asking customer's. Adherence figures are
counted per contract, with no customer in them: a contract is served there only when every one
of its versions is the customer's, and otherwise answers as one that is not theirs (404).

Incidents come from every worker (see `cluster.py`); when a partition has no answer (a
rebalance, a member down) the answer is 503 with `Retry-After` rather than a partial list a
syncing portal would take for the truth. "Recent" incidents are those resolved, closed or
cancelled at most `SLA_PORTAL_RECENT_DAYS` ago.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sla_stream.analytics.adherence import contract_zone
from sla_stream.core.periods import next_period_start, period_start, quarter_of
from sla_stream.core.terms import ContractRecord
from sla_stream.web.auth import TokenSet, parse_entry
from sla_stream.web.commitments import commitments_json
from sla_stream.web.explain_path import PORTAL_EXPLAIN_ROUTE
from sla_stream.web.open_incidents import IncidentFilter
from sla_stream.web.replies import Reply, send_reply

if TYPE_CHECKING:
    from sla_stream.web.cluster import Gathered
    from sla_stream.web.explain import Found
    from sla_stream.worker_app import SlaApp

log = logging.getLogger(__name__)

PREFIX = "/api/v1/portal"
ADHERENCE_API = "/api/v1/adherence"
RETRY_AFTER_S = 5
DEFAULT_QUARTERS = 4
_PARAMS = {
    "commitments": {"contract", "customer"},
    "incidents": {"contract", "customer", "incident", "lifecycle"},
    "adherence": {"contract", "customer", "from", "to", "step", "metric"},
    "explain": {"customer"},
}
NOT_FOUND = {"error": "not found"}
# Endpoints whose figures cover a whole contract (every version, no customer in them).
_WHOLE_CONTRACT = frozenset({"adherence"})


class Backend(Protocol):
    """What the portal reads; the worker's is `WorkerBackend`, tests may bring their own."""

    def contracts(self) -> Iterable[ContractRecord]: ...

    async def incidents(self, flt: IncidentFilter, now: datetime) -> Gathered: ...

    async def adherence(self, params: Mapping[str, str]) -> tuple[int, Any]: ...

    async def explain(self, incident_id: str, now: datetime) -> Found: ...


def portal_tokens(entries: Iterable[str]) -> TokenSet:
    """The portal's token set; every entry must name its customer (`<digest>:<customer_id>`)."""
    credentials = []
    for position, entry in enumerate((e for e in entries if e.strip()), start=1):
        try:
            credential = parse_entry(entry)
        except ValueError as exc:  # never echo the entry: it may be a token in clear
            raise ValueError(f"portal token hash entry {position}: {exc}") from None
        if credential.principal is None:
            raise ValueError(
                f"portal token hash entry {position}: name the customer, `<digest>:<customer_id>`"
            )
        credentials.append(credential)
    return TokenSet(credentials)


def _owned_versions(
    record: ContractRecord, customer: str, whole: bool = False
) -> ContractRecord | None:
    """The contract with only `customer`'s versions; None if it has none, or, with `whole`,
    if any version is someone else's (a contract-wide figure would include their outcomes)."""
    versions = tuple(v for v in record.versions if v.customer_id == customer)
    if not versions or (whole and len(versions) != len(record.versions)):
        return None
    return (
        record
        if len(versions) == len(record.versions)
        else record.model_copy(update={"versions": versions})
    )


def default_range(record: ContractRecord, now: datetime) -> tuple[str, str]:
    """The current calendar quarter and the three before it, in the contract's zone."""
    tz = contract_zone(record)
    start = period_start(now, tz, "quarter")
    end = next_period_start(start, tz, "quarter")
    for _ in range(DEFAULT_QUARTERS - 1):
        start = period_start(start - timedelta(days=1), tz, "quarter")
    return quarter_of(start, tz), quarter_of(end, tz)


class Portal:
    """The three endpoints as plain methods: (Authorization header, query) -> Reply."""

    def __init__(
        self,
        backend: Backend,
        tokens: TokenSet,
        recent_days: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.backend = backend
        self.tokens = tokens
        self.recent_s = recent_days * 86_400
        self.now = now

    # -- who is asking, and what is theirs -------------------------------------------------------

    def _scope(
        self, endpoint: str, authorization: str | None, params: Mapping[str, str]
    ) -> tuple[str, dict[str, ContractRecord]] | Reply:
        credential = self.tokens.authenticate(authorization)
        if credential is None or credential.principal is None:
            return Reply(
                401,
                {"error": "a valid bearer token is required"},
                {"WWW-Authenticate": 'Bearer realm="sla-stream portal"'},
            )
        customer = credential.principal
        unknown = sorted(set(params) - _PARAMS[endpoint])
        if unknown:
            return Reply(400, {"error": f"unknown parameter {unknown[0]!r}"})
        if params.get("customer", customer) != customer:
            return Reply(404, NOT_FOUND)
        owned: dict[str, ContractRecord] = {}
        whole = endpoint in _WHOLE_CONTRACT
        for record in self.backend.contracts():
            mine = _owned_versions(record, customer, whole)
            if mine is not None:
                owned[record.contract_id] = mine
        asked = params.get("contract")
        if asked is not None:
            if asked not in owned:
                return Reply(404, NOT_FOUND)
            owned = {asked: owned[asked]}
        return customer, owned

    # -- endpoints ---------------------------------------------------------------------------------

    async def commitments(self, authorization: str | None, params: Mapping[str, str]) -> Reply:
        scope = self._scope("commitments", authorization, params)
        if isinstance(scope, Reply):
            return scope
        customer, owned = scope
        now = self.now()
        return Reply(
            200,
            {
                "customer_id": customer,
                "as_of": now.isoformat(),
                "contracts": [commitments_json(owned[c], now) for c in sorted(owned)],
            },
        )

    async def incidents(self, authorization: str | None, params: Mapping[str, str]) -> Reply:
        scope = self._scope("incidents", authorization, params)
        if isinstance(scope, Reply):
            return scope
        customer, owned = scope
        lifecycle = params.get("lifecycle", "all")
        if lifecycle not in ("open", "all"):
            return Reply(400, {"error": f"'lifecycle' must be open or all, got {lifecycle!r}"})
        now = self.now()
        flt = IncidentFilter(
            contracts=frozenset(owned),
            incident_id=params.get("incident") or None,
            recent_s=None if lifecycle == "open" else self.recent_s,
        )
        if not owned:
            return Reply(200, {"customer_id": customer, "as_of": now.isoformat(), "incidents": []})
        gathered = await self.backend.incidents(flt, now)
        if not gathered.complete:
            return Reply(
                503,
                {"error": "some partitions are not available", "missing": gathered.missing},
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        # The filter ran on the owners; check again here, since this is the boundary.
        found = [i for i in gathered.incidents if i["customer_id"] == customer]
        if flt.incident_id is not None and not found:
            return Reply(404, NOT_FOUND)
        return Reply(200, {"customer_id": customer, "as_of": now.isoformat(), "incidents": found})

    async def adherence(self, authorization: str | None, params: Mapping[str, str]) -> Reply:
        scope = self._scope("adherence", authorization, params)
        if isinstance(scope, Reply):
            return scope
        customer, owned = scope
        now = self.now()
        reports = []
        for contract_id in sorted(owned):
            start, end = default_range(owned[contract_id], now)
            query = {
                "contract": contract_id,
                "from": params.get("from", start),
                "to": params.get("to", end),
                "step": params.get("step", "quarter"),
            }
            if params.get("metric"):
                query["metric"] = params["metric"]
            status, body = await self.backend.adherence(query)
            if status == 400:
                return Reply(400, body)
            if status != 200:
                return Reply(503, {"error": "adherence not available"}, {"Retry-After": "5"})
            reports.append(body)
        return Reply(200, {"customer_id": customer, "as_of": now.isoformat(), "contracts": reports})

    async def explain(
        self, authorization: str | None, incident_id: str, params: Mapping[str, str]
    ) -> Reply:
        """An incident's explained deadlines (`core/explain.py`), if it is the customer's: one of
        another customer, or none at all, is the same 404."""
        scope = self._scope("explain", authorization, params)
        if isinstance(scope, Reply):
            return scope
        customer, owned = scope
        found = await self.backend.explain(incident_id, self.now())
        body = found.explanation
        if body is None and found.missing:
            return Reply(
                503,
                {"error": "some partitions are not available", "missing": found.missing},
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        if body is None or body["customer_id"] != customer or body["contract_id"] not in owned:
            return Reply(404, NOT_FOUND)
        return Reply(200, body)


class WorkerBackend:
    """The portal's reads on a worker: the contracts table, the cluster, the adherence API."""

    def __init__(self, sla_app: SlaApp, cluster: Any) -> None:
        self.sla = sla_app
        self.cluster = cluster

    def contracts(self) -> Iterable[ContractRecord]:
        for key in list(self.sla.contracts_table):
            cid = key.decode() if isinstance(key, bytes) else key
            record = self.sla.contract(cid)
            if record is not None:
                yield record

    async def incidents(self, flt: IncidentFilter, now: datetime) -> Gathered:
        return await self.cluster.incidents(flt, now)

    async def adherence(self, params: Mapping[str, str]) -> tuple[int, Any]:
        return await self.cluster.get_own(ADHERENCE_API, params)

    async def explain(self, incident_id: str, now: datetime) -> Found:
        from sla_stream.web.explain import find_explanation  # explain.py imports access.py

        return await find_explanation(self.cluster, incident_id, now)


def register_portal_views(sla_app: SlaApp, cluster: Any) -> Portal:
    """Add the portal endpoints to the worker's web server."""
    from sla_stream.web.access import Access  # access.py reads portal tokens: import late

    settings = sla_app.settings
    tokens = portal_tokens(settings.portal_token_hashes)
    if not len(tokens):
        log.warning("portal: no SLA_PORTAL_TOKEN_HASHES configured; %s/* answers 401", PREFIX)
    portal = Portal(WorkerBackend(sla_app, cluster), tokens, settings.portal_recent_days)

    for name in ("commitments", "incidents", "adherence"):
        method = getattr(portal, name)

        def handler(method: Any = method) -> Any:
            async def endpoint(view: Any, request: Any) -> Any:
                auth = request.headers.get("Authorization")
                return send_reply(view, await method(auth, request.query))

            return endpoint

        sla_app.routes.page(f"{PREFIX}/{name}", Access.PORTAL, name=f"portal_{name}")(handler())

    @sla_app.routes.page(PORTAL_EXPLAIN_ROUTE, Access.PORTAL, name="portal_explain")
    async def explain_endpoint(view: Any, request: Any, **_: Any) -> Any:
        auth, incident_id = request.headers.get("Authorization"), request.match_info["incident_id"]
        return send_reply(view, await portal.explain(auth, incident_id, request.query))

    return portal
