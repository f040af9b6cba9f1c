"""`GET /api/v1/adherence`: a contract's adherence report, answered by the worker that owns it.

Query parameters: `contract` (required), `from` and `to` (required: RFC 3339 instants with an
offset, local dates `2026-04-01` or quarters `2026-Q2`, read in the contract's zone), `step`
(`hour`, `day` or `quarter`; default `day`) and `metric` (`first_response` or `resolution`;
default both). The body is `analytics.adherence.report`'s JSON: per metric a rate with numerator
and denominator per period, breaches per calendar quarter, and response-time trends per category.

`GET /api/v1/adherence/contracts` lists the contract ids this worker knows (every worker knows
all of them: contracts are a global table), so a client can report on every contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sla_stream.analytics.adherence import Query, contract_zone
from sla_stream.core.models import METRICS
from sla_stream.core.periods import STEPS, Step, next_period_start, parse_bound, period_start
from sla_stream.core.terms import ContractRecord
from sla_stream.web.access import Access
from sla_stream.web.replies import json_reply

if TYPE_CHECKING:
    from sla_stream.stream.rollups import Rollups
    from sla_stream.worker_app import SlaApp

PATH = "/api/v1/adherence"
CONTRACTS_PATH = "/api/v1/adherence/contracts"
MAX_PERIODS = 10_000  # an hourly series of more than a year is a mistake, not a chart


class BadRequest(ValueError):
    """A parameter the caller must fix; the message names it."""


# No local day or quarter lasts longer than this (real seconds): a DST day is 25 h, the longest
# day on record (Alaska's 1867 move across the date line) 48 h; a quarter is 92 days and such a
# day. A span longer than MAX_PERIODS of them has more than MAX_PERIODS periods. (Hours are
# limited by real hours, as they always were.)
_LONGEST_S = {"day": 3 * 86_400, "quarter": 100 * 86_400}
_TICK = timedelta(microseconds=1)


def parse_query(params: Mapping[str, str], record: ContractRecord | None) -> Query:
    """Validate the query string into a `Query`; raise `BadRequest` naming the parameter."""
    contract_id = params.get("contract", "")
    if not contract_id:
        raise BadRequest("'contract' is required")
    if record is None:
        raise LookupError(f"unknown contract {contract_id!r}")
    tz = contract_zone(record)
    step = params.get("step", "day")
    if step not in STEPS:
        raise BadRequest(f"'step' must be one of {', '.join(STEPS)}, got {step!r}")
    metric = params.get("metric") or None
    if metric is not None and metric not in METRICS:
        raise BadRequest(f"'metric' must be one of {', '.join(METRICS)}, got {metric!r}")
    texts: dict[str, str] = {}
    for name in ("from", "to"):
        texts[name] = params.get(name, "")
        if not texts[name]:
            raise BadRequest(f"'{name}' is required")
    from_at, to_at = (read_bound(n, t, tz) for n, t in texts.items())
    check_range(texts, from_at, to_at, tz, step)  # type: ignore[arg-type]
    return Query(contract_id, tz, from_at, to_at, step, metric)  # type: ignore[arg-type]


def read_bound(name: str, text: str, tz: str) -> datetime:
    """`parse_bound`, with any failure (a bad value, a year past the calendar) a `BadRequest`."""
    try:
        return parse_bound(text, tz)
    except OverflowError as exc:
        raise BadRequest(f"'{name}' {text!r} is out of range: {exc}") from exc
    except ValueError as exc:
        raise BadRequest(f"'{name}' {text!r} is not a date, quarter or instant: {exc}") from exc


def check_range(
    texts: Mapping[str, str], from_at: datetime, to_at: datetime, tz: str, step: Step
) -> None:
    """Refuse a range with more than MAX_PERIODS periods, or whose periods leave the calendar.

    The span is judged from `to - from` before any period is listed, and the count stops at
    MAX_PERIODS + 1, so no request makes the server list millions of periods. The first and the
    after-last period of `step` and of quarters (what a report computes) are computed here, so
    a range at the ends of the calendar (years 1 and 9999) is refused instead of failing later.
    """
    if to_at <= from_at:
        raise BadRequest("'to' must be after 'from'")
    span_s = (to_at - from_at).total_seconds()
    if step == "hour" and span_s > MAX_PERIODS * 3600:
        raise BadRequest(f"more than {MAX_PERIODS} hourly periods; use step=day")
    if step != "hour" and span_s > MAX_PERIODS * _LONGEST_S[step]:
        raise BadRequest(f"more than {MAX_PERIODS} periods; use a longer step")
    for name, instant in (("from", from_at), ("to", to_at - _TICK)):
        try:
            for s in dict.fromkeys((step, "quarter")):
                start = period_start(instant, tz, s)  # type: ignore[arg-type]
                if name == "to":
                    next_period_start(start, tz, s)  # type: ignore[arg-type]
        except (OverflowError, ValueError) as exc:
            raise BadRequest(
                f"'{name}' {texts[name]!r} is too near the end of the calendar: {exc}"
            ) from exc
    if _count_periods(from_at, to_at, tz, step, MAX_PERIODS + 1) > MAX_PERIODS:
        raise BadRequest(f"more than {MAX_PERIODS} periods; use a longer step")


def _count_periods(from_at: datetime, to_at: datetime, tz: str, step: Step, limit: int) -> int:
    # `period_starts` without the list, stopping at `limit`.
    count, start = 0, period_start(from_at, tz, step)
    while start < to_at and count < limit:
        count += 1
        start = next_period_start(start, tz, step)
    return count


def register_adherence_views(sla_app: SlaApp, rollups: Rollups, table: Any) -> None:
    """Add the adherence endpoints to the worker's web server."""
    app = sla_app.faust

    @app.table_route(table=table, query_param="contract")
    async def owned(view: Any, request: Any) -> Any:
        # Runs on the worker owning the contract's partition (table_route forwarded it here).
        params = request.query
        try:
            query = parse_query(params, sla_app.contract(params.get("contract", "")))
        except BadRequest as exc:
            return json_reply(view, {"error": str(exc)}, 400)
        except LookupError as exc:
            return json_reply(view, {"error": str(exc)}, 404)
        return json_reply(view, rollups.query(query))

    @sla_app.routes.page(PATH, Access.VIEWER)
    async def adherence_view(view: Any, request: Any) -> Any:
        if not request.query.get("contract"):
            return json_reply(view, {"error": "'contract' is required"}, 400)
        return await owned(view, request)

    @sla_app.routes.page(CONTRACTS_PATH, Access.VIEWER)
    async def contracts_view(view: Any, request: Any) -> Any:
        ids = sorted(_text(k) for k in sla_app.contracts_table)
        return json_reply(view, {"contracts": ids})


def _text(key: str | bytes) -> str:
    return key.decode() if isinstance(key, bytes) else key
