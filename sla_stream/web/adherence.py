"""`GET /api/v1/adherence`: a contract's adherence report, answered by the worker that owns it.

Query parameters: `contract` (required), `from` and `to` (RFC 3339 instants with an
offset, local dates `2026-04-01` or quarters `2026-Q2`, read in the contract's zone; without
both, the periods up to the latest one holding settled clocks, see `page_budget`), `step`
(`hour`, `day` or `quarter`; default `day`) and `metric` (`first_response`, `resolution`,
`update`; default all). A range of more than `MAX_API_PERIODS` periods at its step is a 400
naming the step that fits. The body is `analytics.adherence.report`'s JSON: per metric a rate
with numerator and denominator per period, breaches per calendar quarter, and response-time
trends per category.

`GET /api/v1/adherence/contracts` lists the contract ids this worker knows (every worker knows
all of them: contracts are a global table), so a client can report on every contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sla_stream.analytics.adherence import Query, contract_zone
from sla_stream.core.models import METRICS
from sla_stream.core.periods import STEPS, Step, next_period_start, parse_bound, period_start
from sla_stream.core.terms import ContractRecord
from sla_stream.web.access import Access
from sla_stream.web.page_budget import (
    MAX_API_PERIODS,
    STEP_WORDS,
    count_periods,
    default_range,
    default_range_text,
)
from sla_stream.web.replies import json_reply

if TYPE_CHECKING:
    from sla_stream.stream.rollups import Rollups
    from sla_stream.worker_app import SlaApp

PATH = "/api/v1/adherence"
CONTRACTS_PATH = "/api/v1/adherence/contracts"
MAX_PERIODS = MAX_API_PERIODS


class BadRequest(ValueError):
    """A parameter the caller must fix; the message names it."""


class TooManyPeriods(BadRequest):
    """More periods than the budget at the step asked; `fits` is the finest step that fits."""

    def __init__(self, message: str, fits: Step | None, count: int = 0) -> None:
        super().__init__(message)
        self.fits = fits
        self.count = count  # periods at `fits`


# No local hour, day or quarter lasts longer than this (real seconds): a fall-back hour is at
# most 2 h, a DST day 25 h, the longest day on record (Alaska's 1867 move across the date line)
# 48 h; a quarter is 92 days and such a day. A span longer than N of them has more than N
# periods, which is known without listing any.
_LONGEST_S = {"hour": 2 * 3600, "day": 3 * 86_400, "quarter": 100 * 86_400}
_TICK = timedelta(microseconds=1)


def parse_query(
    params: Mapping[str, str],
    record: ContractRecord | None,
    default_end: datetime | None = None,
    budget: int = MAX_API_PERIODS,
) -> Query:
    """Validate the query string into a `Query`; raise `BadRequest` naming the parameter.

    Without `from` and `to`, the default periods ending with the one holding `default_end`
    (the latest settled clock); with no `default_end`, both are required."""
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
    texts = {name: params.get(name, "") for name in ("from", "to")}
    if not texts["from"] and not texts["to"] and default_end is not None:
        texts["from"], texts["to"] = default_range(default_end, tz, step)  # type: ignore[arg-type]
    for name, text in texts.items():
        if not text:
            raise BadRequest(f"'{name}' is required")
    from_at, to_at = (read_bound(n, t, tz) for n, t in texts.items())
    check_range(texts, from_at, to_at, tz, step, budget)  # type: ignore[arg-type]
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
    texts: Mapping[str, str],
    from_at: datetime,
    to_at: datetime,
    tz: str,
    step: Step,
    budget: int = MAX_API_PERIODS,
) -> None:
    """Refuse a range whose periods leave the calendar, or with more than `budget` periods
    (`TooManyPeriods`, naming the finest coarser step that fits).

    The first and the after-last period of `step` and of quarters (what a report computes) are
    computed first, so a range at the ends of the calendar (years 1 and 9999) is refused instead
    of failing later. A span longer than `budget` of a step's longest periods is judged from
    `to - from` without listing any, and counts stop at `budget + 1`, so no request makes the
    server list millions of periods.
    """
    if to_at <= from_at:
        raise BadRequest("'to' must be after 'from'")
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
    span_s = (to_at - from_at).total_seconds()
    for candidate in STEPS[STEPS.index(step) :]:
        if span_s > budget * _LONGEST_S[candidate]:
            continue
        count = count_periods(from_at, to_at, tz, candidate, budget + 1)  # type: ignore[arg-type]
        if count > budget:
            continue
        if candidate == step:
            return
        raise TooManyPeriods(
            f"more than {budget:,} {STEP_WORDS[step]} periods; step={candidate} fits "
            f"({count:,} periods)",
            candidate,  # type: ignore[arg-type]
            count,
        )
    raise TooManyPeriods(
        f"more than {budget:,} {STEP_WORDS[step]} periods, and more than {budget:,} even by "
        "quarter; use a shorter range",
        None,
    )


def register_adherence_views(sla_app: SlaApp, rollups: Rollups, table: Any) -> None:
    """Add the adherence endpoints to the worker's web server."""
    app = sla_app.faust

    @app.table_route(table=table, query_param="contract")
    async def owned(view: Any, request: Any) -> Any:
        # Runs on the worker owning the contract's partition (table_route forwarded it here).
        params = request.query
        contract_id = params.get("contract", "")
        found = not params.get("from") and not params.get("to")  # the range is ours to find
        latest = rollups.latest_settled(contract_id) if found else None
        try:
            query = parse_query(params, sla_app.contract(contract_id), latest or datetime.now(UTC))
        except BadRequest as exc:
            return json_reply(view, {"error": str(exc)}, 400)
        except LookupError as exc:
            return json_reply(view, {"error": str(exc)}, 404)
        answer = rollups.query(query, datetime.now(UTC))
        if found:
            answer["default_range"] = default_range_text(query.step, latest, query.tz)
        return json_reply(view, answer)

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
