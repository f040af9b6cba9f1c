"""The adherence dashboard at `/`, its data as JSON, and the per-contract series endpoint.

    GET /                          the page (HTML, inline SVG charts, no script)
    GET /api/v1/dashboard          the same figures as JSON (same query parameters)
    GET /api/v1/dashboard/series   one contract's report and histograms, answered by its owner

Query parameters of the page: `contract`, `tier`, `severity` (P1..P4), `step` (hour, day,
quarter), `from` and `to` (dates, quarters or instants, read in each contract's zone; without
both, the periods up to the latest holding settled clocks), `category` (repeatable: the
categories charted) and `sort` (the category table's order). Any worker serves the page: each
contract's figures come from the worker owning its adherence buckets (via `table_route`), open
incidents from every member (`cluster.py`). A range with more periods than a chart shows is
shown at the finest coarser step that fits, and the page says so (`page_budget.py`). A bad
filter (including a range a chosen contract's zone cannot report on) is a 400 naming it from
the JSON endpoint, and on the page a notice above the default view.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sla_stream.analytics.adherence import contract_zone
from sla_stream.analytics.service_levels import service_levels_json
from sla_stream.core.models import METRICS, SEVERITIES
from sla_stream.core.periods import next_period_start, period_starts
from sla_stream.web import dashboard_html
from sla_stream.web.access import Access
from sla_stream.web.adherence import BadRequest, parse_query
from sla_stream.web.commitments import commitments_json
from sla_stream.web.dashboard_data import (
    BadFilter,
    Filters,
    adherence_targets,
    breaches_by_quarter,
    category_table,
    contract_rows,
    current_terms,
    portfolio,
    select_contracts,
    series,
    service_level_rows,
    trends,
)
from sla_stream.web.open_incidents import IncidentFilter, at_risk
from sla_stream.web.page_budget import default_range, default_range_text
from sla_stream.web.replies import json_reply

if TYPE_CHECKING:
    from sla_stream.stream.rollups import Rollups
    from sla_stream.web.cluster import Cluster
    from sla_stream.worker_app import SlaApp

log = logging.getLogger(__name__)

PAGE_PATH = "/"
DATA_PATH = "/api/v1/dashboard"
SERIES_PATH = "/api/v1/dashboard/series"
AT_RISK_ROWS = 15


class Dashboard:
    """Builds the page model: contracts' reports from their owners, incidents from members."""

    def __init__(
        self,
        backend: Any,
        cluster: Cluster,
        target: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.backend = backend
        self.cluster = cluster
        self.target = target
        self.now = now

    async def model(self, params: Mapping[str, str]) -> dict[str, Any]:
        now = self.now()
        filters = Filters.parse(params)
        records = {r.contract_id: r for r in self.backend.contracts()}
        chosen = select_contracts(records.values(), filters, now)
        notices = []
        if not filters.from_ and not filters.to:
            filters, notice = await self._latest_range(filters, chosen, now)
            notices.append(notice)
        filters = filters.with_range(now.date())
        # Before asking anyone: a bad range is the caller's to fix, a long one is coarsened.
        filters, coarser = filters.check_for(chosen)
        notices += [coarser] if coarser else []
        errors = []
        if filters.contract and filters.contract not in records:
            errors.append(f"unknown contract {filters.contract!r}")
        reports = await self._reports(chosen, filters, errors)
        port = portfolio(reports, filters.step)
        open_incidents = await self._open_incidents(chosen, filters, now)
        return {
            "as_of": now.isoformat(),
            "filters": filters,
            "target": self.target,
            # The target line per metric: the contracts' own service levels, else the default.
            "targets": adherence_targets(chosen, filters.severity, self.target, now),
            "service_levels": service_level_rows(reports),
            "all_contracts": sorted(records),
            "all_tiers": sorted({current_terms(r, now).tier for r in records.values()}),
            "errors": list(dict.fromkeys(errors)),
            "notices": notices,
            "portfolio": port,
            "breaches": breaches_by_quarter(reports),
            "trends": trends(reports, port["periods"], filters.categories),
            "categories": category_table(reports, filters.sort),
            "contracts": contract_rows(reports, records, now),
            "open_incidents": open_incidents,
            "commitments": (
                commitments_json(records[filters.contract], now)
                if filters.contract in records
                else None
            ),
        }

    async def _reports(
        self, chosen: list[Any], filters: Filters, errors: list[str]
    ) -> list[dict[str, Any]]:
        """Each chosen contract's adherence report, asked of its owner; who did not answer goes
        into `errors`."""
        asked = [
            self.cluster.get_own(SERIES_PATH, filters.params(contract=r.contract_id, tier=""))
            for r in chosen
        ]
        reports = []
        for record, (status, body) in zip(chosen, await asyncio.gather(*asked), strict=True):
            if status == 200:
                reports.append(body)
            else:
                why = body.get("error") if isinstance(body, dict) else "no answer from its owner"
                errors.append(f"{record.contract_id}: {why}")
        return reports

    async def _open_incidents(
        self, chosen: list[Any], filters: Filters, now: datetime
    ) -> dict[str, Any]:
        """The open incidents of the chosen contracts, from every worker, and those at risk."""
        gathered = await self.cluster.incidents(
            IncidentFilter(
                contracts=frozenset(r.contract_id for r in chosen),
                severities=frozenset({filters.severity}) if filters.severity else None,
            ),
            now,
        )
        breached = sum(
            1 for i in gathered.incidents for c in i["clocks"] if c["state"] == "breached"
        )
        return {
            "count": sum(1 for i in gathered.incidents if i["lifecycle"] == "open"),
            "breached_clocks": breached,
            "missing": gathered.missing,
            "at_risk": at_risk(gathered.incidents, AT_RISK_ROWS),
        }

    async def _latest_range(
        self, filters: Filters, chosen: list[Any], now: datetime
    ) -> tuple[Filters, str]:
        """The default periods ending with the latest settled clock of the chosen contracts
        (asked of their owners), read in that contract's zone; else ending now."""
        asked = [
            self.cluster.get_own(SERIES_PATH, {"contract": r.contract_id, "latest": "1"})
            for r in chosen
        ]
        latest, tz = None, "UTC"
        for record, (status, body) in zip(chosen, await asyncio.gather(*asked), strict=True):
            at = body.get("latest_settled_at") if status == 200 else None
            if at and (latest is None or datetime.fromisoformat(at) > latest):
                latest, tz = datetime.fromisoformat(at), contract_zone(record)
        step = filters.step  # type: ignore[assignment]
        from_, to = default_range(latest or now, tz, step)  # type: ignore[arg-type]
        filled = replace(filters, from_=from_, to=to, found=True)
        return filled, default_range_text(step, latest, tz)  # type: ignore[arg-type]


def series_answer(
    rollups: Rollups,
    sla_app: SlaApp,
    params: Mapping[str, str],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[int, Any]:
    """One contract's series from this worker's buckets (it owns the contract's partition);
    with `latest`, only the start of its latest hour holding settled clocks."""
    if params.get("latest"):
        found = rollups.latest_settled(params.get("contract", ""))
        return 200, {
            "contract": params.get("contract", ""),
            "latest_settled_at": found.isoformat() if found else None,
        }
    try:
        query = parse_query(params, sla_app.contract(params.get("contract", "")))
    except BadRequest as exc:
        return 400, {"error": str(exc)}
    except LookupError as exc:
        return 404, {"error": str(exc)}
    severity = params.get("severity") or None
    if severity is not None and severity not in SEVERITIES:
        return 400, {"error": f"'severity' must be one of {', '.join(SEVERITIES)}"}
    # Whole quarters, as `Rollups.query` reads them: breaches per quarter cover the quarters
    # the range touches.
    quarters = period_starts(query.from_at, query.to_at, query.tz, "quarter")
    lo, hi = quarters[0], next_period_start(quarters[-1], query.tz, "quarter")
    buckets = [b for m in METRICS for b in rollups.buckets(query.contract_id, m, lo, hi)]
    wanted = set(query.metrics())
    answer = series([b for b in buckets if b.key.metric in wanted], query, severity)
    levels = service_levels_json(
        sla_app.contract(query.contract_id), query.tz, buckets, query.from_at, query.to_at, now()
    )
    if levels is not None:
        answer["service_levels"] = levels  # the contract's commitments: no severity filter
    return 200, answer


def register_dashboard(sla_app: SlaApp, rollups: Rollups, cluster: Cluster, backend: Any) -> None:
    """Add the page, its JSON and the series endpoint to the worker's web server."""
    app = sla_app.faust
    # Faust mounts a status index at "/" when its web server starts; the dashboard takes "/".
    blueprints = app.web.blueprints
    blueprints._enabled = [(p, bp) for p, bp in blueprints._enabled if p != ""]
    dashboard = Dashboard(backend, cluster, sla_app.settings.adherence_target)

    @app.table_route(table=rollups.table, query_param="contract")
    async def owned_series(view: Any, request: Any) -> Any:
        status, body = series_answer(rollups, sla_app, request.query)
        return json_reply(view, body, status)

    @sla_app.routes.page(SERIES_PATH, Access.VIEWER)
    async def series_view(view: Any, request: Any) -> Any:
        if not request.query.get("contract"):
            return json_reply(view, {"error": "'contract' is required"}, 400)
        return await owned_series(view, request)

    @sla_app.routes.page(DATA_PATH, Access.VIEWER)
    async def data_view(view: Any, request: Any) -> Any:
        status, body = await data_answer(dashboard, request.query)
        return json_reply(view, body, status)

    @sla_app.routes.page(PAGE_PATH, Access.VIEWER)
    async def page_view(view: Any, request: Any) -> Any:
        return view.html(await page_answer(dashboard, request.query))


async def data_answer(dashboard: Dashboard, params: Mapping[str, str]) -> tuple[int, Any]:
    """`/api/v1/dashboard`: (200, the model) or (400, an error naming the bad filter)."""
    try:
        model = await dashboard.model(params)
    except BadFilter as exc:
        return 400, {"error": str(exc)}
    # As query parameters, not a dataclass.
    model["filters"] = model["filters"].params() | {
        "category": list(model["filters"].categories),
        "sort": model["filters"].sort,
        "found": model["filters"].found,  # from/to found at the latest settled clocks
    }
    return 200, model


async def page_answer(dashboard: Dashboard, params: Mapping[str, str]) -> str:
    """The page; with a bad filter, the default view and the error at its top (still usable)."""
    try:
        model = await dashboard.model(params)
    except BadFilter as exc:
        model = await dashboard.model({})
        model["errors"].insert(0, str(exc))
    return dashboard_html.page(model)
