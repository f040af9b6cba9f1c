"""Update cycles through a real worker on the embedded broker: `updated` events posted to the
HTTP ingest settle one cycle and start the next, a late update retracts a cycle's breach and
renumbers the cycles after it, and the adherence API counts cycles (engine rule 14)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from sla_stream.core.terms import ContractRecord, Target
from tests.integration.harness import System, TopicReader, WorkerProcess
from tests.integration.test_ingest import ingest_env, post
from tests.integration.test_worker import event, fast_contract, opened

pytestmark = pytest.mark.integration
UPDATE_S = 4.0  # keep the customer informed every 4 s while P1


def informed_contract() -> ContractRecord:
    base = fast_contract("informed")
    terms = base.versions[0]
    update = Target(
        metric="update",
        severity="P1",
        allowance_s=UPDATE_S,
        calendar="24x7",
        warning_thresholds=(0.5,),
        clause_id="7.3",
        clause_title="Status updates",
        pauses=True,
    )
    terms = terms.model_copy(update={"targets": (*terms.targets, update)})
    return base.model_copy(update={"versions": (terms,)})


@pytest.fixture
def system(make_system: Callable[..., System]) -> System:
    return make_system(extra_env=ingest_env())


@pytest.fixture
async def worker(system: System) -> AsyncIterator[WorkerProcess]:
    await system.create_topics()
    await system.put_contracts([informed_contract()])
    w = system.worker("w1").start()
    w.wait_ready()
    yield w


def live_outcomes(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    withdrawn = {o["withdraws"] for o in values if o.get("withdraws")}
    return [o for o in values if not o.get("withdraws") and o["outcome_id"] not in withdrawn]


def update_outcomes(values: list[dict[str, Any]]) -> dict[int, tuple[bool, float]]:
    live = [o for o in live_outcomes(values) if o["metric"] == "update"]
    return {o["cycle"]: (o["met"], o["elapsed_s"]) for o in live}


def live_update_alerts(values: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    """(cycle, kind) -> the update alert that stands (published and not retracted)."""
    retracted = {a["retracts"] for a in values if a["kind"] == "retracted"}
    return {
        (a["cycle"], a["kind"]): a
        for a in values
        if a["metric"] == "update" and a["kind"] != "retracted" and a["alert_id"] not in retracted
    }


async def adherence(worker: WorkerProcess, want: int, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = orjson.loads(worker.get("/api/v1/adherence?contract=informed&metric=update"))
        if last["metrics"]["update"]["total"]["denominator"] >= want:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"adherence: {last}\n{worker.output()[-3000:]}")


async def test_posted_updates_cycle_and_a_late_one_retracts_a_breach(
    system: System, worker: WorkerProcess
) -> None:
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    outcomes = await TopicReader(system.bootstrap, system.topic("outcomes")).start()
    try:
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)

        def at(s: float) -> datetime:
            return t0 + timedelta(seconds=s)

        batch = [
            opened("INC-U1", t0, contract="informed"),
            event("resp", "INC-U1", "responded", at(1)),  # cycle 1 from 1 s
            event("u1", "INC-U1", "updated", at(2)),  # cycle 1 met (1 s); cycle 2
            event("u2", "INC-U1", "updated", at(3)),  # cycle 2 met (1 s); cycle 3
            event("res", "INC-U1", "resolved", at(10), status="resolved"),  # cycle 3 breached
        ]
        status, _, body = await post(worker, batch)
        assert (status, body["accepted"], body["rejected"]) == (202, 5, 0)
        # The worker's ticker runs while the batch is applied, so a cycle can be announced
        # breached before its update is read and then corrected: wait for what stands.
        # Cycle 3 ran from 3 s: warned at 5 s, breached at 7 s, stopped by the resolution at 10 s.
        want = {1: (True, 1.0), 2: (True, 1.0), 3: (False, 7.0)}
        await outcomes.wait_for(lambda v: update_outcomes(v) == want, timeout_s=40)
        kinds = [(1, "met"), (2, "met"), (3, "warning"), (3, "breach"), (3, "stopped")]
        got = await alerts.wait_for(lambda v: set(live_update_alerts(v)) == set(kinds), 30)
        first = live_update_alerts(got)
        breach = first[(3, "breach")]
        assert breach["emitted_at"] == at(7).isoformat().replace("+00:00", "Z")
        assert (breach["clause_id"], breach["allowance_s"]) == ("7.3", UPDATE_S)
        wrong = {first[(3, "breach")]["alert_id"], first[(3, "stopped")]["alert_id"]}

        # An update at 5.5 s arrives late: cycle 3 was met (2.5 s), cycle 4 ran 5.5-10 s.
        status, _, body = await post(worker, event("late", "INC-U1", "updated", at(5.5)))
        assert (status, body["accepted"]) == (202, 1)
        want = {1: (True, 1.0), 2: (True, 1.0), 3: (True, 2.5), 4: (False, 4.5)}
        await outcomes.wait_for(lambda v: update_outcomes(v) == want, timeout_s=40)
        kinds = [(1, "met"), (2, "met"), (3, "met"), (3, "warning")]
        kinds += [(4, "breach"), (4, "stopped"), (4, "warning")]
        done = await alerts.wait_for(lambda v: set(live_update_alerts(v)) == set(kinds), 30)
        assert {a.get("retracts") for a in done if a["kind"] == "retracted"} >= wrong
        assert live_update_alerts(done)[(4, "breach")]["emitted_at"].startswith(
            at(9.5).isoformat()[:19]
        )
        ids = [a["alert_id"] for a in done]
        assert len(ids) == len(set(ids))  # every cycle's alert has an id of its own
        # The adherence API counts cycles: 3 met of 4 settled.
        report = await adherence(worker, want=4)
        total = report["metrics"]["update"]["total"]
        assert (total["numerator"], total["denominator"]) == (3, 4)
    finally:
        await alerts.stop()
        await outcomes.stop()
