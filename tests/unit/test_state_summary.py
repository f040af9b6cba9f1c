"""`RecordSummary.of` (the rebuild's fast read of a stored record) agrees with the full decode."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from sla_stream.core import engine
from sla_stream.core.contracts import load_contracts
from sla_stream.core.models import IncidentEvent
from sla_stream.generate import DEFAULT_CONTRACTS, iter_events
from sla_stream.stream.open_clocks import open_slots
from sla_stream.stream.state import (
    DueIndex,
    IncidentRecord,
    LastWrites,
    Pending,
    RecordSummary,
    expires_at,
    state_expires_at,
)

NOW_WALL = 1_000_000.0
RETENTION = timedelta(days=90)


def stored_records() -> list[bytes]:
    """Records as the worker stores them after each step of a generated stream; every third
    incident's contract is unknown (parked), and outboxes hold young and old entries."""
    contracts = load_contracts(DEFAULT_CONTRACTS)
    states: dict[str, engine.IncidentState | None] = {}
    out = []
    for n, event in enumerate(itertools.islice(iter_events(400, 7, contracts=contracts), 1500)):
        previous = states.get(event.incident_id)
        known = int(event.incident_id.rsplit("-", 1)[1]) % 3 != 0
        contract_id = event.contract_id or (previous.contract_id if previous else None)
        contract = contracts.get(contract_id) if known and contract_id else None
        step = engine.apply(previous, event, contract)
        states[event.incident_id] = step.state
        outbox = tuple(
            Pending("alerts", a.incident_id, a.to_json(), NOW_WALL - (n % 60)) for a in step.alerts
        )
        out.append(IncidentRecord(step.state, outbox).to_bytes())
    return out


def test_summary_of_agrees_with_the_full_decode() -> None:
    records = stored_records()
    parked = due = slots = outbox = expiring = 0
    for raw in records:
        full = IncidentRecord.from_bytes(raw)
        fast = RecordSummary.of(raw, RETENTION)
        assert fast.expires_at == state_expires_at(full.state, RETENTION)
        assert RecordSummary.of(raw).expires_at is None  # no retention: kept
        expiring += fast.expires_at is not None
        assert fast.parked == full.state.parked
        assert fast.contract_id == full.state.contract_id
        assert fast.next_due_at == full.state.next_due_at
        assert Counter(fast.open_slots) == open_slots(full.state)
        assert tuple(Pending.from_json(p) for p in fast.outbox) == full.outbox
        parked += fast.parked
        due += fast.next_due_at is not None
        slots += len(fast.open_slots)
        outbox += len(fast.outbox)
    # The stream exercised every branch: parked, due, open clocks, outboxes, expiring records.
    assert parked and due and slots and outbox and expiring


def test_summary_of_refuses_an_unknown_state_format() -> None:
    raw = stored_records()[0].replace(b'"v":1', b'"v":99', 1)
    with pytest.raises(ValueError):
        RecordSummary.of(raw)


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTRACT_ID = next(iter(load_contracts(DEFAULT_CONTRACTS)))


def _event(n: int, type_: str, minutes: int, **extra: str) -> IncidentEvent:
    at = (T0 + timedelta(minutes=minutes)).isoformat()
    body = {"event_id": f"e{n}", "incident_id": "INC-1", "type": type_, "occurred_at": at}
    return IncidentEvent.model_validate({**body, **extra})


def _fold(*events: IncidentEvent) -> engine.IncidentState:
    contract = load_contracts(DEFAULT_CONTRACTS)[CONTRACT_ID]
    state = None
    for e in events:
        state = engine.apply(state, e, contract).state
    assert state is not None
    return state


def test_an_incident_expires_retention_after_its_last_event_once_final_or_never_opened() -> None:
    opened = _event(1, "opened", 0, contract_id=CONTRACT_ID, severity="P2")
    resolved = _event(2, "resolved", 30)
    closed = _event(3, "closed", 60)
    late = _event(4, "responded", 10)  # arrives after the close, dated before it
    assert state_expires_at(_fold(opened, resolved), RETENTION) is None  # resolved: can reopen
    done = _fold(opened, resolved, closed, late)
    assert done.final == "closed"
    assert state_expires_at(done, RETENTION) == T0 + timedelta(minutes=60) + RETENTION
    cancelled = _fold(opened, _event(5, "cancelled", 45))
    assert state_expires_at(cancelled, RETENTION) == T0 + timedelta(minutes=45) + RETENTION
    orphan = _fold(_event(6, "responded", 20), _event(7, "resolved", 5))
    assert orphan.opened_at is None
    assert state_expires_at(orphan, RETENTION) == T0 + timedelta(minutes=20) + RETENTION
    assert state_expires_at(done, None) is None
    assert expires_at(None, False, None, RETENTION) is None  # no event recorded: nothing to date


def test_pop_expired_takes_at_most_the_limit_in_expiry_order_and_leaves_the_rest() -> None:
    index = DueIndex()
    for n in range(5):
        index.schedule_expiry(0, f"i{n}", T0 + timedelta(seconds=10 - n))
    index.schedule_expiry(0, "later", T0 + timedelta(days=1))
    index.schedule_expiry(1, "other-partition", T0)
    now = T0 + timedelta(seconds=10)
    assert index.pop_expired(0, now, 2) == ["i4", "i3"]
    assert index.pop_expired(0, now, 10) == ["i2", "i1", "i0"]
    assert index.pop_expired(0, now, 10) == []
    index.drop_partitions({0})
    assert index.pop_expired(1, now, 10) == []
    assert index.pop_expired(0, T0 + timedelta(days=1), 10) == ["later"]


def _entry(n: int, written_at: float) -> dict[str, object]:
    return Pending("alerts", f"INC-{n}", b'{"n":%d}' % n, written_at).to_json()


def test_last_writes_keeps_the_window_before_each_partitions_last_write_whatever_the_order() -> (
    None
):
    # Partition 0 last wrote at 1000 (a worker that died long before the rebuild), partition 1
    # at 5000; the window is 30 s before each. Entries come in key order, unrelated to time,
    # and many enough to pass the trimming threshold.
    last = LastWrites(30.0)
    old = [(0, n, 100.0 + n % 500) for n in range(3000)]
    recent = [(0, 9001, 975.0), (0, 9002, 1000.0), (0, 9003, 969.0), (1, 9004, 4990.0)]
    mixed = old[:1500] + recent[:2] + old[1500:] + recent[2:] + [(1, 9005, 5000.0)]
    for partition, n, w in mixed:
        last.add(partition, (_entry(n, w),))
    last.add(1, ())
    got = [(p.key, p.written_at) for p in last.entries()]
    assert got == [
        ("INC-9001", 975.0),
        ("INC-9002", 1000.0),
        ("INC-9004", 4990.0),
        ("INC-9005", 5000.0),
    ]
    assert all(len(kept) <= 2048 for kept in last.kept.values())  # trimmed while collecting


def test_last_writes_leaves_out_what_the_acknowledged_watermark_covers() -> None:
    last = LastWrites(30.0)
    for partition, n, w in [(0, 1, 990.0), (0, 2, 995.0), (0, 3, 1000.0), (1, 4, 500.0)]:
        last.add(partition, (_entry(n, w),))
    got = [p.key for p in last.entries({0: 995.0, 1: None})]
    assert got == ["INC-3", "INC-4"]  # partition 1 stored no watermark: its window stands
