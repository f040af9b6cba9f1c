"""The rollup agent: `sla.outcomes` -> hourly adherence buckets in a RocksDB table.

Each outcome leaves a small marker under its outcome id (`SEEN_PREFIX`), so a re-sent or
redelivered outcome is counted once. The markers used to live inside the bucket record, which
then grew with every outcome of its hour (the alert lateness benchmark showed the agent falling
20 s behind on one busy hour, and ~20k outcomes would pass Kafka's 1 MB record limit).

The agent takes outcomes in batches and writes each bucket a batch touched once, before the
batch's markers. A bucket record also lists what its last write applied (`RECENT`): a SIGKILL
loses a suffix of a changelog partition, so a bucket kept without the markers after it still
names the outcomes it counted, and a redelivered one is not counted twice (its marker is written
then). A later write of the bucket was sent after those markers, so forgetting them is safe.

Why no Faust windowed table: those expire keys by wall-clock time and `on_window_close` gets no
data, so a replay or a worker catching up would misplace or lose windows. Buckets are keyed by the
contract-zone hour of each outcome's own `settled_at` (computed by the pure core) and never expire
by themselves; the changelog is compacted, so it holds one record per live bucket.

Why hourly only: a daily table would double the table writes per outcome (the measured cost of
the shell is the table write path), while a day, or a quarter, is a sum of at most ~2,200 hourly
buckets per (metric, severity, category), read by one contiguous key-range seek per metric (keys
sort by contract, metric, hour). Days and quarters are grouped at query time in the contract's
zone, which also keeps a DST day (23 or 25 hours) exact.

The table is co-partitioned with `sla.outcomes` (keyed by contract id), so every bucket of a
contract lives on that contract's partition and `app.table_route` can send a query to its owner.

Service levels: after an outcome of a contract that has some, the step asks the watch
(`analytics/service_levels.py`) what the change raises, from period counts read once from the
buckets and then kept by deltas, and the agent sends those alerts to `sla.alerts` keyed by the
contract id. The same watch runs in the offline replay.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from sla_stream.analytics.adherence import (
    Bucket,
    BucketKey,
    Query,
    contract_zone,
    decode_seen,
    encode_seen,
    hour_key_text,
    key_prefix,
    mark_seen,
    ratio,
    report,
    totals,
)
from sla_stream.analytics.service_levels import (
    PeriodCounts,
    ServiceLevelWatch,
    has_levels,
    service_levels_json,
)
from sla_stream.core.models import METRICS, Alert, Outcome
from sla_stream.core.periods import next_period_start, period_starts
from sla_stream.core.service_levels import Counts
from sla_stream.core.terms import ContractRecord
from sla_stream.stream.worker import current_generation, make_current

log = logging.getLogger(__name__)

TABLE_NAME = "adherence-hourly"
REFRESH_INTERVAL_S = 1.0
# Outcome-id markers share the bucket table under this prefix; bucket keys start with a contract
# id, which people type, so they never start with the record separator.
SEEN_PREFIX = b"\x1e"
RECENT = "recent"  # a bucket record's list of what its last write applied (`applied_key`)
BATCH = 500  # outcomes the agent takes at most at once
BATCH_WITHIN_S = 0.01


class TableSeen:
    """The outcome ids a rollup has counted or withdrawn, as markers in the bucket table."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def __contains__(self, oid: object) -> bool:
        return self.table.get(SEEN_PREFIX + str(oid).encode()) is not None

    def get(self, oid: str) -> tuple[bool, int] | None:
        raw = self.table.get(SEEN_PREFIX + oid.encode())
        return None if raw is None else decode_seen(raw)

    def __getitem__(self, oid: str) -> tuple[bool, int] | None:
        raw = self.table.get(SEEN_PREFIX + oid.encode())
        if raw is None:
            raise KeyError(oid)
        return decode_seen(raw)

    def __setitem__(self, oid: str, value: tuple[bool, int] | None) -> None:
        self.table[SEEN_PREFIX + oid.encode()] = encode_seen(value)


class BatchSeen(TableSeen):
    """The table's markers, with a batch's own kept aside until its buckets are written."""

    def __init__(self, table: Any) -> None:
        super().__init__(table)
        self.pending: dict[str, tuple[bool, int] | None] = {}

    def __contains__(self, oid: object) -> bool:
        return oid in self.pending or super().__contains__(oid)

    def get(self, oid: str) -> tuple[bool, int] | None:
        return self.pending[oid] if oid in self.pending else super().get(oid)

    def __getitem__(self, oid: str) -> tuple[bool, int] | None:
        return self.pending[oid] if oid in self.pending else super().__getitem__(oid)

    def __setitem__(self, oid: str, value: tuple[bool, int] | None) -> None:
        self.pending[oid] = value

    def write(self) -> None:
        for oid, value in self.pending.items():
            TableSeen.__setitem__(self, oid, value)
        self.pending.clear()


def applied_key(outcome: Outcome) -> str:
    """What a bucket's `RECENT` list names: the outcome counted, or the one withdrawn."""
    return outcome.outcome_id if outcome.withdraws is None else "-" + outcome.withdraws


def encode_bucket(bucket: Bucket, applied: list[str]) -> bytes:
    """The bucket's record with its `RECENT` list (`Bucket.from_bytes` ignores the field)."""
    return bucket.to_bytes()[:-1] + b',"' + RECENT.encode() + b'":' + orjson.dumps(applied) + b"}"


@dataclass
class _Touched:
    bucket: Bucket
    recent: frozenset[str]  # what the stored record's last write applied
    applied: list[str]


class Rollups:
    """Applies outcomes to the bucket table and answers range queries from the local buckets."""

    def __init__(
        self,
        app: Any,
        outcomes_topic: str,
        contract: Callable[[str], ContractRecord | None],
        gauge: Any,
        table: Any,
    ) -> None:
        self.app = app  # the Faust app: its assignor says which partitions are ours
        self.outcomes_topic = outcomes_topic
        self.contract = contract
        self.table = table
        self.gauge = gauge
        self.totals: dict[tuple[str, str], tuple[int, int]] = {}
        self.partitions: set[int] | None = None  # the partitions `totals` was built from
        self.level_counts = PeriodCounts(self._level_counts)
        self.watch = ServiceLevelWatch()
        self.alerts: list[Alert] = []  # service-level alerts for the agent to send
        self.level_contracts: dict[str, int] = {}  # contracts with service levels -> partition
        self.partition_time: dict[int, datetime] = {}  # the latest settled_at counted there

    # -- the agent's step: decode -> buckets -> one write per bucket, then markers -> gauge ----

    def on_outcomes(
        self, taken: Sequence[Any], make_current: Callable[[Any], None] = make_current
    ) -> int:
        """Apply a batch of Faust events of the outcomes topic; returns how many counted.

        Per partition (each its own changelog partition): the buckets it touched are written
        once, then its markers. `make_current` makes an event the current one (Faust writes a
        table to the current event's partition).
        """
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for event in taken:
            by_partition[event.message.partition].append(event)
        counted = 0
        for partition, events in by_partition.items():
            if self.partitions is None or partition not in self.partitions:
                self.refresh(include=partition)
            seen = BatchSeen(self.table)
            touched: dict[bytes, _Touched] = {}
            for event in events:
                make_current(event)
                counted += self._apply(event.value, partition, seen, touched)
            for raw_key, t in touched.items():
                if t.applied:
                    self.table[raw_key] = encode_bucket(t.bucket, t.applied)
            seen.write()
        return counted

    def _apply(
        self, raw: bytes | None, partition: int, seen: BatchSeen, touched: dict[bytes, _Touched]
    ) -> bool:
        try:
            outcome = Outcome.from_json(raw or b"")
        except ValidationError as exc:  # our own topic: a bad record is a bug upstream, not input
            log.error("skipping an undecodable outcome record: %s", exc)
            return False
        record = self.contract(outcome.contract_id)
        key = BucketKey.of(outcome, contract_zone(record, outcome.opened_at))
        raw_key = key.encode().encode()
        t = touched.get(raw_key)
        if t is None:
            stored = self.table.get(raw_key)
            if stored is None:
                t = _Touched(Bucket(key), frozenset(), [])
            else:
                recent = frozenset(orjson.loads(stored).get(RECENT, ()))
                t = _Touched(Bucket.from_bytes(stored), recent, [])
            touched[raw_key] = t
        name = applied_key(outcome)
        if name in t.recent and name not in seen:
            # Counted by the bucket's last write, whose markers a SIGKILL lost: mark it now.
            mark_seen(outcome, seen)
            return False
        before = (t.bucket.met, t.bucket.breached)
        if not t.bucket.apply(outcome, seen):  # records the outcome id's marker in `seen`
            return False  # a repeat (re-sent outbox, redelivery): nothing to write
        t.applied.append(name)
        if has_levels(record):  # its service levels read the buckets: written before, as alone
            self.table[raw_key] = encode_bucket(t.bucket, t.applied)
        delta = Counts(t.bucket.met - before[0], t.bucket.breached - before[1])
        self._add_total(key, delta.met, delta.breached)
        self._service_levels(outcome, record, partition, delta)
        return True

    def _service_levels(
        self, outcome: Outcome, record: ContractRecord | None, partition: int, delta: Counts
    ) -> None:
        """Queue what an outcome raises for its contract's service levels, and for those of
        the partition's other contracts whose periods the partition's time has closed."""
        if has_levels(record):
            self.level_contracts[outcome.contract_id] = partition
            tz = contract_zone(record)
            self.level_counts.record(outcome, tz, delta)
            counts_of = self.level_counts.of(outcome.contract_id)
            self.alerts += self.watch.after_outcome(record, tz, outcome, delta, counts_of)
        held = self.partition_time.get(partition)
        now = outcome.settled_at if held is None else max(held, outcome.settled_at)
        self.partition_time[partition] = now
        for contract_id, where in sorted(self.level_contracts.items()):
            known = self.contract(contract_id) if where == partition else None
            if known is not None:
                counts_of = self.level_counts.of(contract_id)
                self.alerts += self.watch.at_time(known, contract_zone(known), now, counts_of)

    def _level_counts(
        self, contract_id: str, metric: str, severity: str, start: datetime, end: datetime
    ) -> Counts:
        met = breached = 0
        for b in self.buckets(contract_id, metric, start, end):
            if b.key.severity == severity:
                met += b.met
                breached += b.breached
        return Counts(met, breached)

    def _add_total(self, key: BucketKey, met: int, breached: int) -> None:
        k = (key.contract_id, key.metric)
        old_met, old_breached = self.totals.get(k, (0, 0))
        self.totals[k] = (old_met + met, old_breached + breached)
        self._show(k)

    def _show(self, k: tuple[str, str]) -> None:
        value = ratio(*self.totals.get(k, (0, 0)))
        if value is None:
            self.totals.pop(k, None)
            with contextlib.suppress(KeyError):
                self.gauge.remove(*k)
        else:
            self.gauge.labels(*k).set(value)

    # -- the gauge follows partition ownership --------------------------------------------------

    def active_partitions(self) -> set[int]:
        topic = self.outcomes_topic
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    def refresh(self, include: int | None = None) -> None:
        """Rebuild the totals from the local buckets when this worker's partitions changed.

        The timer calls it outside recovery and rebalancing; the agent calls it with the
        partition of an event it is about to apply, which has been recovered by then.
        """
        app = self.app
        if include is None and (app.in_recovery or app.rebalancing):
            return
        actives = self.active_partitions() | ({include} if include is not None else set())
        if actives == self.partitions:
            return
        self.level_counts.clear()  # another worker may have counted some periods meanwhile
        self.level_contracts = {c: p for c, p in self.level_contracts.items() if p in actives}
        self.partition_time = {p: t for p, t in self.partition_time.items() if p in actives}
        fresh = totals(self._local_buckets(actives))
        for k in set(self.totals) - set(fresh):
            self.totals.pop(k, None)
            self._show(k)
        self.totals = fresh
        for k in fresh:
            self._show(k)
        self.partitions = actives

    # -- reads ----------------------------------------------------------------------------------

    def _dbs(self, partitions: set[int] | None = None) -> Iterator[tuple[int, Any]]:
        store = self.table.data
        for partition, db in list(getattr(store, "_dbs", {}).items()):
            if partitions is None or partition in partitions:
                yield partition, db

    def _local_buckets(self, partitions: set[int]) -> Iterator[Bucket]:
        store = self.table.data
        for _, db in self._dbs(partitions):
            for key, value in store._visible_items(db):
                if not key.startswith(SEEN_PREFIX):
                    yield Bucket.from_bytes(value)

    def buckets(
        self, contract_id: str, metric: str, from_at: datetime, to_at: datetime
    ) -> Iterator[Bucket]:
        """Local buckets of (contract, metric) with hour starts in [from_at, to_at): one seek."""
        prefix = key_prefix(contract_id, metric)
        start = (prefix + hour_key_text(from_at)).encode()
        stop = (prefix + hour_key_text(to_at)).encode()
        for _, db in self._dbs(self.active_partitions()):
            for key, value in db.items(from_key=start):
                if key >= stop:
                    break
                yield Bucket.from_bytes(value)

    def latest_settled(self, contract_id: str) -> datetime | None:
        """Start of the latest hour holding settled clocks of a contract (local buckets), by
        one backward seek per metric: where a default range ends."""
        latest: datetime | None = None
        for metric in METRICS:
            prefix = key_prefix(contract_id, metric).encode()
            for _, db in self._dbs(self.active_partitions()):
                for key, value in db.items(backwards=True, from_key=prefix + b"\xff"):
                    if not key.startswith(prefix):
                        break
                    bucket = Bucket.from_bytes(value)
                    if bucket.count:
                        hour = bucket.key.hour_start
                        latest = hour if latest is None else max(latest, hour)
                        break
        return latest

    def query(self, query: Query, now: datetime | None = None) -> dict[str, Any]:
        """The adherence report of one contract, from this worker's buckets; with `now`, its
        service levels of the quarters the range touches, as of then."""
        quarters = period_starts(query.from_at, query.to_at, query.tz, "quarter")
        lo = quarters[0] if quarters else query.from_at
        hi = next_period_start(quarters[-1], query.tz, "quarter") if quarters else query.to_at
        found = [b for m in query.metrics() for b in self.buckets(query.contract_id, m, lo, hi)]
        answer = report(found, query)
        record = self.contract(query.contract_id)
        if now is not None and has_levels(record):
            every = [b for m in METRICS for b in self.buckets(query.contract_id, m, lo, hi)]
            answer["service_levels"] = service_levels_json(
                record, query.tz, every, query.from_at, query.to_at, now
            )
        return answer


def build_rollups(
    app: Any,
    partitions: int,
    outcomes_topic: str,
    contract: Callable[[str], ContractRecord | None],
    gauge: Any,
    alerts_topic: Any = None,
) -> Rollups:
    """Declare the bucket table, the rollup agent and the gauge refresher; service-level
    alerts go to `alerts_topic` (a Faust topic of raw bytes)."""
    p = partitions
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    # key_type/value_type bytes make the store and changelog pass bytes through (a Schema
    # with raw serializers is not enough: the RocksDB store would still decode values as JSON).
    table = app.Table(
        TABLE_NAME,
        partitions=p,
        key_type=bytes,
        value_type=bytes,
        help="hourly adherence buckets by contract, metric, hour, severity and category",
    )
    rollups = Rollups(app, outcomes_topic, contract, gauge, table)
    outcomes = app.topic(outcomes_topic, partitions=p, **raw)

    @app.agent(outcomes, name="rollups")
    async def rollup_agent(stream: Any) -> None:
        async for batch in stream.take_events(BATCH, BATCH_WITHIN_S):
            rollups.on_outcomes(current_generation(app, batch), make_current)
            if rollups.alerts:
                alerts, rollups.alerts = rollups.alerts, []
                for alert in alerts if alerts_topic is not None else ():
                    await alerts_topic.send(key=alert.contract_id.encode(), value=alert.to_json())

    @app.timer(REFRESH_INTERVAL_S)
    async def refresh_adherence_gauge() -> None:
        rollups.refresh()

    return rollups
