"""Whatever is posted to a real worker's `POST /api/v1/events`, the answer is never a 5xx.

Random JSON, event-shaped objects with random field values, batches of them, random bytes and
deep nesting: a 202 accepts something, anything else is a 4xx that says why.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sla_stream.core.models import EVENT_TYPES, SEVERITIES
from tests.integration.harness import System, WorkerProcess
from tests.integration.test_ingest import TOKEN, ingest_env
from tests.integration.test_worker import fast_contract

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
instants = st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat())
events = st.fixed_dictionaries(
    {
        "event_id": st.text(max_size=300),
        "incident_id": st.text(max_size=300),
        "type": st.sampled_from((*EVENT_TYPES, "escalated")),
        "occurred_at": instants | st.datetimes().map(lambda t: t.isoformat()) | json_scalars,
    },
    optional={
        "contract_id": st.just("fast") | json_scalars,
        "severity": st.sampled_from((*SEVERITIES, "P9")) | json_scalars,
        "status": json_scalars,
        "attributes": json_values,
        "extra": json_values,
    },
)


def deep(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


bodies = (
    json_values.map(json.dumps)
    | events.map(json.dumps)
    | st.lists(events | json_values, max_size=5).map(json.dumps)
    | st.integers(min_value=200, max_value=1200).map(deep)
).map(lambda text: text if isinstance(text, bytes) else text.encode()) | st.binary(max_size=200)


def post(worker: WorkerProcess, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(
        worker.url("/api/v1/events"),
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


@pytest.fixture
def worker(make_system: Callable[..., System]) -> Iterator[WorkerProcess]:
    system = make_system(extra_env=ingest_env(SLA_MAX_REQUEST_BYTES="1048576"))
    asyncio.run(system.create_topics())
    asyncio.run(system.put_contracts([fast_contract()]))
    w = system.worker("w1").start()
    w.wait_ready()
    yield w


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
@example(body=deep(253))  # orjson writes up to 254 levels: the ingest once answered 500 above
@example(body=deep(300))
@example(body=deep(1023))
@example(body=deep(1100))  # past orjson's parser limit: the body is not JSON
@example(body=b'{"event_id": "\xff"}')
@example(body=b'"\\ud800"')
@example(body=b"[NaN, Infinity]")
@example(body=b"[]")
def test_no_body_gets_a_5xx(worker: WorkerProcess, body: bytes) -> None:
    status, reply = post(worker, body)
    assert status in (202, 400, 413, 422), (status, reply)
    assert isinstance(reply, dict)
    if status == 202:
        assert reply["accepted"] + reply["rejected"] == len(reply["results"])
    else:
        assert isinstance(reply["error"], str) and reply["error"]
    if status == 422:
        reasons = {r["reason"] for r in reply["results"]}
        assert reasons <= {"invalid", "oversize", "too_deep"}, reasons


def test_deep_nesting_is_refused_with_the_reason_the_worker_gives(worker: WorkerProcess) -> None:
    event = {"event_id": "e", "incident_id": "INC-1", "type": "responded"}
    event["occurred_at"] = "2026-03-02T09:00:00+00:00"
    for depth in (300, 1000):
        inner = b"[" * (depth - 2) + b"{}" + b"]" * (depth - 2)
        body = orjson.dumps(event)[:-1] + b',"attributes":' + inner + b"}"
        status, reply = post(worker, body)
        assert status == 422, reply
        assert [(r["reason"], r["field"]) for r in reply["results"]] == [("too_deep", "attributes")]
    status, reply = post(worker, b'{"event_id": "\xff"}')
    assert status == 400 and "not UTF-8" in reply["error"]
