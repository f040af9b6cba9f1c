"""The incident agent's steps: decode -> de-duplicate -> core -> persist -> publish.

`on_event` handles one raw message of the events topic, `on_tick` one tick of a partition.
Both run inside Faust's stream iteration (table writes need the current event), and both pass
time explicitly into the core: the event's own instant, or the tick's instant.

`on_batch` takes what the agent took at once (`stream.take_events`): the events' steps run one
after another exactly as alone, but each incident they touch is written once, at the end of the
batch or before a tick in it, with the outbox of all its steps; its effects are sent once that
write's changelog record is acknowledged, and the batch counts as one step of the watermark.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sla_stream.core import engine
from sla_stream.core.errors import InvalidEvent
from sla_stream.core.event_codec import decode_event
from sla_stream.core.models import DeadLetter, IncidentEvent
from sla_stream.core.terms import ContractRecord
from sla_stream.stream import risk
from sla_stream.stream.codecs import decode_tick
from sla_stream.stream.dead_letter_limit import EventsGate
from sla_stream.stream.metrics import Metrics
from sla_stream.stream.open_clocks import OpenClocks
from sla_stream.stream.outbox import trim
from sla_stream.stream.publish import Prepared, Publisher
from sla_stream.stream.risk import RiskWatch
from sla_stream.stream.state import IncidentRecord, IncidentStore

ContractLookup = Callable[[str], ContractRecord | None]

log = logging.getLogger(__name__)

# Ignored steps that are the input's fault go to the dead-letter topic (none today: an event for
# a contract version not published yet is parked, engine rule 12); valid input that changes
# nothing (a repeat, an event after the incident was closed) is counted by reason.
DEAD_LETTER_REASONS: frozenset[str] = frozenset()
COUNTED_REASONS = frozenset({"duplicate", "after_final"})
# Deletions of expired records per tick and partition: a backfill of old closed incidents can
# expire many at once, and a tick should not hold the event loop for seconds; the rest wait.
DELETES_PER_TICK = 500
# An incident whose step raised (a bug, or a record it cannot read) is tried again this much
# later rather than on every tick, so one bad record neither floods the log nor stops the rest.
RETRY_AFTER = timedelta(seconds=60)


@dataclass
class Touched:
    """An incident a batch changed: its latest record, not written yet, and its steps' effects."""

    partition: int
    event: Any  # the Faust event of its latest step: the table write goes to its partition
    record: IncidentRecord
    raw: bytes  # `record` encoded at its step, so an unencodable record fails that event
    effects: Prepared = field(default_factory=Prepared)


class IncidentSteps:
    """One step per message; holds no state of its own beyond the store's indexes."""

    def __init__(
        self,
        store: IncidentStore,
        contracts: ContractLookup,
        publisher: Publisher,
        metrics: Metrics,
        *,
        events_topic: str,
        max_event_bytes: int,
        outbox_window_s: float,
        dead_letter_max_bytes: int = 256 * 1024,
        gate: EventsGate | None = None,
    ) -> None:
        self.store = store
        self.contracts = contracts
        self.publisher = publisher
        self.metrics = metrics
        self.events_topic = events_topic
        self.max_event_bytes = max_event_bytes
        self.outbox_window_s = outbox_window_s
        self.dead_letter_max_bytes = dead_letter_max_bytes
        self.gate = gate  # the dead-letter limit; None counts nothing
        self.open_clocks = OpenClocks(metrics.open_clocks)
        self._assignments = 0  # partition assignments seen
        self._indexed_for = -1  # the assignment the due index was last rebuilt for
        self.risk: RiskWatch | None = None  # the breach forecast, when a model is configured
        # Makes a Faust event the current one (`worker.make_current`): table writes go to the
        # current event's partition.
        self.set_current: Callable[[Any], None] = lambda event: None
        self._batch: dict[str, Touched] | None = None  # open during `on_batch`, else None
        self._batch_wall = 0.0  # when the open batch's effects are written (one `written_at`)
        self._event: Any = None  # the Faust event being handled

    def on_assigned(self) -> None:
        """A rebalance assigned partitions: the next tick rebuilds the due index, even for the
        same partitions, since another worker may have changed their records meanwhile (and the
        index of a revoked partition is stale)."""
        self._assignments += 1
        self.store.forget_recent()

    async def ensure_index(self, assigned: set[int]) -> None:
        """Build the due index and the open-clock counts (loaded as an orderly stop saved them,
        or one pass over the records), and re-send the outbox entries that may not have been
        acknowledged, once per assignment."""
        if assigned == self.store.partitions and self.index_current():
            return
        self._indexed_for = self._assignments
        resend = self.store.build_index(assigned, self.outbox_window_s)
        self.publisher.forget(assigned)
        counts = self.store.open_slots  # counted in the same pass, or saved at the last stop
        for p in self.store.loaded:  # ... and then this run's steps before the index are added
            counts[p].update(self.open_clocks.by_partition.get(p, {}))
        self.open_clocks.recount_counts(counts)
        sent = await self.publisher.resend(resend)
        loaded = sorted(self.store.loaded)
        rebuilt = sorted(assigned - self.store.loaded)
        self.metrics.index_partitions.labels("saved").inc(len(loaded))
        self.metrics.index_partitions.labels("rebuilt").inc(len(rebuilt))
        log.info(
            "due index ready for partitions %s: loaded %s as saved, rebuilt %s; re-sent %d effects",
            *(sorted(assigned), loaded, rebuilt, sent),
        )

    def index_current(self) -> bool:
        """True when the due index was built for the latest assignment."""
        return self._indexed_for == self._assignments

    async def on_batch(
        self, events: Sequence[Any], ticks_topic: str, assigned: Callable[[], set[int]]
    ) -> None:
        """Handle what the agent took at once, in order (see the module's docstring)."""
        self._open_batch()
        taken = sum(1 for e in events if e.message.topic != ticks_topic)
        if taken:
            self.metrics.batch_events.observe(taken)
        try:
            for event in events:
                message = event.message
                self._event = event
                self.set_current(event)
                if message.topic == ticks_topic:
                    self.flush()  # a tick reads the records and writes its own
                    # The flush made each written incident's event current in turn; the tick
                    # reads and writes its own partition (Faust's table picks the partition
                    # from the current event: with another's, `load` found nothing and the
                    # due incidents of the tick's partition were skipped).
                    self.set_current(event)
                    await self.ensure_index(assigned())
                    await self.on_tick(message.partition, decode_tick(event.value))
                    self._open_batch()
                else:
                    await self.on_event(event.value, message.key, message.partition, message.offset)
        finally:
            self.flush()
            self._event = None

    def _open_batch(self) -> None:
        self._batch = {}
        self._batch_wall = self.publisher.wall()

    def flush(self) -> None:
        """Write each incident the open batch touched, once; send its effects after that write."""
        batch, self._batch = self._batch, None
        if not batch:
            return
        by_partition: dict[int, list[tuple[Any, Prepared]]] = defaultdict(list)
        for incident_id, touched in batch.items():
            self.set_current(touched.event)  # the write goes to the incident's partition
            written = self.store.save(touched.partition, incident_id, touched.record, touched.raw)
            by_partition[touched.partition].append((written, touched.effects))
        if self._event is not None:  # the event being handled is current again
            self.set_current(self._event)
        for partition, written_effects in by_partition.items():
            self.publisher.publish_batch(partition, written_effects)
        self.metrics.batch_writes.observe(len(batch))

    def _load(self, incident_id: str) -> IncidentRecord | None:
        """The incident's record as the steps so far left it: the open batch's, or the store's."""
        touched = self._batch.get(incident_id) if self._batch is not None else None
        return touched.record if touched is not None else self.store.load(incident_id)

    async def on_event(
        self, raw: bytes | None, key: bytes | None, partition: int, offset: int
    ) -> None:
        started = time.perf_counter()
        accepted = await self._on_event(raw, key, partition, offset)
        if self.gate is not None:
            self.gate.record(not accepted)
        if accepted:
            self.metrics.processing.observe(time.perf_counter() - started)

    async def _on_event(
        self, raw: bytes | None, key: bytes | None, partition: int, offset: int
    ) -> bool:
        """Apply one message of the events topic; False when it went to the dead-letter topic."""
        try:
            event = decode_event(raw, self.max_event_bytes)
        except InvalidEvent as exc:
            await self._dead_letter(raw, key, partition, offset, exc.reason, str(exc), exc.field)
            return False
        if key != event.incident_id.encode():
            # The incident's record lives on the partition of its key: an event keyed otherwise
            # (or not at all) would start a second, contradicting copy of the incident elsewhere.
            shown = "none" if key is None else repr(key[:80]) + ("..." if len(key) > 80 else "")
            detail = (
                f"the message key must be the incident_id {event.incident_id!r} (UTF-8), so "
                f"every event of an incident reaches one partition; got {shown}"
            )
            await self._dead_letter(raw, key, partition, offset, "wrong_key", detail, "key")
            return False
        try:
            refused = await self._apply(event, partition)
        except Exception as exc:  # a bug or an unreadable record: keep the input, go on
            log.exception("event %s of %s failed", event.event_id, event.incident_id)
            refused, detail = "processing_error", f"{type(exc).__name__}: {exc}"
        else:
            detail = refused or ""
        if refused is not None:
            await self._dead_letter(raw, key, partition, offset, refused, detail, None)
            return False
        return True

    async def _apply(self, event: IncidentEvent, partition: int) -> str | None:
        """Apply a decoded event; the dead-letter reason when the engine refuses it."""
        if self.risk is not None:
            self.risk.saw(event, partition)
        record = self._load(event.incident_id)
        previous = record.state if record else None
        # The incident's own contract wins: the engine parks a record of another contract.
        contract_id = (previous.contract_id if previous else None) or event.contract_id
        contract = self.contracts(contract_id) if contract_id else None
        step = engine.apply(previous, event, contract)
        if step.ignored in DEAD_LETTER_REASONS:
            return step.ignored
        if step.ignored in COUNTED_REASONS:
            self.metrics.rejected.labels(step.ignored).inc()
        else:
            self.metrics.events.labels(event.type).inc()
        await self._commit(partition, event.incident_id, record, step)
        return None

    async def on_tick(self, partition: int, now: datetime) -> None:
        started = time.perf_counter()
        if self.gate is not None:
            self.gate.enforce()
        for incident_id in self.store.index.pop_due(partition, now):
            try:
                await self._fire_due(partition, incident_id, now)
            except Exception:  # one bad incident must not cost the others their deadlines
                self._failed(partition, incident_id, now)
        for contract_id in self.store.index.parked_contracts(partition):
            contract = self.contracts(contract_id)
            if contract is None:
                continue
            for incident_id in self.store.index.unpark(partition, contract_id):
                try:
                    record = self.store.load(incident_id)
                    if record is None or not record.state.parked:
                        continue
                    if engine.terms_for(record.state, contract) is None:
                        # Still no version covering it: parked on, without a write per tick.
                        self.store.index.park(partition, contract_id, incident_id)
                        continue
                    await self._advance(partition, incident_id, record, now, contract)
                except Exception:
                    self._failed(partition, incident_id, now)
        if self.risk is not None:
            await risk.on_tick(self, partition, now)
        self._delete_expired(partition, now)
        self.store.mark(partition, self.publisher.acked_watermark(partition))
        self.metrics.parked.set(self.store.index.parked_count())
        self.metrics.tick_seconds.observe(time.perf_counter() - started)

    async def _fire_due(self, partition: int, incident_id: str, now: datetime) -> None:
        record = self.store.load(incident_id)
        if record is None or record.state.next_due_at is None:
            return
        if record.state.next_due_at > now:  # a stale heap entry; the live one is later
            self.store.index.schedule(partition, incident_id, record.state.next_due_at)
            return
        await self._advance(partition, incident_id, record, now)

    def _failed(self, partition: int, incident_id: str, now: datetime) -> None:
        """Log a step that raised and try the incident again after `RETRY_AFTER`."""
        log.exception("tick of incident %s failed; retrying in %s", incident_id, RETRY_AFTER)
        self.metrics.step_errors.inc()
        self.store.index.schedule(partition, incident_id, now + RETRY_AFTER)

    def _delete_expired(self, partition: int, now: datetime) -> None:
        """Delete records whose retention has passed (`state.expires_at`), checked again against
        the stored record: an incident that opened since it was indexed is no longer expired."""
        for incident_id in self.store.index.pop_expired(partition, now, DELETES_PER_TICK):
            try:
                record = self.store.load(incident_id)
            except Exception:
                log.exception("record of %s unreadable; not deleted", incident_id)
                continue
            if record is None:
                continue
            expires = self.store.expires_at(record.state)
            if expires is None:
                continue
            if expires > now:
                self.store.index.schedule_expiry(partition, incident_id, expires)
                continue
            marker = record.state.retired()  # engine rule 11: a reused id gets ids of its own
            if marker is None:
                self.store.delete(incident_id, partition)
            else:
                self.store.save(partition, incident_id, IncidentRecord(marker, ()))
            self.metrics.deleted.inc()

    async def _advance(
        self,
        partition: int,
        incident_id: str,
        record: IncidentRecord,
        now: datetime,
        contract: ContractRecord | None = None,
    ) -> None:
        state = record.state
        if contract is None and state.contract_id is not None:
            contract = self.contracts(state.contract_id)
        step = engine.advance(state, now, contract)
        await self._commit(partition, incident_id, record, step)

    async def _commit(
        self, partition: int, incident_id: str, record: IncidentRecord | None, step: engine.Result
    ) -> None:
        """Persist (one write) then publish; skip the write when nothing changed."""
        if not step.alerts and not step.outcomes:
            # A repeat, or only the horizon moved: not worth a write. A clock whose contract
            # was retired is parked, though: written, so the parked index finds it again.
            if step.ignored is not None and not (step.ignored == "parked" and record):
                return
            if record is not None and step.state == record.state:
                return
        kept = trim(record.outbox if record else (), self.publisher.wall(), self.outbox_window_s)
        # Persist first, publish once the record's changelog record is acknowledged (publish.py).
        batch = self._batch
        effects = self.publisher.prepare(
            step.alerts, step.outcomes, self._batch_wall if batch is not None else None
        )
        record_after = IncidentRecord(step.state, kept + tuple(effects.pending))
        if batch is not None:  # written once, when the batch is flushed
            touched = batch.get(incident_id)
            raw = record_after.to_bytes()
            if touched is None:
                touched = batch[incident_id] = Touched(partition, self._event, record_after, raw)
            else:
                touched.event, touched.record, touched.raw = self._event, record_after, raw
            touched.effects.pending.extend(effects.pending)
            touched.effects.labels.extend(effects.labels)
        else:
            written = self.store.save(partition, incident_id, record_after)
            self.publisher.publish_after(partition, written, effects)
        self.open_clocks.change(partition, record.state if record else None, step.state)
        if self.risk is not None:
            await risk.after_commit(self, partition, record.state if record else None, step)

    async def _dead_letter(
        self,
        raw: bytes | None,
        key: bytes | None,
        partition: int,
        offset: int,
        reason: str,
        detail: str,
        field: str | None,
    ) -> None:
        letter = DeadLetter.of(
            raw,
            topic=self.events_topic,
            reason=reason,
            detail=detail,
            max_bytes=self.dead_letter_max_bytes,
            partition=partition,
            offset=offset,
            field=field,
        )
        await self.publisher.dead_letter(letter, key)
