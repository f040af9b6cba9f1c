"""The worker process's plumbing: the broker to use, its topics, and a few Faust adjustments."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Iterator
from typing import Any

from sla_stream.broker import EmbeddedBroker, _accepts
from sla_stream.settings import Settings
from sla_stream.stream.admin import ensure_topics
from sla_stream.stream.local_state import BrokerIdentity, probe_broker
from sla_stream.stream.topics import topic_specs

EMBEDDED_HOST = "127.0.0.1"

log = logging.getLogger(__name__)


def default_bootstrap(settings: Settings) -> str:
    """Where clients connect: `SLA_BROKER`, else the embedded broker's documented address."""
    return settings.broker or f"{EMBEDDED_HOST}:{settings.embedded_port}"


@contextlib.contextmanager
def broker_for(settings: Settings) -> Iterator[str]:
    """Yield a bootstrap address; start the embedded broker when none is configured or running."""
    if settings.broker:
        yield settings.broker
        return
    port = settings.embedded_port
    if _accepts(EMBEDDED_HOST, port):
        log.info("using the broker already listening on %s:%s", EMBEDDED_HOST, port)
        yield f"{EMBEDDED_HOST}:{port}"
        return
    with EmbeddedBroker(EMBEDDED_HOST, port) as broker:
        log.info("started the embedded broker on %s (memory-only)", broker.bootstrap)
        yield broker.bootstrap


def prepare_topics(settings: Settings, bootstrap: str) -> BrokerIdentity:
    """Declare the topics; returns what the broker says it is."""

    async def prepare() -> BrokerIdentity:
        await ensure_topics(bootstrap, topic_specs(settings))
        return await probe_broker(bootstrap, settings.app_id)

    return asyncio.run(prepare())


def recovery_check_for(settings: Settings, broker: BrokerIdentity) -> tuple[Settings, str | None]:
    """Turn Faust's recovery consistency check off on the embedded broker however it is reached
    (`SLA_BROKER` pointing at `sla-stream broker`): its wrong end offsets make the check fail
    every restart after a SIGKILL (`ConsistencyError`). An explicit setting wins."""
    if settings.recovery_consistency_check is not None or not broker.embedded:
        return settings, None
    if settings.embedded:  # started here: already off
        return settings, None
    note = (
        f"{broker.bootstrap} is the embedded broker (cluster id {broker.cluster_id}): "
        "Faust's recovery consistency check is off, as its end offsets are wrong after "
        "multi-record batches"
    )
    return settings.model_copy(update={"recovery_consistency_check": False}), note


# Faust creates its consumer with `fetch_max_wait_ms=1500`, hard-coded. The embedded broker
# does not answer a waiting fetch when data arrives (measured: a message sent to an idle topic
# reached a consumer after 0.50 s at the median and 0.75 s at worst with a 1500 ms wait, 8 ms
# with 50 ms), so each tick, and the alerts it fires, came that much late. Kafka answers as soon
# as data arrives; a shorter wait costs an idle worker a few more fetch requests a second.
FETCH_MAX_WAIT_MS = 100


def prompt_fetches() -> None:
    """Make Faust's worker consumer wait at most `FETCH_MAX_WAIT_MS` in a fetch (idempotent)."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    create = AIOKafkaConsumerThread._create_worker_consumer
    if getattr(create, "prompt_fetches", False):
        return

    def create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by AIOKafkaConsumer.start()
        return consumer

    create_worker_consumer.prompt_fetches = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]


def leave_group_on_stop() -> None:
    """Make a stopping consumer leave its group at generation 0 too (idempotent).

    aiokafka sends LeaveGroup only when `generation > 0`: Kafka numbers a group's generations
    from 1, but the embedded broker from 0, so the first worker of a group left without a word.
    The broker then held its successor until the silent member's session expired (a restart
    waited about 18 s for the group instead of one join delay, measured at a 10 s session
    timeout). A member id is what LeaveGroup needs; a stale one is refused harmlessly.
    """
    from aiokafka.consumer.group_coordinator import GroupCoordinator
    from aiokafka.errors import KafkaError
    from aiokafka.protocol.group import JoinGroupRequest, LeaveGroupRequest

    if getattr(GroupCoordinator._maybe_leave_group, "leaves_at_zero", False):
        return

    async def maybe_leave_group(self: GroupCoordinator) -> None:
        joined = self.generation >= 0 and self.member_id != JoinGroupRequest.UNKNOWN_MEMBER_ID
        if joined and self._group_instance_id is None:
            try:
                await self._send_req(LeaveGroupRequest(self.group_id, self.member_id))
            except KafkaError as err:
                log.error("LeaveGroup request failed: %s", err)
            else:
                log.info("left group %s (generation %d)", self.group_id, self.generation)
        self.reset_generation()

    maybe_leave_group.leaves_at_zero = True  # type: ignore[attr-defined]
    GroupCoordinator._maybe_leave_group = maybe_leave_group  # type: ignore[method-assign]


def start_tables_at_once() -> None:
    """Drop the one-second pause Faust's table manager takes before it starts (idempotent).

    Faust waits there for tables an agent might still declare; every table of the worker is
    declared when the app is built (`build_stream`), and the consumer's group join waits for
    the table manager, so each start paid that second before joining.
    """
    from faust.tables.manager import TableManager

    if getattr(TableManager.on_start, "at_once", False):
        return

    async def on_start(self: TableManager) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    on_start.at_once = True  # type: ignore[attr-defined]
    TableManager.on_start = on_start  # type: ignore[method-assign]


def keep_queued_messages(flow: Any) -> None:
    """Make `flow.resume()` clear the agents' queues only when it really resumes.

    Faust's flow control clears every stream queue on `resume()`. After a restart that reads a
    changelog, Faust resumes the flow for that reading, then resumes the stream partitions, seeks
    them and calls `resume()` again: the events fetched in between and still queued were
    dropped, their offsets already read, so they were never processed (seen in the SIGKILL test:
    one event per partition lost, none dead-lettered). The queues are also cleared when a
    rebalance suspends the flow, so a resume of a flow already running has nothing stale to drop.
    """
    if getattr(flow.resume, "keeps_queued", False):
        return
    resume = flow.resume

    def resume_if_suspended() -> None:
        if not flow.is_active():
            resume()

    resume_if_suspended.keeps_queued = True  # type: ignore[attr-defined]
    flow.resume = resume_if_suspended


def make_current(event: Any) -> None:
    """Make `event` the current one of this task only (Faust tables write to its partition).

    Not `stream._set_current_event`: that also sets the stream's own attribute, which the
    iteration filling the next batch reads while this task handles the last one.
    """
    from faust.streams import _current_event  # Faust loads only where a worker runs

    _current_event.set(weakref.ref(event))


def current_generation(app: Any, batch: list[Any]) -> list[Any]:
    """The events of a batch taken in the consumer's current generation.

    Events fetched before a rebalance are redelivered after it (Faust's own iteration skips
    them). `take_events` acks every event of a batch; a skipped one is marked acked here
    without acking its offset, so a commit cannot pass it before its redelivered copy is done.
    """
    generation = app.consumer_generation_id
    current = []
    for event in batch:
        if event.message.generation_id == generation:
            current.append(event)
        else:
            event.message.acked = True
    return current
