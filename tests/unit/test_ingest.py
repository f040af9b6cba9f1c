"""HTTP ingest without a network: tokens by hash, size limits, per-item validation, 401/413/503."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader
from click.testing import CliRunner

from sla_stream.cli import main
from sla_stream.core.event_codec import decode_event
from sla_stream.settings import Settings
from sla_stream.web.auth import Credential, TokenSet, bearer_token, hash_token, parse_entry
from sla_stream.web.ingest import (
    BrokerUnavailable,
    Ingest,
    NotJson,
    Record,
    TopicPublish,
    check_items,
    read_at_most,
)

TOKEN = "s3cret-ingest-token"
OTHER = "another-token"


def event(n: int, incident: str = "INC-1", **extra: Any) -> dict[str, Any]:
    base = {
        "event_id": f"e{n}",
        "incident_id": incident,
        "type": "opened",
        "occurred_at": "2026-03-02T09:00:00+00:00",
        "contract_id": "acme",
        "severity": "P2",
    }
    return {**base, **extra}


# --- auth -------------------------------------------------------------------------------


def test_hash_token_is_the_sha256_hex_of_the_utf8_bytes() -> None:
    assert hash_token("abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert hash_token("é") == hashlib.sha256("é".encode()).hexdigest()
    with pytest.raises(ValueError):
        hash_token("")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (f"Bearer {TOKEN}", TOKEN),
        (f"bearer   {TOKEN}  ", TOKEN),
        (f"Basic {TOKEN}", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("", None),
        (None, None),
        (TOKEN, None),
    ],
)
def test_bearer_token_reads_only_the_bearer_scheme(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_token_set_verifies_by_digest_and_names_the_principal() -> None:
    tokens = TokenSet.parse([hash_token(TOKEN).upper(), f"{hash_token(OTHER)}:servicenow"])
    assert tokens.verify(TOKEN) == Credential(hash_token(TOKEN), None)
    assert tokens.verify(OTHER) == Credential(hash_token(OTHER), "servicenow")
    assert tokens.authenticate(f"Bearer {OTHER}") == Credential(hash_token(OTHER), "servicenow")
    assert tokens.verify("nope") is None
    assert tokens.verify(hash_token(TOKEN)) is None  # the digest itself is not a token
    assert tokens.verify("") is None and tokens.verify(None) is None
    assert len(tokens) == 2


def test_an_empty_token_set_accepts_nothing() -> None:
    assert TokenSet.parse(["", "  "]).authenticate(f"Bearer {TOKEN}") is None


def test_a_token_configured_in_clear_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as info:
        TokenSet.parse([hash_token(OTHER), TOKEN])
    assert "entry 2" in str(info.value)
    assert TOKEN not in str(info.value) and TOKEN[:6] not in str(info.value)
    with pytest.raises(ValueError, match="principal"):
        parse_entry(hash_token(TOKEN) + ":")


def test_settings_read_comma_separated_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLA_INGEST_TOKEN_HASHES", f" {hash_token(TOKEN)} ,,{hash_token(OTHER)}:x ")
    assert Settings().ingest_token_hashes == [hash_token(TOKEN), f"{hash_token(OTHER)}:x"]
    monkeypatch.delenv("SLA_INGEST_TOKEN_HASHES")
    assert Settings().ingest_token_hashes == []


def test_token_hash_command_prints_the_digest_of_stdin() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["token", "hash"], input=f"{TOKEN}\n")
    assert result.exit_code == 0 and result.output == hash_token(TOKEN) + "\n"
    assert runner.invoke(main, ["token", "hash"], input="  \n").exit_code != 0


def test_token_new_prints_a_token_and_its_hash() -> None:
    lines = CliRunner().invoke(main, ["token", "new"]).output.splitlines()
    token, digest = lines[0].split()[1], lines[1].split()[1]
    assert len(token) >= 40 and digest == hash_token(token)


# --- per-item validation ------------------------------------------------------------------


def test_a_batch_with_one_bad_item_rejects_that_item_with_reason_and_field() -> None:
    items = [event(1), event(2, incident="INC-2", severity="P9"), event(3, incident="INC-3")]
    batch = check_items(orjson.dumps(items), max_event_bytes=65536)
    assert [r["accepted"] for r in batch.results] == [True, False, True]
    assert batch.results[0] == {"index": 0, "event_id": "e1", "accepted": True}
    bad = batch.results[1]
    assert (bad["index"], bad["reason"], bad["field"]) == (1, "invalid", "severity")
    assert "severity" in bad["detail"]
    assert [r.key for r in batch.records] == [b"INC-1", b"INC-3"]
    # What is published is what the worker's codec accepts, unchanged.
    assert decode_event(batch.records[1].value, 65536).event_id == "e3"


def test_an_update_is_accepted_and_an_unknown_type_refused_naming_the_field() -> None:
    """`updated` (a customer-visible update, engine rule 14) passes the door and the codec."""
    update = {"event_id": "u1", "incident_id": "INC-1", "type": "updated"}
    update["occurred_at"] = "2026-03-02T10:00:00+00:00"
    typo = {**update, "event_id": "u2", "type": "update"}
    batch = check_items(orjson.dumps([update, typo]), max_event_bytes=65536)
    assert [r["accepted"] for r in batch.results] == [True, False]
    assert (batch.results[1]["reason"], batch.results[1]["field"]) == ("invalid", "type")
    assert decode_event(batch.records[0].value, 65536).type == "updated"


def test_one_object_is_a_batch_of_one() -> None:
    batch = check_items(orjson.dumps(event(7)), max_event_bytes=65536)
    assert batch.results == [{"index": 0, "event_id": "e7", "accepted": True}]
    assert orjson.loads(batch.records[0].value) == event(7)


def test_items_are_refused_for_the_same_reasons_as_on_the_topic() -> None:
    missing = {k: v for k, v in event(1).items() if k != "contract_id"}
    naive = event(2, occurred_at="2026-03-02T09:00:00")
    big = event(3, attributes={"blob": "x" * 500})
    batch = check_items(orjson.dumps([missing, naive, 42, big]), max_event_bytes=400)
    reasons = [(r["reason"], r["field"]) for r in batch.results]
    assert reasons == [
        ("invalid", None),  # a rule of the model as a whole: contract_id required on opened
        ("invalid", "occurred_at"),
        ("invalid", None),
        ("oversize", None),
    ]
    assert "contract_id" in batch.results[0]["detail"]
    assert batch.records == []


@pytest.mark.parametrize("body", [b"", b"{", b"events please", b"\xff\xfe"])
def test_a_body_that_is_not_json_raises(body: bytes) -> None:
    with pytest.raises(NotJson):
        check_items(body, max_event_bytes=65536)


# --- the endpoint's behaviour ---------------------------------------------------------------


class Recorder:
    """A publish step that keeps what it was given (what reaches a topic is the broker tests')."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[Record]] = []
        self.fail = fail

    async def __call__(self, records: Sequence[Record]) -> None:
        if self.fail:
            raise BrokerUnavailable("1 of 1 not acknowledged within 0.1s")
        self.batches.append(list(records))


class Body:
    """A request body that records how much the endpoint asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: list[int] = []

    async def __call__(self, n: int) -> bytes:
        self.asked.append(n)
        return self.data[:n]


def ingest(publish: Recorder, max_request_bytes: int = 4096) -> Ingest:
    return Ingest(
        TokenSet.parse([hash_token(TOKEN)]),
        publish,
        max_request_bytes=max_request_bytes,
        max_event_bytes=2048,
        retry_after_s=7,
    )


AUTH = f"Bearer {TOKEN}"


async def test_202_with_per_item_results_and_only_accepted_items_published() -> None:
    publish = Recorder()
    data = orjson.dumps([event(1), {"event_id": "e2"}, event(3, incident="INC-3")])
    reply = await ingest(publish).handle(AUTH, len(data), Body(data))
    assert reply.status == 202
    assert (reply.body["accepted"], reply.body["rejected"]) == (2, 1)
    assert [r["accepted"] for r in reply.body["results"]] == [True, False, True]
    assert reply.body["results"][1]["reason"] == "invalid"
    assert [[r.key for r in b] for b in publish.batches] == [[b"INC-1", b"INC-3"]]


async def test_nothing_accepted_is_422_with_the_results_and_publishes_nothing() -> None:
    publish = Recorder()
    data = orjson.dumps([{"event_id": "e1"}])
    reply = await ingest(publish).handle(AUTH, None, Body(data))
    assert reply.status == 422 and reply.body["accepted"] == 0
    assert "valid" in reply.body["error"]
    assert reply.body["results"][0]["reason"] == "invalid"
    assert publish.batches == []


async def test_an_empty_batch_is_accepted_as_nothing() -> None:
    publish = Recorder()
    reply = await ingest(publish).handle(AUTH, None, Body(b"[]"))
    assert (reply.status, reply.body["accepted"], reply.body["rejected"]) == (202, 0, 0)
    assert publish.batches == []


@pytest.mark.parametrize(
    ("header", "challenge"),
    [
        (None, 'Bearer realm="sla-stream"'),
        (f"Basic {TOKEN}", 'Bearer realm="sla-stream", error="invalid_token"'),
        (f"Bearer {OTHER}", 'Bearer realm="sla-stream", error="invalid_token"'),
        (f"Bearer {hash_token(TOKEN)}", 'Bearer realm="sla-stream", error="invalid_token"'),
    ],
)
async def test_401_without_a_valid_token_and_the_body_is_not_read(
    header: str | None, challenge: str
) -> None:
    publish, body = Recorder(), Body(orjson.dumps(event(1)))
    reply = await ingest(publish).handle(header, len(body.data), body)
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == challenge
    assert body.asked == [] and publish.batches == []


async def test_413_on_content_length_before_reading() -> None:
    publish, body = Recorder(), Body(b"[]")
    reply = await ingest(publish, max_request_bytes=100).handle(AUTH, 101, body)
    assert reply.status == 413 and "100 bytes" in reply.body["error"]
    assert body.asked == []


async def test_413_on_the_body_actually_read_whatever_the_header_said() -> None:
    publish = Recorder()
    data = orjson.dumps([event(i) for i in range(10)])
    assert len(data) > 100
    for declared in (None, 50):
        body = Body(data)
        reply = await ingest(publish, max_request_bytes=100).handle(AUTH, declared, body)
        assert reply.status == 413
        assert body.asked == [101]  # never more than limit + 1
    assert publish.batches == []


async def test_a_body_exactly_at_the_limit_is_read() -> None:
    data = orjson.dumps(event(1))
    reply = await ingest(Recorder(), max_request_bytes=len(data)).handle(AUTH, None, Body(data))
    assert reply.status == 202


async def test_400_when_the_body_is_not_json() -> None:
    reply = await ingest(Recorder()).handle(AUTH, None, Body(b"event_id=e1"))
    assert reply.status == 400 and "not JSON" in reply.body["error"]


async def test_503_with_retry_after_when_the_broker_does_not_acknowledge() -> None:
    data = orjson.dumps([event(1), {"bad": 1}])
    reply = await ingest(Recorder(fail=True)).handle(AUTH, None, Body(data))
    assert reply.status == 503
    assert reply.headers == {"Retry-After": "7"}
    assert "results" not in reply.body  # nothing is reported accepted
    assert "not acknowledged" in reply.body["error"]


# --- reading at most n bytes of an aiohttp body -------------------------------------------------


def stream_of(*chunks: bytes) -> StreamReader:
    loop = asyncio.get_running_loop()
    reader = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return reader


async def test_read_at_most_stops_at_n_across_chunks_and_leaves_the_rest() -> None:
    reader = stream_of(b"abc", b"defg", b"hij")
    assert await read_at_most(reader, 5) == b"abcde"
    assert await reader.read() == b"fghij"
    assert await read_at_most(stream_of(b"ab", b"c"), 10) == b"abc"
    assert await read_at_most(stream_of(), 10) == b""


# --- waiting for the broker's acknowledgement ----------------------------------------------------


class Sends:
    """Stands in for a Faust topic's `send`, which returns the producer's delivery future.

    Only the waiting is tested here; delivery to a real topic, and a real broker that is gone,
    are in tests/integration/test_ingest.py.
    """

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[Any]:
        if self.outcome == "refused":
            raise RuntimeError("producer stopped")
        if self.outcome == "stuck-send":
            await asyncio.sleep(3600)  # e.g. waiting for metadata from a broker that is away
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.outcome == "acked":
            future.set_result(("topic", 0, len(self.futures)))
        elif self.outcome == "failed":
            future.set_exception(ConnectionError("broker went away"))
        self.futures.append(future)  # "pending": never acknowledged
        return future


RECORDS = [Record(b"INC-1", b"{}"), Record(b"INC-2", b"{}")]


async def test_topic_publish_returns_once_every_record_is_acknowledged() -> None:
    sends = Sends("acked")
    await TopicPublish(sends, timeout_s=5).__call__(RECORDS)
    assert len(sends.futures) == 2


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        ("pending", "2 of 2 not acknowledged"),
        ("failed", "delivery failed"),
        ("refused", "send failed"),
        ("stuck-send", "not sent within"),
    ],
)
async def test_topic_publish_raises_broker_unavailable(outcome: str, message: str) -> None:
    sends = Sends(outcome)
    with pytest.raises(BrokerUnavailable, match=message):
        await TopicPublish(sends, timeout_s=0.2)(RECORDS)
    # A late acknowledgement is still the producer's to deliver: nothing was cancelled.
    assert not any(f.cancelled() for f in sends.futures)
