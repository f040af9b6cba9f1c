"""SIGKILLs mid-stream and emptied data directories on the embedded broker: the changelog never
stays behind what was published, restores are exact, and a clean restart re-sends nothing."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from sla_stream.core.models import IncidentEvent
from sla_stream.replay import Replayer
from sla_stream.stream.checkpoint import CLEAN_STOP_FILE
from sla_stream.stream.state import OPEN_PHASES
from tests.integration.harness import System, TopicReader, WorkerProcess
from tests.integration.test_worker import _metric, event, fast_contract, opened

FR_S, RES_S = 5.0, 10.0


def incident_events(n: int, t0: datetime) -> list[dict[str, Any]]:
    """A third met on both clocks, a third breached and resolved, a third left open."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        inc, at = f"INC-C{i:04d}", t0 + timedelta(seconds=i)
        out.append(opened(inc, at))
        if i % 3 == 0:
            out.append(event("r", inc, "responded", at + timedelta(seconds=2)))
            out.append(event("s", inc, "resolved", at + timedelta(seconds=4)))
        elif i % 3 == 1:
            out.append(event("r", inc, "responded", at + timedelta(seconds=8)))
            out.append(event("s", inc, "resolved", at + timedelta(seconds=20)))
    return out


def replayed(events: list[dict[str, Any]], until: datetime) -> tuple[dict[Any, Any], int]:
    """Live outcome per (incident, metric) and the open clocks, by the offline engine."""
    contract = fast_contract(fr_s=FR_S, res_s=RES_S)
    outcomes: list[Any] = []
    replayer = Replayer({contract.contract_id: contract}, lambda a: None, outcomes.append, until)
    for e in events:
        replayer.event(IncidentEvent.model_validate_json(orjson.dumps(e)))
    replayer.finish()
    open_clocks = sum(
        1 for s in replayer.states.values() for c in s.clocks if c.phase in OPEN_PHASES
    )
    return live_outcomes([o.model_dump(mode="json") for o in outcomes]), open_clocks


def live_outcomes(values: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[bool, float]]:
    """(incident, metric) -> (met, elapsed_s) of the outcomes not withdrawn."""
    withdrawn = {o["withdraws"] for o in values if o.get("withdraws")}
    live: dict[tuple[str, str], tuple[bool, float]] = {}
    for o in values:
        if not o.get("withdraws") and o["outcome_id"] not in withdrawn:
            live[(o["incident_id"], o["metric"])] = (o["met"], round(o["elapsed_s"], 3))
    return live


def open_clocks(worker: WorkerProcess) -> float:
    text = worker.get("/metrics").decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("sla_open_clocks{")
    )


def empty(worker: WorkerProcess) -> None:
    shutil.rmtree(worker.data_dir)
    worker.data_dir.mkdir()


async def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


async def test_sigkill_loop_with_wipes_ends_as_a_replay_of_the_events(
    make_system: Any,
) -> None:
    # A longer linger keeps changelog records in the producer longer: kills land among them.
    system: System = make_system(extra_env={"SLA_PRODUCER_LINGER_S": "0.05"})
    await system.create_topics()
    await system.put_contracts([fast_contract(fr_s=FR_S, res_s=RES_S)])
    w = system.worker("w1").start()
    w.wait_ready()
    outcomes = await TopicReader(system.bootstrap, system.topic("outcomes")).start()
    try:
        t0 = datetime.now(UTC) - timedelta(hours=1)  # every deadline has passed: outcomes are
        events = incident_events(300, t0)  # fixed by the events alone, whatever the timing
        chunks = [events[i : i + 70] for i in range(0, len(events), 70)]
        rng = random.Random(16)
        for n, chunk in enumerate(chunks):
            await system.send(chunk)
            if n % 3 == 2:  # mid-stream: the worker is still processing what was just sent
                await asyncio.sleep(rng.uniform(0.05, 0.4))
                w.kill()
                if n != 5:  # a lost disk: restore from the changelog into nothing
                    empty(w)
                w.start()
                w.wait_ready()
        expected, expected_open = replayed(events, datetime.now(UTC))
        assert len(expected) == 2 * 300

        def settled() -> bool:
            return live_outcomes(outcomes.values) == expected

        try:
            await wait_for(settled, 60, "live outcomes equal to the replay")
        except AssertionError:
            live = live_outcomes(outcomes.values)
            wrong = {k: (live.get(k), v) for k, v in expected.items() if live.get(k) != v}
            shown = list(wrong.items())[:8]
            raise AssertionError(f"{len(wrong)} differ (live, replay): {shown}") from None

        # No outcome id was ever published with two contents.
        contents: dict[str, set[bytes]] = defaultdict(set)
        for o in outcomes.values:
            contents[o["outcome_id"]].add(orjson.dumps(o, option=orjson.OPT_SORT_KEYS))
        assert not {i: c for i, c in contents.items() if len(c) > 1}

        # A clean stop, then a start on an emptied data directory: the restore ends with every
        # clock, and the acknowledged-effects watermark it restores covers the whole outbox.
        await asyncio.sleep(1.0)  # a few ticks: the watermark is stored
        w.stop()
        assert (w.data_dir / CLEAN_STOP_FILE).exists(), w.output()
        empty(w)
        w.start()
        w.wait_ready()
        await wait_for(lambda: open_clocks(w) == expected_open, 30, "every clock restored")
        assert _metric(w, "sla_effects_resent_total") == 0.0
        assert live_outcomes(outcomes.values) == expected
    finally:
        await outcomes.stop()
