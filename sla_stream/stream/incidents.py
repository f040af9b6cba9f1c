"""The incident agent's steps: decode -> de-duplicate -> core -> persist -> publish.

`on_event` handles one raw message of the events topic, `on_tick` one tick of a partition.
Both run inside Faust's stream iteration (table writes need the current event), and both pass
time explicitly into the core: the event's own instant, or the tick's instant.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sla_stream.core import engine
from sla_stream.core.errors import InvalidEvent
from sla_stream.core.event_codec import decode_event
from sla_stream.core.models import DeadLetter, IncidentEvent
from sla_stream.core.terms import ContractRecord
from sla_stream.stream import risk
from sla_stream.stream.dead_letter_limit import EventsGate
from sla_stream.stream.metrics import Metrics
from sla_stream.stream.open_clocks import OpenClocks
from sla_stream.stream.outbox import trim
from sla_stream.stream.publish import Publisher
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

    def on_assigned(self) -> None:
        """A rebalance assigned partitions: the next tick rebuilds the due index, even for the
        same partitions, since another worker may have changed their records meanwhile (and the
        index of a revoked partition is stale)."""
        self._assignments += 1

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
        record = self.store.load(event.incident_id)
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
        effects = self.publisher.prepare(step.alerts, step.outcomes)
        record_after = IncidentRecord(step.state, kept + tuple(effects.pending))
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
