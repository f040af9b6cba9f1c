"""HTTP ingest on a real worker and broker: posted events become alerts; 401, 413, 503."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from sla_stream.broker import EmbeddedBroker
from sla_stream.web.auth import hash_token
from tests.integration.harness import System, TopicReader, WorkerProcess
from tests.integration.test_worker import event, fast_contract, opened

TOKEN = "ingest-test-token"
MAX_REQUEST_BYTES = 8192


def ingest_env(**extra: str) -> dict[str, str]:
    return {
        # The digest of the token and a second, named one: tokens are configured by hash only.
        "SLA_INGEST_TOKEN_HASHES": f"{hash_token(TOKEN)},{hash_token('other')}:second-source",
        "SLA_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
        **extra,
    }


async def post(
    worker: WorkerProcess, body: Any, token: str | None = TOKEN, **headers: str
) -> tuple[int, dict[str, str], dict[str, Any]]:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) or callable(body) else orjson.dumps(body)
    if callable(data):
        data = data()  # an async generator: sent chunked, without Content-Length
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            worker.url("/api/v1/events"),
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=60),
        ) as response,
    ):
        return response.status, dict(response.headers), orjson.loads(await response.read())


@pytest.fixture
def system(make_system: Callable[..., System]) -> System:
    return make_system(extra_env=ingest_env())


@pytest.fixture
async def worker(system: System) -> AsyncIterator[WorkerProcess]:
    await system.create_topics()
    await system.put_contracts([fast_contract()])
    w = system.worker("w1").start()
    w.wait_ready()
    yield w


async def test_posted_events_reach_the_worker_and_produce_its_alerts(
    system: System, worker: WorkerProcess
) -> None:
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    events = await TopicReader(system.bootstrap, system.topic("incident-events")).start()
    dead = await TopicReader(system.bootstrap, system.topic("dead-letter")).start()
    try:
        t0 = datetime.now(UTC)
        bad = event("open", "INC-H2", "opened", t0, contract_id="fast", severity="P7")
        batch = [opened("INC-H1", t0), bad, opened("INC-H3", t0)]
        status, _, body = await post(worker, batch)
        assert status == 202
        assert (body["accepted"], body["rejected"]) == (2, 1)
        assert body["results"][0] == {"index": 0, "event_id": "INC-H1-open", "accepted": True}
        assert body["results"][2] == {"index": 2, "event_id": "INC-H3-open", "accepted": True}
        rejected = body["results"][1]
        assert (rejected["accepted"], rejected["reason"], rejected["field"]) == (
            False,
            "invalid",
            "severity",
        )
        # The accepted events are on the topic as posted; the rejected one is not.
        got = await events.wait_for(lambda v: len(v) >= 2, timeout_s=20)
        assert sorted(e["event_id"] for e in got) == ["INC-H1-open", "INC-H3-open"]
        assert [e for e in got if e["incident_id"] == "INC-H1"] == [batch[0]]
        # The worker clocks them: each breaches its 6 s first-response window.
        await alerts.wait_for(
            lambda v: (
                {a["incident_id"] for a in v if a["kind"] == "breach"} >= {"INC-H1", "INC-H3"}
            ),
            timeout_s=40,
        )
        breach = next(
            a
            for a in alerts.values
            if a["incident_id"] == "INC-H1"
            and a["kind"] == "breach"
            and a["metric"] == "first_response"
        )
        assert breach["contract_id"] == "fast" and breach["allowance_s"] == 6
        assert not any(a["incident_id"] == "INC-H2" for a in alerts.values)
        # A single object works too, and a named second token is accepted.
        status, _, body = await post(
            worker, event("resp", "INC-H3", "responded", datetime.now(UTC)), token="other"
        )
        assert (status, body["accepted"]) == (202, 1)
        await events.wait_for(lambda v: any(e["event_id"] == "INC-H3-resp" for e in v))
        assert dead.values == []  # validation happened at the door, not on the topic
    finally:
        for r in (alerts, events, dead):
            await r.stop()


async def test_refusals_without_a_token_over_the_limit_and_not_json(
    system: System, worker: WorkerProcess
) -> None:
    events = await TopicReader(system.bootstrap, system.topic("incident-events")).start()
    try:
        one = opened("INC-R1", datetime.now(UTC))
        status, headers, _ = await post(worker, one, token=None)
        assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="sla-stream"'
        for wrong in ("wrong-token", hash_token(TOKEN)):  # the digest is not the token
            status, headers, _ = await post(worker, one, token=wrong)
            assert status == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"]

        big = [opened(f"INC-R{i}", datetime.now(UTC)) for i in range(100)]
        assert len(orjson.dumps(big)) > MAX_REQUEST_BYTES
        status, _, body = await post(worker, big)
        assert status == 413 and str(MAX_REQUEST_BYTES) in body["error"]

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the read is what counts
            data = orjson.dumps(big)
            for i in range(0, len(data), 1000):
                yield data[i : i + 1000]

        status, _, _ = await post(worker, chunked)
        assert status == 413

        status, _, body = await post(worker, b"incident_id=INC-R1&type=opened")
        assert status == 400 and "not JSON" in body["error"]

        # None of these reached the topic; a valid request afterwards does.
        sentinel = event("sentinel", "INC-R0", "responded", datetime.now(UTC))
        status, _, _ = await post(worker, sentinel)
        assert status == 202
        got = await events.wait_for(lambda v: any(e["event_id"] == "INC-R0-sentinel" for e in v))
        assert [e["event_id"] for e in got] == ["INC-R0-sentinel"]
    finally:
        await events.stop()


async def test_503_with_retry_after_when_the_broker_is_gone(tmp_path: Path) -> None:
    # A broker of its own, so that stopping it leaves the shared one alone.
    own = EmbeddedBroker().start()
    system = System(own.bootstrap, tmp_path, extra_env=ingest_env(SLA_INGEST_ACK_TIMEOUT_S="3"))
    try:
        await system.create_topics()
        await system.put_contracts([fast_contract()])
        w = system.worker("w1").start()
        w.wait_ready()
        status, _, body = await post(w, opened("INC-U1", datetime.now(UTC)))
        assert (status, body["accepted"]) == (202, 1)  # acknowledged while the broker is up

        own.stop()
        status, headers, body = await post(w, opened("INC-U2", datetime.now(UTC)))
        assert status == 503
        assert headers["Retry-After"] == "5"
        assert "results" not in body and "acknowledge" in body["error"]
        assert w.proc is not None and w.proc.poll() is None  # the worker is still serving
    finally:
        for w in system.workers:
            w.kill()  # its broker is gone: a graceful stop would only wait for it
        own.stop()
