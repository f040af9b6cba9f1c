"""`POST /api/v1/events`: incident events over HTTP, validated and published once acknowledged.

The body is one event object or a JSON array of them, with `Authorization: Bearer <token>`.
Steps, in order:

1. Authenticate: a token whose SHA-256 is configured (`SLA_INGEST_TOKEN_HASHES`), else 401 with
   `WWW-Authenticate: Bearer` (the body is not read).
2. Size: a `Content-Length` over `SLA_MAX_REQUEST_BYTES` is refused before reading; otherwise at
   most limit + 1 bytes are read, and more than the limit is 413 whatever the header said.
3. Parse: a body that is not UTF-8 JSON at all is 400.
4. Validate each item with the worker's own codec (`check_nesting`, `decode_event`) on the
   exact bytes that will be published, so what is accepted here is what the worker accepts and
   what is refused here the worker refuses for the same reason. No item valid: 422 with the
   per-item results.
5. Publish the accepted items to `sla.incident-events`, keyed by incident id, and wait for the
   broker to acknowledge every one of them. If it does not within `SLA_INGEST_ACK_TIMEOUT_S`,
   the answer is 503 with `Retry-After`: the request failed, and a retry is safe because the
   worker de-duplicates by `event_id` (an event whose acknowledgement was merely late may then
   arrive twice and count once).
6. 202 (some accepted) with `{"accepted": n, "rejected": m, "results": [...]}`, one result per
   item in order:
   `{"index", "event_id", "accepted": true}` or
   `{"index", "accepted": false, "reason", "field", "detail"}`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from sla_stream.core.errors import InvalidEvent
from sla_stream.core.event_codec import check_nesting, decode_event, not_json
from sla_stream.settings import Settings
from sla_stream.web.auth import TokenSet
from sla_stream.web.replies import Reply, send_reply

if TYPE_CHECKING:
    from sla_stream.web.access import Routes

PATH = "/api/v1/events"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """One accepted event as it goes to the events topic."""

    key: bytes
    value: bytes


@dataclass(frozen=True)
class Batch:
    """Per-item results in request order, and the records to publish."""

    results: list[dict[str, Any]]
    records: list[Record]


class NotJson(ValueError):
    """The request body is not JSON at all."""


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge every record in time; nothing may be reported accepted."""


class Publish(Protocol):
    async def __call__(self, records: Sequence[Record]) -> None:
        """Return once the broker acknowledged every record; else raise `BrokerUnavailable`."""


def check_items(body: bytes, max_event_bytes: int) -> Batch:
    """Parse the body (an event or an array of events) and validate each item."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotJson(str(not_json(body, exc))) from exc
    items = data if isinstance(data, list) else [data]
    results: list[dict[str, Any]] = []
    records: list[Record] = []
    for index, item in enumerate(items):
        try:
            # orjson reads 1,024 levels but writes 254: refuse depth before writing, with the
            # same reason the worker gives the same bytes on the topic.
            check_nesting(item)
            raw = orjson.dumps(item)  # the bytes validated are the bytes published
            event = decode_event(raw, max_event_bytes)
        except orjson.JSONEncodeError as exc:  # not expected after the depth check; never a 500
            unwritable = InvalidEvent(f"cannot be written as JSON: {exc}", reason="invalid")
            results.append(_refused(index, unwritable))
            continue
        except InvalidEvent as exc:
            results.append(_refused(index, exc))
            continue
        results.append({"index": index, "event_id": event.event_id, "accepted": True})
        records.append(Record(event.incident_id.encode(), raw))
    return Batch(results, records)


def _refused(index: int, exc: InvalidEvent) -> dict[str, Any]:
    return {
        "index": index,
        "accepted": False,
        "reason": exc.reason,
        "field": exc.field,
        "detail": str(exc),
    }


ReadBody = Callable[[int], Awaitable[bytes]]  # reads at most n bytes of the request body


class Ingest:
    """The endpoint's behaviour, apart from aiohttp and Faust (see `register_ingest_view`)."""

    def __init__(
        self,
        tokens: TokenSet,
        publish: Publish,
        *,
        max_request_bytes: int,
        max_event_bytes: int,
        retry_after_s: int,
    ) -> None:
        self.tokens = tokens
        self.publish = publish
        self.max_request_bytes = max_request_bytes
        self.max_event_bytes = max_event_bytes
        self.retry_after_s = retry_after_s

    async def handle(
        self, authorization: str | None, content_length: int | None, read: ReadBody
    ) -> Reply:
        credential = self.tokens.authenticate(authorization)
        if credential is None:
            return self._unauthorized(authorization)
        limit = self.max_request_bytes
        if content_length is not None and content_length > limit:
            return self._too_large()
        body = await read(limit + 1)
        if len(body) > limit:
            return self._too_large()
        try:
            batch = check_items(body, self.max_event_bytes)
        except NotJson as exc:
            return Reply(400, {"error": f"the body is not JSON: {exc}"})
        if batch.records:
            try:
                await self.publish(batch.records)
            except BrokerUnavailable as exc:
                log.warning("ingest: %d event(s) not acknowledged: %s", len(batch.records), exc)
                return Reply(
                    503,
                    {"error": f"the broker did not acknowledge the events: {exc}"},
                    {"Retry-After": str(self.retry_after_s)},
                )
        accepted = len(batch.records)
        if batch.results and not accepted:  # nothing to accept: the request itself is bad
            return Reply(
                422,
                {
                    "error": "no event in the body was valid; see results",
                    "accepted": 0,
                    "rejected": len(batch.results),
                    "results": batch.results,
                },
            )
        log.debug(
            "ingest: %d accepted, %d rejected from %s",
            accepted,
            len(batch.results) - accepted,
            credential.principal or credential.digest[:12],
        )
        return Reply(
            202,
            {
                "accepted": accepted,
                "rejected": len(batch.results) - accepted,
                "results": batch.results,
            },
        )

    def _unauthorized(self, authorization: str | None) -> Reply:
        challenge = 'Bearer realm="sla-stream"'
        if authorization:  # RFC 6750: say why when credentials were presented
            challenge += ', error="invalid_token"'
        return Reply(
            401, {"error": "a valid bearer token is required"}, {"WWW-Authenticate": challenge}
        )

    def _too_large(self) -> Reply:
        return Reply(413, {"error": f"the body exceeds {self.max_request_bytes} bytes"})


async def read_at_most(stream: Any, n: int) -> bytes:
    """Up to `n` bytes of an aiohttp request body, never more (a larger body is left unread)."""
    try:
        return bytes(await stream.readexactly(n))
    except asyncio.IncompleteReadError as exc:
        return bytes(exc.partial)


class TopicPublish:
    """Sends records on a Faust topic and waits for the broker's acknowledgement of each."""

    def __init__(self, topic: Any, timeout_s: float) -> None:
        self.topic = topic
        self.timeout_s = timeout_s

    async def __call__(self, records: Sequence[Record]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        acks: list[asyncio.Future[Any]] = []
        try:
            # `send` can itself wait (for metadata, for buffer space) when the broker is away.
            async with asyncio.timeout_at(deadline):
                for r in records:
                    acks.append(await self.topic.send(key=r.key, value=r.value))
        except TimeoutError as exc:
            raise BrokerUnavailable(f"not sent within {self.timeout_s:g}s") from exc
        except Exception as exc:  # ProducerSendError, KafkaError: the send was refused
            raise BrokerUnavailable(f"send failed: {exc!r}") from exc
        finally:
            for ack in acks:  # a late failure must not be logged as "never retrieved"
                ack.add_done_callback(_consume)
        # asyncio.wait does not cancel what is pending: the producer still owns those futures.
        _, pending = await asyncio.wait(acks, timeout=max(0.0, deadline - loop.time()))
        if pending:
            raise BrokerUnavailable(
                f"{len(pending)} of {len(acks)} not acknowledged within {self.timeout_s:g}s"
            )
        for ack in acks:
            if ack.exception() is not None:
                raise BrokerUnavailable(f"delivery failed: {ack.exception()!r}")


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def register_ingest_view(app: Any, settings: Settings, events_topic: str, routes: Routes) -> Ingest:
    """Add `POST /api/v1/events` to a Faust app's web server; returns its `Ingest`."""
    from faust.web import View

    from sla_stream.web.access import Access

    topic = app.topic(
        events_topic,
        partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
    )
    tokens = TokenSet.parse(settings.ingest_token_hashes)
    if not tokens:
        log.warning("ingest: no SLA_INGEST_TOKEN_HASHES configured; %s answers 401", PATH)
    ingest = Ingest(
        tokens,
        TopicPublish(topic, settings.ingest_ack_timeout_s),
        max_request_bytes=settings.max_request_bytes,
        max_event_bytes=settings.max_event_bytes,
        retry_after_s=settings.ingest_retry_after_s,
    )

    class IngestView(View):
        async def post(self, request: Any, **kwargs: Any) -> Any:
            reply = await ingest.handle(
                request.headers.get("Authorization"),
                request.content_length,
                lambda n: read_at_most(request.content, n),
            )
            return send_reply(self, reply)

    routes.page(PATH, Access.INGEST, name="ingest_events")(IngestView)
    return ingest
