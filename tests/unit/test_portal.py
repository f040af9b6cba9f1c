"""Portal API as plain methods: token scoping, 401/404/400/503, commitments, incidents, adherence.

Incidents are real engine states (events applied by `core.engine`), seen through `view_of`;
the backend is an in-memory stand-in for the worker's contracts table, cluster and API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from sla_stream.core import engine
from sla_stream.core.contracts import parse_contracts
from sla_stream.core.models import IncidentEvent
from sla_stream.core.terms import ContractRecord
from sla_stream.web.auth import hash_token
from sla_stream.web.cluster import Gathered
from sla_stream.web.commitments import target_words
from sla_stream.web.open_incidents import IncidentFilter, view_of
from sla_stream.web.portal import Portal, default_range, portal_tokens
from tests.unit.engine_cases import STANDARD_TARGETS, target, terms

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)

CONTRACTS = yaml.safe_load(
    """
calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon: [["09:00", "17:00"]], tue: [["09:00", "17:00"]], wed: [["09:00", "17:00"]],
            thu: [["09:00", "17:00"]], fri: [["09:00", "17:00"]]}
tiers:
  gold:
    calendar: office
    targets:
      first_response: {P1: {allowance: 15m, calendar: "24x7"}, P2: 1h, P3: 4h, P4: 8h}
      resolution: {P1: {allowance: 4h, calendar: "24x7"}, P2: 16h, P3: 24h, P4: 40h}
contracts:
  - contract_id: alpha-msa
    customer_id: alpha
    tier: gold
    pause_statuses: [pending_customer]
    clauses:
      - {id: "4.1", title: Response, text: We answer fast., covers: [{metric: first_response}]}
      - {id: "4.2", title: Restoration, text: We fix it., covers: [{metric: resolution}]}
  - contract_id: alpha-extra
    customer_id: alpha
    tier: gold
    clauses:
      - {id: "X", title: All, text: Everything., covers: [{metric: first_response},
                                                        {metric: resolution}]}
  - contract_id: beta-msa
    customer_id: beta
    tier: gold
    clauses:
      - {id: "9", title: Beta terms, text: Secret beta text., covers: [{metric: first_response},
                                                                     {metric: resolution}]}
"""
)
RECORDS = parse_contracts(CONTRACTS)
TOKENS = {"alpha": "alpha-token-1", "beta": "beta-token-1"}


def ev(incident: str, n: str, type_: str, at: datetime, **extra: Any) -> IncidentEvent:
    return IncidentEvent(
        event_id=f"{incident}-{n}", incident_id=incident, type=type_, occurred_at=at, **extra
    )


def incident(events: list[IncidentEvent], now: datetime = NOW) -> engine.IncidentState:
    record = RECORDS[events[0].contract_id]
    state = None
    for e in events:
        state = engine.apply(state, e, record).state
    assert state is not None
    return engine.advance(state, now, record).state


STATES = [
    # alpha's P1, opened 5 minutes ago: first response due in 10 minutes (24x7).
    incident(
        [
            ev(
                "A-1",
                "o",
                "opened",
                NOW - timedelta(minutes=5),
                contract_id="alpha-msa",
                severity="P1",
                category="network",
            )
        ]
    ),
    # alpha's P2 resolved two days ago: recent, not open.
    incident(
        [
            ev(
                "A-2",
                "o",
                "opened",
                NOW - timedelta(days=2, hours=1),
                contract_id="alpha-extra",
                severity="P2",
            ),
            ev("A-2", "r", "responded", NOW - timedelta(days=2, minutes=50)),
            ev("A-2", "s", "resolved", NOW - timedelta(days=2)),
        ]
    ),
    # alpha's P3 closed 40 days ago: neither open nor recent.
    incident(
        [
            ev(
                "A-3",
                "o",
                "opened",
                NOW - timedelta(days=41),
                contract_id="alpha-msa",
                severity="P3",
            ),
            ev("A-3", "c", "closed", NOW - timedelta(days=40)),
        ]
    ),
    # beta's open P1.
    incident(
        [
            ev(
                "B-1",
                "o",
                "opened",
                NOW - timedelta(minutes=1),
                contract_id="beta-msa",
                severity="P1",
            )
        ]
    ),
]


class Backend:
    def __init__(self, records: Mapping[str, ContractRecord], missing: list[int] | None = None):
        self.records = records
        self.missing = missing or []
        self.adherence_calls: list[dict[str, str]] = []
        self.filters: list[IncidentFilter] = []

    def contracts(self) -> Iterable[ContractRecord]:
        return self.records.values()

    async def incidents(self, flt: IncidentFilter, now: datetime) -> Gathered:
        self.filters.append(flt)
        views = [view_of(s, self.records.get(s.contract_id or "")) for s in STATES]
        kept = [v.to_json(now) for v in views if v is not None and flt.keeps(v, now)]
        return Gathered(kept, self.missing)

    async def adherence(self, params: Mapping[str, str]) -> tuple[int, Any]:
        self.adherence_calls.append(dict(params))
        if params.get("step") == "fortnight":
            return 400, {"error": "'step' must be one of hour, day, quarter"}
        return 200, {"contract": params["contract"], "from": params["from"], "to": params["to"]}


def portal(backend: Backend | None = None) -> Portal:
    entries = [f"{hash_token(token)}:{customer}" for customer, token in TOKENS.items()]
    return Portal(backend or Backend(RECORDS), portal_tokens(entries), 30, now=lambda: NOW)


def bearer(customer: str) -> str:
    return f"Bearer {TOKENS[customer]}"


ENDPOINTS = ("commitments", "incidents", "adherence")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer nope", "Basic YWxwaGE6eA==", f"Token {TOKENS['alpha']}"],
)
async def test_missing_or_invalid_token_is_401(endpoint: str, authorization: str | None) -> None:
    reply = await getattr(portal(), endpoint)(authorization, {})
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert "alpha" not in str(reply.body) and "beta" not in str(reply.body)


async def test_a_customer_sees_its_commitments_in_plain_terms_with_clauses() -> None:
    reply = await portal().commitments(bearer("alpha"), {})
    assert reply.status == 200
    body = reply.body
    assert body["customer_id"] == "alpha"
    assert [c["contract_id"] for c in body["contracts"]] == ["alpha-extra", "alpha-msa"]
    (msa,) = body["contracts"][1]["versions"]
    assert msa["in_force"] is True
    plain = [t["plain"] for t in msa["targets"]]
    assert plain[0] == "P1 first response within 15 minutes, 24x7"
    assert plain[1] == "P1 resolution within 4 hours, 24x7; paused while pending_customer"
    assert plain[2] == ("P2 first response within 1 hour, Mon-Fri 09:00-17:00 (Europe/Berlin)")
    assert {(t["clause_id"], t["clause_title"]) for t in msa["targets"]} == {
        ("4.1", "Response"),
        ("4.2", "Restoration"),
    }
    assert msa["clauses"] == [
        {"id": "4.1", "title": "Response", "text": "We answer fast."},
        {"id": "4.2", "title": "Restoration", "text": "We fix it."},
    ]
    assert "beta" not in str(body) and "Secret" not in str(body)


async def test_a_customer_sees_its_open_and_recent_incidents_with_due_times() -> None:
    reply = await portal().incidents(bearer("alpha"), {})
    assert reply.status == 200
    found = {i["incident_id"]: i for i in reply.body["incidents"]}
    assert set(found) == {"A-1", "A-2"}  # A-3 ended 40 days ago; B-1 is beta's
    a1 = found["A-1"]
    assert a1["lifecycle"] == "open" and a1["severity"] == "P1"
    fr = a1["clocks"][0]
    assert fr["metric"] == "first_response" and fr["state"] == "running"
    assert fr["due_at"] == (NOW + timedelta(minutes=10)).isoformat()
    assert fr["time_left_s"] == 600.0 and fr["remaining_s"] == 600.0
    assert (fr["clause_id"], fr["clause_title"]) == ("4.1", "Response")
    a2 = found["A-2"]
    assert a2["lifecycle"] == "resolved"
    assert a2["resolved_at"] == (NOW - timedelta(days=2)).isoformat()
    assert [c["state"] for c in a2["clocks"]] == ["met", "met"]

    only_open = await portal().incidents(bearer("alpha"), {"lifecycle": "open"})
    assert [i["incident_id"] for i in only_open.body["incidents"]] == ["A-1"]

    beta = await portal().incidents(bearer("beta"), {})
    assert [i["incident_id"] for i in beta.body["incidents"]] == ["B-1"]


async def test_the_owners_are_asked_only_for_the_customers_contracts() -> None:
    backend = Backend(RECORDS)
    await portal(backend).incidents(bearer("alpha"), {})
    assert backend.filters[-1].contracts == frozenset({"alpha-msa", "alpha-extra"})


@pytest.mark.parametrize(
    ("endpoint", "params"),
    [
        ("commitments", {"contract": "beta-msa"}),
        ("incidents", {"contract": "beta-msa"}),
        ("adherence", {"contract": "beta-msa"}),
        ("incidents", {"incident": "B-1"}),
        ("commitments", {"customer": "beta"}),
        ("incidents", {"customer": "beta"}),
        ("adherence", {"customer": "beta"}),
    ],
)
async def test_a_token_of_a_asking_for_anything_of_b_gets_nothing_of_b(
    endpoint: str, params: dict[str, str]
) -> None:
    backend = Backend(RECORDS)
    reply = await getattr(portal(backend), endpoint)(bearer("alpha"), params)
    assert reply.status == 404
    assert reply.body == {"error": "not found"}
    assert backend.adherence_calls == []  # nothing of beta was even asked for


@pytest.mark.parametrize(
    ("endpoint", "params"),
    [
        ("commitments", {"contract": "no-such"}),
        ("incidents", {"incident": "NO-SUCH"}),
    ],
)
async def test_unknown_things_look_exactly_like_other_customers_things(
    endpoint: str, params: dict[str, str]
) -> None:
    reply = await getattr(portal(), endpoint)(bearer("alpha"), params)
    assert (reply.status, reply.body) == (404, {"error": "not found"})


async def test_narrowing_within_the_customer_works() -> None:
    reply = await portal().incidents(bearer("alpha"), {"contract": "alpha-extra"})
    assert [i["incident_id"] for i in reply.body["incidents"]] == ["A-2"]
    reply = await portal().incidents(bearer("alpha"), {"incident": "A-1", "customer": "alpha"})
    assert [i["incident_id"] for i in reply.body["incidents"]] == ["A-1"]
    reply = await portal().commitments(bearer("alpha"), {"contract": "alpha-msa"})
    assert [c["contract_id"] for c in reply.body["contracts"]] == ["alpha-msa"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_unknown_parameters_are_refused(endpoint: str) -> None:
    reply = await getattr(portal(), endpoint)(bearer("alpha"), {"customer_id": "beta"})
    assert reply.status == 400 and "customer_id" in reply.body["error"]


async def test_adherence_asks_each_own_contract_for_the_last_four_quarters() -> None:
    backend = Backend(RECORDS)
    reply = await portal(backend).adherence(bearer("alpha"), {})
    assert reply.status == 200
    assert [r["contract"] for r in reply.body["contracts"]] == ["alpha-extra", "alpha-msa"]
    assert backend.adherence_calls == [
        {"contract": c, "from": "2025-Q3", "to": "2026-Q3", "step": "quarter"}
        for c in ("alpha-extra", "alpha-msa")
    ]
    bad = await portal(backend).adherence(bearer("alpha"), {"step": "fortnight"})
    assert bad.status == 400


async def test_a_partial_answer_is_503_not_a_shorter_list() -> None:
    reply = await portal(Backend(RECORDS, missing=[2])).incidents(bearer("alpha"), {})
    assert reply.status == 503 and reply.headers["Retry-After"] == "5"
    assert reply.body["missing"] == [2]


def test_portal_tokens_must_name_their_customer() -> None:
    with pytest.raises(ValueError, match="entry 2: name the customer"):
        portal_tokens([f"{hash_token('a')}:alpha", hash_token("b")])
    with pytest.raises(ValueError, match="entry 1") as info:
        portal_tokens(["alpha-token-in-clear:alpha"])
    assert "alpha-token-in-clear" not in str(info.value)


def test_default_range_is_four_quarters_in_the_contract_zone() -> None:
    record = RECORDS["alpha-msa"]
    assert default_range(record, datetime(2026, 1, 1, 0, 30, tzinfo=UTC)) == ("2025-Q2", "2026-Q2")
    # 23:30 UTC on 31 March is already 1 April in Berlin: Q2.
    assert default_range(record, datetime(2026, 3, 31, 23, 30, tzinfo=UTC)) == (
        "2025-Q3",
        "2026-Q3",
    )


def test_an_update_target_reads_as_an_interval() -> None:
    """Update cycles (engine rule 14) are an interval, not a deadline: 'every', not 'within'."""
    update = target("update", "P1", 1, "24x7", pauses=True)
    words = target_words(update, terms((*STANDARD_TARGETS, update)))
    assert words == "P1 update every 1 hour, 24x7; paused while pending_customer, awaiting_customer"
