"""The worker on the real embedded broker: deadlines, met and pause, restarts, rebalances, DLQ,
and the deletion of finished incidents after their retention."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from sla_stream.core.terms import ContractRecord, ContractTerms, Target
from tests.integration.harness import System, TopicReader

CLAUSE = ("7.1", "Critical incident handling")


def fast_contract(contract_id: str = "fast", fr_s: float = 6, res_s: float = 12) -> ContractRecord:
    """A 24x7 contract whose windows are seconds long, so deadlines fall during a test."""
    targets = []
    for sev in ("P1", "P2", "P3", "P4"):
        for metric, allowance in (("first_response", fr_s), ("resolution", res_s)):
            targets.append(
                Target(
                    metric=metric,
                    severity=sev,
                    allowance_s=allowance,
                    calendar="24x7",
                    clause_id=CLAUSE[0],
                    clause_title=CLAUSE[1],
                    pauses=metric == "resolution",
                )
            )
    terms = ContractTerms(
        contract_id=contract_id,
        customer_id="cust-1",
        tier="gold",
        timezone="UTC",
        pause_statuses=("pending_customer",),
        calendars={"24x7": {"timezone": "UTC", "hours": "24x7"}},
        targets=tuple(targets),
    )
    return ContractRecord(contract_id=contract_id, versions=(terms,))


def iso(t: datetime) -> str:
    return t.isoformat()


def event(n: str, incident: str, type_: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{incident}-{n}",
        "incident_id": incident,
        "type": type_,
        "occurred_at": iso(at),
        **extra,
    }


def opened(incident: str, at: datetime, contract: str = "fast", severity: str = "P1") -> dict:
    return event("open", incident, "opened", at, contract_id=contract, severity=severity)


@pytest.fixture
async def running(system: System) -> AsyncIterator[System]:
    await system.create_topics()
    await system.put_contracts([fast_contract()])
    system.worker("w1").start().wait_ready()
    yield system


async def reader(system: System, name: str) -> TopicReader:
    return await TopicReader(system.bootstrap, system.topic(name)).start()


async def test_warnings_and_breach_fire_on_time_with_the_clause(running: System) -> None:
    alerts = await reader(running, "alerts")
    try:
        t0 = datetime.now(UTC)
        await running.send([opened("INC-T1", t0)])
        await alerts.wait_for(
            lambda v: sum(1 for a in v if a["kind"] == "breach") == 2, timeout_s=40
        )
        by_slot = {(a["metric"], a["kind"], a["threshold"]): a for a in alerts.values}
        received = {(m["metric"], m["kind"], m["threshold"]): t for t, m in alerts.messages}
        for metric, allowance in (("first_response", 6), ("resolution", 12)):
            for fraction, kind in (
                (0.5, "warning"),
                (0.75, "warning"),
                (0.9, "warning"),
                (1.0, "breach"),
            ):
                alert = by_slot[(metric, kind, fraction)]
                due = t0 + timedelta(seconds=fraction * allowance)
                assert datetime.fromisoformat(alert["emitted_at"]) == due
                assert abs(received[(metric, kind, fraction)] - due.timestamp()) <= 2.0
                assert (alert["clause_id"], alert["clause_title"]) == CLAUSE
                assert alert["contract_id"] == "fast" and alert["customer_id"] == "cust-1"
        assert by_slot[("resolution", "breach", 1.0)]["deadline"].startswith(
            (t0 + timedelta(seconds=12)).isoformat()[:19]
        )
    finally:
        await alerts.stop()


async def test_response_in_time_is_met_and_a_pause_holds_the_clock(running: System) -> None:
    alerts, outcomes = await reader(running, "alerts"), await reader(running, "outcomes")
    try:
        t0 = datetime.now(UTC)
        await running.send([opened("INC-M1", t0)])
        await asyncio.sleep(1.0)
        t1 = datetime.now(UTC)
        await running.send(
            [
                event("resp", "INC-M1", "responded", t1),
                event("p", "INC-M1", "status_changed", t1, status="pending_customer"),
            ]
        )
        await asyncio.sleep(14.0)  # longer than the 12 s resolution allowance, all of it paused
        t2 = datetime.now(UTC)
        await running.send([event("a", "INC-M1", "status_changed", t2, status="active")])
        await asyncio.sleep(1.0)
        t3 = datetime.now(UTC)
        await running.send([event("res", "INC-M1", "resolved", t3)])
        got = await outcomes.wait_for(lambda v: len(v) >= 2, timeout_s=30)
        by_metric = {o["metric"]: o for o in got}
        assert by_metric["first_response"]["met"] is True
        assert by_metric["first_response"]["elapsed_s"] == pytest.approx((t1 - t0).total_seconds())
        assert by_metric["resolution"]["met"] is True
        running_s = (t1 - t0).total_seconds() + (t3 - t2).total_seconds()
        assert by_metric["resolution"]["elapsed_s"] == pytest.approx(running_s)
        await asyncio.sleep(1.0)
        kinds = [a["kind"] for a in alerts.values if a["incident_id"] == "INC-M1"]
        assert "breach" not in kinds
        assert kinds.count("met") == 2
    finally:
        await alerts.stop()
        await outcomes.stop()


async def test_late_events_retract_a_breach_and_settle_met(running: System) -> None:
    """Events that arrive after their deadline passed on the worker's clock correct it."""
    alerts, outcomes = await reader(running, "alerts"), await reader(running, "outcomes")
    try:
        t0 = datetime.now(UTC) - timedelta(seconds=30)
        await running.send([opened("INC-L1", t0)])
        await alerts.wait_for(lambda v: sum(a["kind"] == "breach" for a in v) == 2, 30)
        await running.send([event("resp", "INC-L1", "responded", t0 + timedelta(seconds=2))])
        sent = alerts.values
        wrong = {
            a["alert_id"]
            for a in sent
            if a["metric"] == "first_response" and a["kind"] in ("warning", "breach")
        }
        assert len(wrong) == 4  # 50, 75 and 90 % warnings and the breach, all after 2 s
        got = await alerts.wait_for(
            lambda v: {a.get("retracts") for a in v if a["kind"] == "retracted"} >= wrong, 30
        )
        resolution = {a["alert_id"] for a in got if a["metric"] == "resolution"}
        assert not {a.get("retracts") for a in got} & resolution  # the other clock stands
        final = await outcomes.wait_for(
            lambda v: any(o["metric"] == "first_response" and o["met"] for o in v), 30
        )
        met = next(o for o in final if o["metric"] == "first_response" and o["met"])
        assert met["elapsed_s"] == pytest.approx(2.0)
        assert any(o.get("withdraws") for o in final if o["metric"] == "first_response")
    finally:
        await alerts.stop()
        await outcomes.stop()


async def test_malformed_messages_are_dead_lettered_and_the_worker_goes_on(running: System) -> None:
    dead, outcomes = await reader(running, "dead-letter"), await reader(running, "outcomes")
    try:
        t0 = datetime.now(UTC) - timedelta(seconds=5)
        naive = {**opened("INC-D1", t0), "occurred_at": "2026-03-02T09:00:00"}
        unknown_type = {**opened("INC-D2", t0), "type": "escalated"}
        await running.send(
            [
                b"this is not json",
                b'{"event_id": "x"',
                naive,
                unknown_type,
                b"x" * 70_000,
            ]
        )
        # Valid events keyed by something else than their incident, or not keyed at all: they
        # would land on a partition that does not hold the incident's record.
        await running.send([orjson.dumps(opened("INC-D4", t0))], key=b"INC-OTHER")
        await running.send([orjson.dumps(opened("INC-D5", t0))], key=None)
        await running.send(
            [opened("INC-D3", t0), event("r", "INC-D3", "responded", t0 + timedelta(seconds=1))]
        )
        letters = await dead.wait_for(lambda v: len(v) >= 7, timeout_s=30)
        reasons = sorted(d["reason"] for d in letters)
        assert reasons == [
            "invalid", "invalid", "not_json", "not_json", "oversize", "wrong_key", "wrong_key"
        ]  # fmt: skip
        wrong = [d for d in letters if d["reason"] == "wrong_key"]
        assert all(d["field"] == "key" and "incident_id" in d["detail"] for d in wrong)
        naive_letter = next(d for d in letters if d.get("field") == "occurred_at")
        assert "timezone" in naive_letter["detail"]
        assert naive_letter["original_text"].startswith("{")
        assert all(d["topic"] == running.topic("incident-events") for d in letters)
        assert all(d["offset"] is not None and d["partition"] is not None for d in letters)
        await outcomes.wait_for(
            lambda v: any(o["incident_id"] == "INC-D3" and o["met"] for o in v), timeout_s=30
        )
    finally:
        await dead.stop()
        await outcomes.stop()


async def _put_raw_contract(system: System, key: bytes, value: bytes | None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(system.topic("contracts"), value, key=key)
    finally:
        await producer.stop()


async def test_a_bad_contract_record_is_refused_and_the_terms_in_force_stay(
    running: System,
) -> None:
    alerts = await reader(running, "alerts")
    try:
        await _put_raw_contract(running, b"fast", b'{"contract_id": "fast", "versions": "x"}')
        await asyncio.sleep(1.0)  # what the worker does with it, it has done by now
        t0 = datetime.now(UTC)
        await running.send([opened("INC-B1", t0)])
        got = await alerts.wait_for(
            lambda v: any(a["kind"] == "breach" and a["metric"] == "first_response" for a in v),
            timeout_s=30,
        )
        breach = next(a for a in got if a["kind"] == "breach")
        assert datetime.fromisoformat(breach["deadline"]) == t0 + timedelta(seconds=6)
        assert breach["clause_id"] == CLAUSE[0]
    finally:
        await alerts.stop()


async def test_a_retired_contract_parks_its_incidents_until_it_returns(running: System) -> None:
    alerts = await reader(running, "alerts")
    w = running.workers[0]
    try:
        t0 = datetime.now(UTC)
        await running.send([opened("INC-R1", t0)])
        await alerts.wait_for(lambda v: any(a["kind"] == "warning" for a in v), timeout_s=30)
        await _put_raw_contract(running, b"fast", None)  # a tombstone retires the contract
        deadline = time.monotonic() + 30
        while _metric(w, "sla_parked_incidents") != 1.0:
            assert time.monotonic() < deadline, "the incident was not parked"
            await asyncio.sleep(0.25)
        await running.put_contracts([fast_contract()])
        got = await alerts.wait_for(
            lambda v: sum(a["kind"] == "breach" for a in v) == 2, timeout_s=30
        )
        breaches = {a["metric"]: a["emitted_at"] for a in got if a["kind"] == "breach"}
        assert datetime.fromisoformat(breaches["resolution"]) == t0 + timedelta(seconds=12)
        assert _metric(w, "sla_parked_incidents") == 0.0
    finally:
        await alerts.stop()


def _metric(worker: Any, name: str) -> float | None:
    text = worker.get("/metrics").decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


async def test_contract_arriving_after_its_incidents_unparks_them(system: System) -> None:
    await system.create_topics()
    system.worker("w1").start().wait_ready()
    alerts = await reader(system, "alerts")
    try:
        t0 = datetime.now(UTC) - timedelta(seconds=20)
        await system.send([opened("INC-P1", t0, contract="late")])
        await asyncio.sleep(2.0)
        assert alerts.values == []
        await system.put_contracts([fast_contract("late")])
        # Every deadline is already past: both breaches fire at once, dated when they fell due.
        got = await alerts.wait_for(lambda v: sum(a["kind"] == "breach" for a in v) == 2, 30)
        breach = next(a for a in got if a["kind"] == "breach" and a["metric"] == "resolution")
        assert datetime.fromisoformat(breach["emitted_at"]) == t0 + timedelta(seconds=12)
    finally:
        await alerts.stop()


def _slots(alerts: list[dict[str, Any]]) -> dict[tuple[Any, ...], set[str]]:
    ids: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for a in alerts:
        ids[(a["incident_id"], a["metric"], a["kind"], a.get("threshold"), a.get("retracts"))].add(
            a["alert_id"]
        )
    return ids


async def test_sigkill_and_restart_loses_nothing_and_repeats_keep_their_ids(system: System) -> None:
    await system.create_topics()
    await system.put_contracts([fast_contract(fr_s=4, res_s=8)])
    w = system.worker("w1").start()
    w.wait_ready()
    outcomes, alerts = await reader(system, "outcomes"), await reader(system, "alerts")
    try:
        n = 120
        t0 = datetime.now(UTC)
        batch = []
        for i in range(n):
            inc = f"INC-K{i:03d}"
            batch.append(opened(inc, t0))
            if i % 2 == 0:  # half respond and resolve in time, half run into their breaches
                batch.append(event("r", inc, "responded", t0 + timedelta(seconds=1)))
                batch.append(event("s", inc, "resolved", t0 + timedelta(seconds=2)))
        sender = asyncio.create_task(system.send(batch))
        await asyncio.sleep(0.5)
        w.kill()  # mid-stream
        await sender
        w.start()
        w.wait_ready()
        expected = {
            (f"INC-K{i:03d}", m) for i in range(n) for m in ("first_response", "resolution")
        }

        def settled(values: list[dict[str, Any]]) -> bool:
            live = {(o["incident_id"], o["metric"]) for o in values if not o.get("withdraws")}
            return expected <= live

        try:
            got = await outcomes.wait_for(settled, timeout_s=90)
        except AssertionError:
            # Name what is missing and what was dead-lettered: a lost event shows as an
            # incident with no outcome at all (Faust dropping queued events after a restart
            # did exactly that; see `stream/worker.py` `keep_queued_messages`).
            live = {
                (o["incident_id"], o["metric"]) for o in outcomes.values if not o.get("withdraws")
            }
            dead = await reader(system, "dead-letter")
            await asyncio.sleep(2.0)
            letters = [(d["reason"], d["detail"]) for d in dead.values]
            await dead.stop()
            raise AssertionError(
                f"no outcome for {sorted(expected - live)}; dead letters {letters}"
            ) from None
        final: dict[tuple[str, str], bool] = {}
        for o in got:
            if not o.get("withdraws"):
                final[(o["incident_id"], o["metric"])] = o["met"]
        for i in range(n):
            for m in ("first_response", "resolution"):
                assert final[(f"INC-K{i:03d}", m)] is (i % 2 == 0), (i, m)
        await asyncio.sleep(1.0)
        for slot, ids in _slots(alerts.values).items():
            assert len(ids) == 1, (slot, ids)
    finally:
        await outcomes.stop()
        await alerts.stop()


async def test_two_workers_split_partitions_and_failover_keeps_deadlines(system: System) -> None:
    await system.create_topics()
    await system.put_contracts([fast_contract(fr_s=10, res_s=20)])
    w1, w2 = system.worker("w1").start(), system.worker("w2").start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        p1, p2 = w1.partitions() or [], w2.partitions() or []
        if p1 and p2 and sorted(p1 + p2) == list(range(system.partitions)):
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError(
            f"partitions not split: {w1.partitions()} {w2.partitions()}\n{w2.output()}"
        )
    alerts = await reader(system, "alerts")
    try:
        t0 = datetime.now(UTC)
        incidents = [f"INC-F{i:02d}" for i in range(24)]
        await system.send([opened(i, t0) for i in incidents])
        await alerts.wait_for(lambda v: {a["incident_id"] for a in v} == set(incidents), 30)
        w1.stop()
        w2.wait_ready(partitions=system.partitions, timeout_s=60)
        got = await alerts.wait_for(
            lambda v: (
                {
                    a["incident_id"]
                    for a in v
                    if a["kind"] == "breach" and a["metric"] == "resolution"
                }
                == set(incidents)
            ),
            timeout_s=60,
        )
        for a in got:
            if a["kind"] == "breach" and a["metric"] == "resolution":
                assert datetime.fromisoformat(a["emitted_at"]) == t0 + timedelta(seconds=20)
    finally:
        await alerts.stop()


async def _latest_values(
    bootstrap: str, topic: str, until: Callable[[dict[bytes, bytes | None]], bool], timeout_s: float
) -> dict[bytes, bytes | None]:
    """The latest value per key of a topic (None for a tombstone), read until `until` holds."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    latest: dict[bytes, bytes | None] = {}
    try:
        deadline = time.monotonic() + timeout_s
        while not until(latest):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out on {topic}: {latest}")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for r in records:
                    latest[r.key] = r.value
    finally:
        await consumer.stop()
    return latest


def _retired_marker(value: bytes | None) -> bool:
    """A record shrunk to its retired marker (engine rule 11): no events, one retired life."""
    if value is None:
        return False
    state = orjson.loads(value)["state"]
    return "events" not in state and state.get("retired_lives", 0) >= 1


async def test_finished_incidents_are_deleted_after_their_retention(
    make_system: Callable[..., System],
) -> None:
    """A record that never opened is deleted; one that opened shrinks to a retired marker, so
    the same incident id opened again afterwards gets alert ids of its own."""
    system = make_system(extra_env={"SLA_INCIDENT_RETENTION": "PT2S"})
    await system.create_topics()
    await system.put_contracts([fast_contract()])
    w = system.worker("w1").start()
    w.wait_ready()
    alerts = await reader(system, "alerts")
    t0 = datetime.now(UTC) - timedelta(seconds=10)
    try:
        await system.send(
            [
                opened("INC-X1", t0),
                event("r", "INC-X1", "responded", t0 + timedelta(seconds=1)),
                event("s", "INC-X1", "resolved", t0 + timedelta(seconds=2)),
                event("c", "INC-X1", "closed", t0 + timedelta(seconds=3)),
                opened("INC-X2", t0),  # stays open (breached): kept whatever its age
                event("r", "INC-X3", "responded", t0),  # never opened: deleted like a closed one
                opened("INC-X4", t0),
                event("x", "INC-X4", "cancelled", t0 + timedelta(seconds=1)),
            ]
        )
        retired, gone = {b"INC-X1", b"INC-X4"}, {b"INC-X3"}
        changelog = f"{system.prefix}app-incidents-changelog"
        latest = await _latest_values(
            system.bootstrap,
            changelog,
            lambda v: (
                all(k in v and v[k] is None for k in gone)
                and all(_retired_marker(v.get(k)) for k in retired)
                and b"INC-X2" in v
            ),
            timeout_s=30,
        )
        assert latest[b"INC-X2"] is not None and not _retired_marker(latest[b"INC-X2"])
        assert _metric(w, "sla_incidents_deleted_total") == len(retired | gone)
        # INC-X1 is used again for a new incident: its alerts must not repeat the first life's.
        t1 = datetime.now(UTC) - timedelta(seconds=5)
        await system.send(
            [
                event("open-2", "INC-X1", "opened", t1, contract_id="fast", severity="P1"),
                event("r-2", "INC-X1", "responded", t1 + timedelta(seconds=1)),
                event("s-2", "INC-X1", "resolved", t1 + timedelta(seconds=2)),
            ]
        )

        # Count the mets: a tick between the first life's events may also send warnings
        # that its late response then retracts (all the events are seconds in the past).
        def mets(v: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [a for a in v if a["incident_id"] == "INC-X1" and a["kind"] == "met"]

        lives = mets(await alerts.wait_for(lambda v: len(mets(v)) == 4, timeout_s=30))
        assert len({a["alert_id"] for a in lives}) == 4
        assert lives[2]["emitted_at"].startswith((t1 + timedelta(seconds=1)).isoformat()[:19])
    finally:
        await alerts.stop()
