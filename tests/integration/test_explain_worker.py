"""Explained deadlines through two real workers on the embedded broker: the staff route and the
portal's, for incidents on either worker's partitions, and another customer's refused.

The stream is the dashboard's (`dashboard_scenario.py`, on 24x7 calendars): A3 (acme, P2) was
answered after 10 minutes and resolved after 3 hours, breaching its 2-hour resolution at 11:00;
the WAITING incidents (globex) wait on the customer from their opening.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import orjson
import yaml
from click.testing import CliRunner

from sla_stream.cli import main
from sla_stream.core import engine
from sla_stream.core.contracts import parse_contracts
from sla_stream.core.explain import explain
from sla_stream.core.models import IncidentEvent
from sla_stream.web.explain_path import explain_path
from tests.integration import dashboard_scenario as sc
from tests.integration.harness import WorkerProcess
from tests.integration.test_portal import TOKENS, running, system

__all__ = ["running", "system"]  # the portal test's fixtures: two workers, the stream sent


def fetch(worker: WorkerProcess, path: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(worker.url(path))
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")


def clock(body: dict[str, Any], metric: str) -> dict[str, Any]:
    return next(c for c in body["clocks"] if c["metric"] == metric)


def segments(c: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(s["kind"], s["start_at"], s["end_at"], s["business_s"]) for s in c["segments"]]


async def test_either_worker_explains_any_incident_and_the_portal_only_the_customers(
    running: list[WorkerProcess],
) -> None:
    w1, w2 = running
    for worker in (w1, w2):  # A3's record is on one of them: the other asks its owner
        status, a3 = fetch(worker, explain_path("A3"))
        assert status == 200, a3
        assert (a3["contract_id"], a3["contract_version"], a3["customer_id"]) == (
            "acme",
            1,
            "acme-corp",
        )
        fr, res = clock(a3, "first_response"), clock(a3, "resolution")
        assert segments(fr) == [
            ("counting", "2026-07-05T09:00:00+00:00", "2026-07-05T09:10:00+00:00", 600.0)
        ]
        assert (fr["elapsed_s"], fr["deadline_at"], fr["breached"]) == (
            600.0,
            "2026-07-05T09:30:00+00:00",
            False,
        )
        assert segments(res) == [
            ("counting", "2026-07-05T09:00:00+00:00", "2026-07-05T12:00:00+00:00", 10800.0)
        ]
        assert (res["breached_at"], res["clause_id"], res["clause_title"]) == (
            "2026-07-05T11:00:00+00:00",
            "4.2",
            "Restoration",
        )
        assert (res["calendar"], res["allowance_s"], res["ended_at"]) == (
            "24x7",
            7200.0,
            "2026-07-05T12:00:00+00:00",
        )
        assert fetch(worker, explain_path("NO-SUCH-INCIDENT")) == (404, {"error": "not found"})

    # An open incident, read at the instant the worker chose: what the core says of its events.
    status, overdue = fetch(w2, explain_path("OVERDUE"))
    assert status == 200
    opened_at = clock(overdue, "first_response")["started_at"]
    event = IncidentEvent.model_validate(sc.opened("OVERDUE", opened_at, "acme", "P2", "network"))
    contracts = parse_contracts(yaml.safe_load(sc.CONTRACTS_YAML))
    state = engine.apply(None, event, contracts["acme"]).state
    as_of = datetime.fromisoformat(overdue["as_of"])
    assert overdue == explain(state, contracts["acme"], as_of).to_json()
    fr = clock(overdue, "first_response")
    assert fr["breached"] and fr["elapsed_s"] > fr["allowance_s"]
    assert sum(s["business_s"] for s in fr["segments"]) == fr["elapsed_s"]

    # The portal: the customer's own incidents only; another's is the same 404 as none at all.
    waiting = sc.waiting_ids()[0]
    for worker in (w1, w2):
        status, mine = fetch(worker, explain_path(waiting, portal=True), TOKENS["globex"])
        assert status == 200 and mine["customer_id"] == "globex"
        res = clock(mine, "resolution")
        assert [(s["kind"], s["status"]) for s in res["segments"]] == [
            ("paused", "pending_customer")
        ]
        assert res["deadline_at"] is None and res["remaining_s"] == 40 * 3600
        status, a3_portal = fetch(worker, explain_path("A3", portal=True), TOKENS["acme-corp"])
        assert status == 200 and segments(clock(a3_portal, "resolution")) == segments(
            clock(a3, "resolution")
        )
        theirs = fetch(worker, explain_path("A3", portal=True), TOKENS["globex"])
        none = fetch(worker, explain_path("NO-SUCH-INCIDENT", portal=True), TOKENS["globex"])
        assert theirs == none == (404, {"error": "not found"})
        assert fetch(worker, explain_path(waiting, portal=True), TOKENS["acme-corp"])[0] == 404
        assert fetch(worker, explain_path("A3", portal=True))[0] == 401

    # The command line asks a worker the same.
    text = CliRunner().invoke(main, ["explain", "A3", "--url", w1.url("")])
    assert text.exit_code == 0, text.output
    assert (
        "resolution P2: breached, 3:00:00 of 2:00:00 business time, "
        "breached at 2026-07-05T11:00:00+00:00"
    ) in text.stdout
    missing = CliRunner().invoke(main, ["explain", "NO-SUCH-INCIDENT", "--url", w1.url("")])
    assert missing.exit_code == 1 and "404 not found" in missing.output

    # The dashboard's open-incident rows link to the explanation.
    page = w1.get("/", timeout=30).decode()
    assert f'<a href="{explain_path("OVERDUE")}"' in page
