"""The Alertmanager bridge: consume `sla.alerts` in a consumer group, post to `/api/v2/alerts`.

One loop, in order: read a batch -> apply it to the `AlertBook` -> post what changed (retrying
with exponential backoff until an Alertmanager accepts it) -> commit the batch's offsets ->
re-post everything firing when the resend interval is up. Offsets are committed only after a
post was accepted, so a bridge that dies or an Alertmanager that is down loses nothing; what is
read twice changes nothing (the book knows the ids it holds and cleared).

While no Alertmanager accepts a post, the bridge pauses its partitions and keeps calling
`getmany` between retries: aiokafka drops a member from its group when `max_poll_interval` passes
without one, and the group would then rebalance over and over, replaying what was not committed.
Paused partitions return nothing, so the batch being posted stays the last one read.

On each partition assignment the book is rebuilt from the topic, up to the group's committed
offset (what Alertmanager already has), without posting; then the whole firing set is re-posted.
A group with no committed offset yet takes the topic's history as delivered the same way and
starts live at its end, so a new bridge posts what fires now, not every alert of the past week.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from sla_stream.core.models import Alert
from sla_stream.notify.alertmanager import VALID_FOR_RESENDS, AlertBook, Change, body
from sla_stream.notify.metrics import BridgeMetrics

log = logging.getLogger(__name__)

POST_CHUNK = 500  # alerts per request: a large firing set goes in several bounded posts


@dataclass(frozen=True)
class BridgeConfig:
    urls: tuple[str, ...]  # Alertmanager base URLs; a post counts once any of them accepted it
    bootstrap: str
    topic: str
    group_id: str
    resend_interval_s: float = 60.0
    max_age_s: float | None = 7 * 86400.0
    web_host: str = "127.0.0.1"
    web_port: int | None = None
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    post_timeout_s: float = 10.0  # at most half of max_poll_interval_s (see AlertmanagerClient)
    max_poll_interval_s: float = 300.0  # aiokafka's: the group drops a member idle this long

    @property
    def valid_for_s(self) -> float:
        return VALID_FOR_RESENDS * self.resend_interval_s


class AlertmanagerClient:
    """Posts to every configured Alertmanager; retries while none of them accepts."""

    def __init__(
        self,
        config: BridgeConfig,
        session: aiohttp.ClientSession,
        m: BridgeMetrics,
        wait: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        """`wait(seconds)` passes the time between retries (the bridge polls its consumer)."""
        self.config, self.session, self.metrics, self.wait = config, session, m, wait
        self.endpoints = [u.rstrip("/") + "/api/v2/alerts" for u in config.urls]
        # One attempt must end well inside max_poll_interval: no poll happens during it.
        self.timeout_s = min(config.post_timeout_s, config.max_poll_interval_s / 2)

    async def post(self, entries: list[dict]) -> bool:
        """Return once every chunk was accepted; True when a post failed first (Alertmanager was
        down: it may have restarted empty, so the caller re-posts the firing set)."""
        failed = False
        for start in range(0, len(entries), POST_CHUNK):
            if start:  # a large firing set takes many posts: poll between them too
                await self.wait(0.0)
            failed |= await self._post_until_accepted(entries[start : start + POST_CHUNK])
        return failed

    async def _post_until_accepted(self, entries: list[dict]) -> bool:
        data = orjson.dumps(entries)
        delay, failed = self.config.backoff_initial_s, False
        while True:
            results = await asyncio.gather(*(self._post_one(url, data) for url in self.endpoints))
            if any(results):
                return failed
            failed = True
            log.warning(
                "no Alertmanager accepted %d alerts; retrying in %.1fs", len(entries), delay
            )
            await self.wait(delay)
            delay = min(delay * 2, self.config.backoff_max_s)

    async def _post_one(self, url: str, data: bytes) -> bool:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        headers = {"Content-Type": "application/json"}
        try:
            async with self.session.post(url, data=data, headers=headers, timeout=timeout) as r:
                text = await r.text()
                if r.status == 200:
                    self.metrics.posts.labels("accepted").inc()
                    self.metrics.last_accepted.set(time.time())
                    return True
                if r.status == 400:  # it keeps the valid alerts of a post and names the others
                    self.metrics.posts.labels("refused").inc()
                    log.error("Alertmanager %s refused alerts (not retried): %s", url, text)
                    return True
                log.warning("Alertmanager %s answered %s: %s", url, r.status, text[:200])
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("cannot post to %s: %r", url, exc)
        self.metrics.posts.labels("failed").inc()
        return False


def decode(record: ConsumerRecord) -> Alert | None:
    try:
        return Alert.from_json(record.value or b"")
    except ValidationError as exc:  # our own topic: a bad record is a bug upstream, not input
        log.error(
            "skipping an undecodable alert at %s/%s: %s", record.partition, record.offset, exc
        )
        return None


async def replay(
    bootstrap: str, until: dict[TopicPartition, int], apply: Callable[[Alert, int], None]
) -> int:
    """Apply every record before `until[tp]` from the start of each partition; no group."""
    if not until:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    count, idle, left = 0, 0, dict(until)
    try:
        await consumer.start()
        consumer.assign(list(until))
        await consumer.seek_to_beginning(*until)
        while left and idle < 30:
            batch = await consumer.getmany(*left, timeout_ms=1000)
            idle = 0 if batch else idle + 1
            for tp, records in batch.items():
                for record in records:
                    alert = decode(record) if record.offset < until[tp] else None
                    if alert is not None:
                        apply(alert, tp.partition)
                        count += 1
            for tp in list(left):
                if await consumer.position(tp) >= left[tp]:
                    del left[tp]
        if left:
            log.warning("replay stopped short on %s (no records for 30 s)", sorted(left))
    finally:
        await consumer.stop()
    return count


class _FollowAssignment(ConsumerRebalanceListener):
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Another bridge may own them next and clear what fires there: forget, do not resolve.
        self.bridge.book.drop_partitions(tp.partition for tp in revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.bridge.catch_up(assigned)


class Bridge:
    """Runs until cancelled. `clock` returns wall seconds (only the shell reads the clock)."""

    def __init__(
        self,
        config: BridgeConfig,
        metrics: BridgeMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.metrics = metrics or BridgeMetrics()
        self.clock = clock
        self.book = AlertBook(config.max_age_s)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=config.bootstrap,
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
            max_poll_interval_ms=int(config.max_poll_interval_s * 1000),
        )
        self.client: AlertmanagerClient | None = None
        self.pending_commit: dict[TopicPartition, int] = {}
        self.resend_at = float("inf")  # set when an assignment has been caught up

    async def run(self) -> None:
        self.consumer.subscribe([self.config.topic], listener=_FollowAssignment(self))
        runner = await self._serve() if self.config.web_port is not None else None
        try:
            await self.consumer.start()
            async with aiohttp.ClientSession() as session:
                self.client = AlertmanagerClient(
                    self.config, session, self.metrics, self.poll_paused
                )
                log.info("bridge %s -> %s", self.config.topic, ", ".join(self.config.urls))
                while True:
                    await self.step()
        finally:
            await self.consumer.stop()
            if runner is not None:
                await runner.cleanup()

    async def step(self) -> None:
        """One batch: apply, post what changed, commit, re-post when due."""
        batch = await self.consumer.getmany(timeout_ms=500, max_records=1000)
        now = self.clock()
        change, offsets = Change(), dict(self.pending_commit)
        for tp, records in batch.items():
            for record in records:
                alert = decode(record)
                if alert is not None:
                    self.metrics.consumed.labels(alert.kind, "live").inc()
                    change.extend(self.book.apply(alert, tp.partition, now))
            offsets[tp] = records[-1].offset + 1
        if change:
            await self._post(body(change.fire, change.resolve, now, self.config.valid_for_s))
        if offsets:
            await self._commit(offsets)
        if self.clock() >= self.resend_at:
            await self.resend()
        self.metrics.firing.set(len(self.book))

    async def resend(self) -> None:
        now = self.clock()
        self.resend_at = now + self.config.resend_interval_s
        firing = self.book.firing(now)
        if firing:
            await self._post(body(firing, [], now, self.config.valid_for_s))
            log.debug("re-posted %d firing alerts", len(firing))

    async def catch_up(self, assigned: list[TopicPartition]) -> None:
        """Rebuild the book for newly assigned partitions up to what Alertmanager already has."""
        self.metrics.assignments.inc()
        until: dict[TopicPartition, int] = {}
        for tp in assigned:
            committed = await self.consumer.committed(tp)
            if committed is None:  # a new group: history counts as delivered, live from the end
                committed = (await self.consumer.end_offsets([tp]))[tp]
                self.pending_commit[tp] = committed
            self.consumer.seek(tp, committed)  # the replay boundary, whatever commits race it
            until[tp] = committed

        def apply(alert: Alert, partition: int) -> None:
            self.metrics.consumed.labels(alert.kind, "replayed").inc()
            self.book.apply(alert, partition, self.clock())

        n = await replay(self.config.bootstrap, {tp: o for tp, o in until.items() if o}, apply)
        log.info("assigned %s; rebuilt from %d records", sorted(tp.partition for tp in until), n)
        self.resend_at = 0.0  # re-post the firing set at once

    async def poll_paused(self, wait_s: float) -> None:
        """Spend `wait_s` in `getmany` with every assigned partition paused: the member stays in
        its group (aiokafka counts time inside `getmany` as polling) and reads nothing new."""
        deadline = time.monotonic() + wait_s
        while True:
            # Re-paused each time: a rebalance meanwhile assigns partitions unpaused.
            self.consumer.pause(*self.consumer.assignment())
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            batch = await self.consumer.getmany(timeout_ms=left_ms)
            for tp, records in batch.items():  # assigned between pause and fetch: read them later
                self.consumer.seek(tp, records[0].offset)
            if time.monotonic() >= deadline:
                return

    async def _post(self, entries: list[dict]) -> None:
        assert self.client is not None
        try:
            failed = await self.client.post(entries)
        finally:
            self.consumer.resume(*self.consumer.paused())
        if failed:
            log.info("Alertmanager accepts posts again; re-posting the firing set")
            self.resend_at = 0.0

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assigned = self.consumer.assignment()
        mine = {tp: o for tp, o in offsets.items() if tp in assigned}
        try:
            if mine:
                await self.consumer.commit(mine)
            self.pending_commit.clear()
        except KafkaError as exc:  # a rebalance took them: whoever owns them now re-reads them
            log.warning("commit failed (%r); the records will be read again", exc)

    async def _serve(self) -> web.AppRunner:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        async def metrics(request: web.Request) -> web.Response:
            data = generate_latest(self.metrics.registry)
            return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def health(request: web.Request) -> web.Response:
            parts = sorted(tp.partition for tp in self.consumer.assignment())
            return web.json_response({"ok": True, "partitions": parts, "firing": len(self.book)})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.config.web_host, self.config.web_port).start()
        return runner


async def run_bridge(config: BridgeConfig) -> None:
    """Run until SIGTERM or SIGINT, then leave the group cleanly."""
    import signal

    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await Bridge(config).run()
