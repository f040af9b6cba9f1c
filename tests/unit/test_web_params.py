"""Query parameters of the web layer: bad bounds, spans and instants are 400s naming the parameter.

The adherence query (`parse_query`) is what the adherence API, the dashboard's series endpoint
and so the portal all parse; the dashboard checks its filters with it before asking any owner.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from sla_stream.core import periods
from sla_stream.core.contracts import parse_contracts
from sla_stream.core.terms import ContractRecord
from sla_stream.web import adherence, page_budget
from sla_stream.web.adherence import MAX_PERIODS, BadRequest, TooManyPeriods, parse_query
from sla_stream.web.cluster import Gathered, member_query
from sla_stream.web.dashboard import Dashboard, data_answer, page_answer
from sla_stream.web.dashboard_data import BadFilter, Filters
from tests.unit.test_portal import RECORDS, Backend, bearer, portal
from tests.unit.test_report import CONTRACTS

BERLIN = parse_contracts(CONTRACTS)["acme"]


def in_zone(tz: str) -> ContractRecord:
    contracts = copy.deepcopy(CONTRACTS)
    contracts["contracts"][0]["timezone"] = tz
    return parse_contracts(contracts)["acme"]


def query(record: ContractRecord = BERLIN, **kw: str) -> Any:
    return parse_query({"contract": "acme", "from": "2026-01-01", "to": "2026-04-01", **kw}, record)


# -- the adherence query -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "named"),
    [
        # Berlin's first local day starts in year 0 UTC: past the calendar.
        ({"from": "0001-01-01"}, "'from' '0001-01-01'"),
        ({"from": "0001-01-01T00:00:00+05:00"}, "'from' '0001-01-01T00:00:00+05:00'"),
        # Its quarter (what breaches per quarter cover) starts before year 1.
        ({"from": "0001-01-02", "to": "0001-02-01"}, "'from' '0001-01-02'"),
        # The quarter after 9999-Q4, or the day after 9999-12-31, is past the calendar.
        ({"from": "9999-12-01", "to": "9999-12-31"}, "'to' '9999-12-31'"),
        (
            {"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T23:00:00+00:00", "step": "hour"},
            "'to' '9999-12-31T23:00:00+00:00'",
        ),
        ({"to": "10000-01-01"}, "'to' '10000-01-01'"),
        ({"from": "2026-13-01"}, "'from' '2026-13-01'"),
        ({"to": "soon"}, "'to' 'soon'"),
    ],
)
def test_bounds_past_the_calendar_or_unreadable_are_bad_requests_naming_them(
    params: dict[str, str], named: str
) -> None:
    with pytest.raises(BadRequest, match=re.escape(named)):
        query(**params)


def test_a_range_reaching_the_ends_of_the_calendar_is_refused_without_listing_its_periods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    real = periods.next_period_start

    def counted(start: datetime, tz: Any, step: Any) -> datetime:
        nonlocal calls
        calls += 1
        if calls > 2 * MAX_PERIODS:
            raise AssertionError("listed more periods than the limit allows")
        return real(start, tz, step)

    # Every name: `period_starts` looks it up in core.periods, the web layer in its modules.
    monkeypatch.setattr(periods, "next_period_start", counted)
    monkeypatch.setattr(adherence, "next_period_start", counted)
    monkeypatch.setattr(page_budget, "next_period_start", counted)
    for step in ("day", "quarter", "hour"):
        with pytest.raises(BadRequest, match=f"more than {MAX_PERIODS:,} even by quarter"):
            query(in_zone("UTC"), **{"from": "0002-01-01", "to": "9998-01-01", "step": step})
    # A span just short enough for the arithmetic check is counted, and the count stops early.
    with pytest.raises(BadRequest, match=f"more than {MAX_PERIODS:,} daily periods"):
        query(**{"from": "2000-01-01", "to": "2003-01-01", "step": "day"})
    assert calls <= 2 * MAX_PERIODS


def test_the_period_limit_keeps_its_meaning_at_the_boundary() -> None:
    first = date(2000, 1, 1)
    at_limit = (first + timedelta(days=MAX_PERIODS)).isoformat()
    past_limit = (first + timedelta(days=MAX_PERIODS + 1)).isoformat()
    for record in (BERLIN, in_zone("UTC")):  # DST days are one period each
        q = query(record, **{"from": first.isoformat(), "to": at_limit, "step": "day"})
        assert len(periods.period_starts(q.from_at, q.to_at, q.tz, "day")) == MAX_PERIODS
        with pytest.raises(TooManyPeriods, match=f"more than {MAX_PERIODS:,} daily") as refused:
            query(record, **{"from": first.isoformat(), "to": past_limit, "step": "day"})
        assert refused.value.fits == "quarter"  # the message names it: "step=quarter fits"


def test_ranges_near_the_ends_that_a_report_can_compute_are_accepted() -> None:
    utc = in_zone("UTC")
    assert query(utc, **{"from": "0001-01-01", "to": "0001-02-01"}).from_at == datetime(
        1, 1, 1, tzinfo=UTC
    )
    q = query(**{"from": "9999-Q3", "to": "9999-Q4", "step": "quarter"})
    assert q.to_at > q.from_at


class AdherenceApi(Backend):
    """The portal's backend with the worker's adherence endpoint in front of `parse_query`."""

    async def adherence(self, params: Mapping[str, str]) -> tuple[int, Any]:
        try:
            parse_query(params, self.records.get(params["contract"]))
        except BadRequest as exc:
            return 400, {"error": str(exc)}
        except Exception as exc:  # what the web server makes of an uncaught error
            return 500, {"error": repr(exc)}
        return 200, {"contract": params["contract"]}


async def test_the_portal_answers_a_bound_past_the_calendar_with_400_not_503() -> None:
    reply = await portal(AdherenceApi(RECORDS)).adherence(
        bearer("alpha"), {"from": "0001-01-01", "to": "2026-01-01"}
    )
    assert reply.status == 400
    assert "'from' '0001-01-01'" in reply.body["error"]


# -- the members' incidents endpoint -------------------------------------------------------------


def test_the_member_endpoint_requires_an_instant_with_an_offset() -> None:
    flt, at, asked = member_query({"at": "2026-05-04T10:00:00+00:00", "partitions": "0,3"})
    assert at == datetime(2026, 5, 4, 10, tzinfo=UTC) and asked == {0, 3}
    assert flt.contracts is None
    with pytest.raises(ValueError, match="'at' must have a UTC offset, got '2026-05-04T10:00:00'"):
        member_query({"at": "2026-05-04T10:00:00", "partitions": "0"})
    with pytest.raises(KeyError):
        member_query({"partitions": "0"})


# -- the dashboard -------------------------------------------------------------------------------


class FakeCluster:
    """Owners that have no figures, and no incidents: enough to build the page."""

    def __init__(self) -> None:
        self.asked: list[dict[str, str]] = []

    async def get_own(self, path: str, params: Mapping[str, str]) -> tuple[int, Any]:
        self.asked.append(dict(params))
        return 404, {"error": "no figures"}

    async def incidents(self, flt: Any, now: datetime) -> Gathered:
        return Gathered()


def dashboard() -> tuple[Dashboard, FakeCluster]:
    cluster = FakeCluster()
    now = datetime(2026, 5, 4, 10, tzinfo=UTC)
    return Dashboard(Backend(RECORDS), cluster, 0.95, now=lambda: now), cluster  # type: ignore[arg-type]


def test_filters_refuse_a_bound_no_zone_can_read() -> None:
    with pytest.raises(BadFilter, match="'from' 'last week'"):
        Filters.parse({"from": "last week"})
    with pytest.raises(BadFilter, match="'to' '2026-04-01T00:00:00'"):
        Filters.parse({"to": "2026-04-01T00:00:00"})


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"from": "yesterday"}, "'from' 'yesterday'"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "'to' must be after 'from'"),
        ({"from": "0001-01-01", "to": "2026-01-01"}, "'from' '0001-01-01'"),  # Berlin: year 0
        ({"from": "1900-01-01", "to": "2100-01-01"}, "even by quarter; use a shorter range"),
    ],
)
async def test_the_dashboard_data_answers_a_bad_range_with_400_before_asking_owners(
    params: dict[str, str], named: str
) -> None:
    board, cluster = dashboard()
    status, body = await data_answer(board, params)
    assert status == 400
    assert set(body) == {"error"}
    assert named in body["error"]
    assert cluster.asked == []


async def test_the_dashboard_page_shows_a_bad_range_above_the_default_view() -> None:
    board, cluster = dashboard()
    html = await page_answer(board, {"from": "0001-01-01", "to": "2026-01-01"})
    assert '<p class="notice">' in html and "&#x27;from&#x27; &#x27;0001-01-01&#x27;" in html
    assert '<form class="filters"' in html  # still a page to correct the filters on
    # No owner knows a latest settled clock: the 90 days up to today.
    reports = [a for a in cluster.asked if "latest" not in a]
    assert reports and all(a["from"] == "2026-02-04" for a in reports)


async def test_a_good_range_still_asks_every_chosen_contract() -> None:
    board, cluster = dashboard()
    status, body = await data_answer(board, {"from": "2026-Q1", "to": "2026-Q2"})
    assert status == 200 and body["filters"]["from"] == "2026-Q1"
    assert sorted(a["contract"] for a in cluster.asked) == sorted(RECORDS)


async def test_the_page_renders_when_no_owner_has_figures() -> None:
    board, _ = dashboard()
    html = await page_answer(board, {"step": "quarter"})
    assert "no figures" in html and '<section class="card" id="breaches">' in html


def test_the_adherence_query_without_a_range_ends_at_the_latest_settled_clock() -> None:
    latest = datetime(2016, 6, 28, 15, tzinfo=UTC)
    q = parse_query({"contract": "acme", "step": "day"}, BERLIN, default_end=latest)
    assert (q.from_at, q.to_at) == (
        periods.parse_bound("2016-03-31", "Europe/Berlin"),
        periods.parse_bound("2016-06-29", "Europe/Berlin"),
    )
    # One bound alone is a question the caller must finish; no default end, both are required.
    with pytest.raises(BadRequest, match="'to' is required"):
        parse_query({"contract": "acme", "from": "2016-01-01"}, BERLIN, default_end=latest)
    with pytest.raises(BadRequest, match="'from' is required"):
        parse_query({"contract": "acme"}, BERLIN)


def test_the_adherence_query_refuses_past_its_budget_naming_the_step_that_fits() -> None:
    with pytest.raises(TooManyPeriods, match=r"step=day fits \(366 periods\)") as refused:
        query(**{"from": "2016-01-01", "to": "2017-01-01", "step": "hour"})
    assert refused.value.fits == "day" and refused.value.count == 366
    # 41 days of hours (984) fit.
    assert query(**{"from": "2016-01-01", "to": "2016-02-11", "step": "hour"}).step == "hour"
