"""Hostile messages on the events topic on a real worker and broker: every one is dead-lettered
with its reason, whatever its key and size, while valid events interleaved with them are
processed; and the dead-letter limit pauses the topic and resumes when told to."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from sla_stream.cli import main
from sla_stream.settings import Settings
from tests.integration.harness import System, TopicReader, WorkerProcess
from tests.integration.test_worker import event, fast_contract, opened

LETTER_LIMIT = Settings().dead_letter_max_bytes


def nested(incident: str, t0: datetime, depth: int) -> bytes:
    """An opened event `depth` levels deep in all (orjson writes only 254, so by hand)."""
    inner = depth - 2  # the event object and the innermost {} are two of them
    deep = b"[" * inner + b"{}" + b"]" * inner
    return orjson.dumps(opened(incident, t0))[:-1] + b',"attributes":' + deep + b"}"


def hostile_corpus(t0: datetime) -> list[tuple[str, bytes | None, bytes | None, str, str | None]]:
    """(name, key, value, expected reason, expected field) of each hostile message."""
    ok = opened("INC-HX", t0)

    def keyed(incident: str, **extra: Any) -> bytes:
        return orjson.dumps({**opened(incident, t0), **extra})

    big = keyed("INC-BIG", attributes={"blob": "x" * 1_000_000})
    naive = keyed("INC-NAIVE", occurred_at="2026-03-02T09:00:00")
    plain = orjson.dumps(ok)
    with_nan = plain[:-1] + b',"score":NaN}'
    with_inf = plain[:-1] + b',"score":Infinity}'
    return [
        ("null value", b"INC-HX", None, "null_value", None),
        ("empty value", b"INC-HX", b"", "empty", None),
        ("null key", None, plain, "wrong_key", "key"),
        ("empty key", b"", plain, "wrong_key", "key"),
        ("binary key", b"\xff\xfe\x00\x80", plain, "wrong_key", "key"),
        ("wrong key", b"INC-OTHER", plain, "wrong_key", "key"),
        ("2 kB key", b"k" * 2048, b"not json", "not_json", None),
        ("1 MB value", b"INC-BIG", big, "oversize", None),
        ("500 kB binary", None, b"\xff\x00" * 250_000, "oversize", None),
        ("invalid UTF-8", b"INC-HX", b'{"event_id": "\xff\xfe"}', "not_utf8", None),
        ("depth 300", b"INC-D3", nested("INC-D3", t0, 300), "too_deep", "attributes"),
        ("depth 1000", b"INC-D4", nested("INC-D4", t0, 1000), "too_deep", "attributes"),
        ("NaN", b"INC-HX", with_nan, "not_json", None),
        ("Infinity", b"INC-HX", with_inf, "not_json", None),
        ("naive timestamp", b"INC-NAIVE", naive, "invalid", "occurred_at"),
        ("unknown type", b"INC-T", keyed("INC-T", type="escalated"), "invalid", "type"),
        ("not an object", b"INC-HX", b"[1, 2, 3]", "invalid", None),
    ]


class KeyedReader(TopicReader):
    """A `TopicReader` that also keeps each record's key and size, by arrival."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(bootstrap, topic)
        self.records: list[tuple[bytes | None, int, dict[str, Any]]] = []

    async def _run(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            value = orjson.loads(record.value)
            self.records.append((record.key, len(record.value), value))
            self.messages.append((time.time(), value))


async def test_every_hostile_message_is_dead_lettered_and_valid_events_go_on(
    system: System,
) -> None:
    await system.create_topics()
    await system.put_contracts([fast_contract()])
    system.worker("w1").start().wait_ready()
    dead = KeyedReader(system.bootstrap, system.topic("dead-letter"))
    await dead.start()
    outcomes = await TopicReader(system.bootstrap, system.topic("outcomes")).start()
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, max_request_size=2**21)
    await producer.start()
    try:
        t0 = datetime.now(UTC) - timedelta(seconds=2)
        corpus = hostile_corpus(t0)
        where: dict[tuple[int, int], tuple[str, bytes | None, bytes | None, str, str | None]] = {}
        valid: list[str] = []
        topic = system.topic("incident-events")
        for n, item in enumerate(corpus):
            _, key, value, _, _ = item
            meta = await producer.send_and_wait(topic, value, key=key)
            where[(meta.partition, meta.offset)] = item
            # A valid incident between every two hostile messages: opened, then answered.
            incident = f"INC-OK{n}"
            valid.append(incident)
            for e in (opened(incident, t0), event("r", incident, "responded", t0)):
                await producer.send_and_wait(topic, orjson.dumps(e), key=incident.encode())

        got = await dead.wait_for(lambda v: len(v) >= len(corpus), timeout_s=60)
        assert len(got) == len(corpus), [d["reason"] for d in got]
        for key, size, letter in dead.records:
            name, sent_key, value, reason, field = where[(letter["partition"], letter["offset"])]
            assert (letter["reason"], letter.get("field")) == (reason, field), name
            assert letter["topic"] == topic and letter["detail"], name
            assert size <= LETTER_LIMIT, name
            # The letter is keyed by the original's key (a long one cut to 1 KiB, and said so).
            assert key == (sent_key[:1024] if sent_key else sent_key), name
            if sent_key is not None and len(sent_key) > 1024:
                assert "record key cut to 1024 of 2048 bytes" in letter["detail"]
            copy = base64.b64decode(letter["original_b64"])
            if value is None:
                assert "original_size" not in letter and copy == b"", name
            elif len(value) < LETTER_LIMIT // 3:
                assert copy == value and letter["truncated"] is False, name
            else:  # an oversized original: a cut copy, said so, with the original's size
                assert letter["truncated"] is True and letter["original_size"] == len(value), name
                assert 0 < len(copy) < len(value) and value.startswith(copy), name
        # Every valid incident interleaved with them was processed.
        settled = await outcomes.wait_for(
            lambda v: {o["incident_id"] for o in v if o["met"]} >= set(valid), timeout_s=60
        )
        assert not {o["incident_id"] for o in settled} - set(valid)
    finally:
        await producer.stop()
        await dead.stop()
        await outcomes.stop()


def health(worker: WorkerProcess) -> dict[str, Any]:
    return orjson.loads(worker.get("/healthz"))["dead_letters"]


def gauge(worker: WorkerProcess, name: str) -> float:
    for family in text_string_to_metric_families(worker.get("/metrics").decode()):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not exported")


async def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_a_burst_of_garbage_pauses_the_events_topic_until_resumed(
    make_system: Callable[..., System],
) -> None:
    system = make_system(
        extra_env={
            "SLA_DEAD_LETTER_MAX_RATIO": "0.5",
            "SLA_DEAD_LETTER_WINDOW": "40",
            "SLA_DEAD_LETTER_MIN_COUNT": "20",
        }
    )
    await system.create_topics()
    await system.put_contracts([fast_contract()])
    worker = system.worker("w1").start()
    worker.wait_ready(partitions=4)
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    outcomes = await TopicReader(system.bootstrap, system.topic("outcomes")).start()
    dead = await TopicReader(system.bootstrap, system.topic("dead-letter")).start()
    try:
        t0 = datetime.now(UTC)
        await system.send([opened("INC-BEFORE", t0)])  # a clock running before the garbage
        assert health(worker)["paused"] is False and gauge(worker, "sla_dead_letter_paused") == 0
        garbage = 30  # the 20th trips the limit; the rest cannot trip it again after a resume
        await system.send([b"garbage %d" % i for i in range(garbage)], key=b"INC-BAD")
        await wait_until(lambda: health(worker)["paused"], 30, "the pause")
        state = health(worker)
        assert state["paused_ratio"] > 0.5 and state["dead_letters"] >= 20
        assert gauge(worker, "sla_dead_letter_paused") == 1
        await wait_until(lambda: "EVENTS PAUSED" in worker.output(), 10, "the ERROR line")
        line = next(ln for ln in worker.output().splitlines() if "EVENTS PAUSED" in ln)
        assert "ERROR" in line and "SLA_DEAD_LETTER_MAX_RATIO 0.500" in line

        # While paused, new events wait on the topic, but ticks go on: the clock started
        # before the garbage still breaches on time. A fetch already in flight at the pause
        # (Faust waits up to 1 s for records) may still deliver what arrives meanwhile.
        await asyncio.sleep(1.5)
        t1 = datetime.now(UTC)
        await system.send([opened("INC-AFTER", t1), event("r", "INC-AFTER", "responded", t1)])
        await alerts.wait_for(
            lambda v: any(a["incident_id"] == "INC-BEFORE" and a["kind"] == "breach" for a in v),
            timeout_s=30,
        )
        assert not any(o["incident_id"] == "INC-AFTER" for o in outcomes.values)
        assert health(worker)["paused"] is True

        url = worker.url("")
        status = CliRunner().invoke(main, ["resume-events", "--url", url, "--status"])
        assert status.exit_code == 0 and status.output.startswith("paused:"), status.output
        resumed = CliRunner().invoke(main, ["resume-events", "--url", url])
        assert resumed.exit_code == 0 and resumed.output.startswith("resumed"), resumed.output
        assert health(worker)["paused"] is False and gauge(worker, "sla_dead_letter_paused") == 0

        # After the resume the waiting events are processed, and no garbage was dropped.
        await outcomes.wait_for(
            lambda v: any(o["incident_id"] == "INC-AFTER" and o["met"] for o in v), timeout_s=30
        )
        letters = await dead.wait_for(lambda v: len(v) >= garbage, timeout_s=30)
        assert sorted(d["offset"] for d in letters) == sorted({d["offset"] for d in letters})
        assert len(letters) == garbage and health(worker)["paused"] is False
        again = CliRunner().invoke(main, ["resume-events", "--url", url])
        assert again.output.startswith("not paused"), again.output
    finally:
        for r in (alerts, outcomes, dead):
            await r.stop()
