"""The portal API on two real workers: each customer's own commitments, incidents and adherence.

Tokens are configured by their SHA-256 digest, as in production. The stream is the dashboard's
(`dashboard_scenario.py`): customer acme-corp holds contract `acme`, customer globex `globex`,
and open incidents sit on every partition, so both workers own some of each answer.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from sla_stream.web.auth import hash_token
from tests.integration import dashboard_scenario as sc
from tests.integration.harness import System, WorkerProcess
from tests.integration.test_dashboard import start, wait_settled, wait_split

TOKENS = {"acme-corp": "acme-portal-token", "globex": "globex-portal-token"}
ACME_INCIDENTS = {"A1", "A2", "A3", "A4", "OVERDUE", "SOON"}
GLOBEX_INCIDENTS = {"G1", "G2", "LATER", *sc.waiting_ids()}


@pytest.fixture
def system(make_system: Callable[..., System]) -> System:
    hashes = ",".join(f"{hash_token(token)}:{customer}" for customer, token in TOKENS.items())
    return make_system(
        partitions=sc.PARTITIONS,
        # Everything the scenario settled counts as recent, whatever day the test runs on.
        extra_env={"SLA_PORTAL_TOKEN_HASHES": hashes, "SLA_PORTAL_RECENT_DAYS": "100000"},
    )


def call(
    worker: WorkerProcess, endpoint: str, token: str | None, **params: str
) -> tuple[int, Any, dict[str, str]]:
    url = worker.url(f"/api/v1/portal/{endpoint}")
    if params:
        url += "?" + urlencode(params)
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null"), dict(exc.headers)


def incidents_of(worker: WorkerProcess, customer: str, **params: str) -> dict[str, Any]:
    status, body, _ = call(worker, "incidents", TOKENS[customer], **params)
    assert status == 200, body
    return {i["incident_id"]: i for i in body["incidents"]}


@pytest.fixture
async def running(system: System) -> list[WorkerProcess]:
    workers = await start(system, ("w1", "w2"))
    await wait_split(system, workers)
    await system.send(sc.stream(datetime.now(UTC)))
    for w in workers:
        await wait_settled(w)
    return workers


async def test_each_customer_sees_its_own_commitments_incidents_and_adherence(
    running: list[WorkerProcess],
) -> None:
    w1, w2 = running
    status, body, _ = call(w1, "commitments", TOKENS["acme-corp"])
    assert status == 200 and body["customer_id"] == "acme-corp"
    (contract,) = body["contracts"]
    (version,) = contract["versions"]
    assert contract["contract_id"] == "acme" and version["in_force"]
    plain = [t["plain"] for t in version["targets"]]
    assert plain[:2] == [
        "P1 first response within 10 minutes, 24x7",
        "P1 resolution within 1 hour, 24x7; paused while pending_customer, awaiting_customer",
    ]
    assert [c["id"] for c in version["clauses"]] == ["4.1", "4.2", "4.3", "4.4"]
    assert version["clauses"][:2] == [
        {"id": "4.1", "title": "Response", "text": "Acme is answered within Table 1."},
        {"id": "4.2", "title": "Restoration", "text": "Acme is restored within Table 1."},
    ]
    # Its own service level and credit clause, in plain terms.
    (level,) = version["service_levels"]
    assert level["plain"] == "90 % of P1/P2 first responses within target each month"
    assert (level["clause_id"], level["clause_title"]) == ("4.3", "Monthly service level")
    assert version["service_credit"]["plain"] == (
        "5 % of the period's fee per missed service level (fee 10,000.00 EUR a month), at most 20 %"
    )

    # Incidents live on both workers; either one answers with all of the customer's.
    for worker in (w1, w2):
        acme = incidents_of(worker, "acme-corp")
        assert set(acme) == ACME_INCIDENTS
        assert set(incidents_of(worker, "globex")) == GLOBEX_INCIDENTS
    overdue = acme["OVERDUE"]
    assert overdue["lifecycle"] == "open" and overdue["severity"] == "P2"
    fr, res = overdue["clocks"]
    assert (fr["metric"], fr["state"], fr["clause_id"]) == ("first_response", "breached", "4.1")
    assert fr["breached_at"] == fr["due_at"] and fr["time_left_s"] < 0
    assert (res["state"], res["clause_title"]) == ("running", "Restoration")
    assert 0 < res["time_left_s"] <= 75 * 60
    a3 = acme["A3"]
    assert (a3["lifecycle"], a3["resolved_at"]) == ("resolved", "2026-07-05T12:00:00+00:00")
    assert [c["state"] for c in a3["clocks"]] == ["met", "stopped"]
    assert set(incidents_of(w2, "acme-corp", lifecycle="open")) == {"OVERDUE", "SOON"}

    status, body, _ = call(w2, "adherence", TOKENS["acme-corp"], **sc.RANGE)
    assert status == 200
    (report,) = body["contracts"]
    assert report["contract"] == "acme"
    got = {
        m: [(p["period"], p["numerator"], p["denominator"]) for p in data["periods"]]
        for m, data in report["metrics"].items()
    }
    assert got == {
        "first_response": [("2026-Q2", 1, 2), ("2026-Q3", 2, 2)],
        "resolution": [("2026-Q2", 2, 2), ("2026-Q3", 1, 2)],
        "update": [("2026-Q2", 0, 0), ("2026-Q3", 0, 0)],
    }
    # ... and the status of its service level per month, with the credits owed.
    levels = report["service_levels"]
    assert [
        (p["label"], p["numerator"], p["denominator"], p["status"]) for p in levels["periods"]
    ] == sc.EXPECTED_LEVEL
    assert levels["credits_per_quarter"] == sc.EXPECTED_CREDITS


CROSS_CUSTOMER = [
    ("commitments", {"contract": "globex"}),
    ("incidents", {"contract": "globex"}),
    ("adherence", {"contract": "globex", **sc.RANGE}),
    ("incidents", {"incident": "G1"}),
    ("incidents", {"incident": "LATER"}),
    ("commitments", {"customer": "globex"}),
    ("incidents", {"customer": "globex"}),
    ("adherence", {"customer": "globex"}),
]


async def test_a_token_of_acme_gets_nothing_of_globex_and_no_token_gets_nothing(
    running: list[WorkerProcess],
) -> None:
    for worker in running:
        for endpoint, params in CROSS_CUSTOMER:
            status, body, _ = call(worker, endpoint, TOKENS["acme-corp"], **params)
            assert (status, body) == (404, {"error": "not found"}), (endpoint, params)
            for token in (None, "not-a-token", TOKENS["globex"] + "x"):
                status, body, headers = call(worker, endpoint, token, **params)
                assert status == 401, (endpoint, params, body)
                assert headers["WWW-Authenticate"].startswith("Bearer")
                assert "globex" not in orjson.dumps(body).decode()
    # The control: with globex's own token the same requests succeed.
    worker = running[1]
    assert call(worker, "commitments", TOKENS["globex"], contract="globex")[0] == 200
    assert set(incidents_of(worker, "globex", contract="globex")) == GLOBEX_INCIDENTS
    assert set(incidents_of(worker, "globex", incident="G1")) == {"G1"}
    status, body, _ = call(worker, "adherence", TOKENS["globex"], contract="globex", **sc.RANGE)
    assert status == 200 and body["contracts"][0]["contract"] == "globex"
