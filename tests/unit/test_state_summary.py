"""`Summary.of` (the rebuild's fast read of a stored record) agrees with the full decode."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from sla_stream.core import engine
from sla_stream.core.contracts import load_contracts
from sla_stream.generate import DEFAULT_CONTRACTS, iter_events
from sla_stream.stream.open_clocks import open_slots
from sla_stream.stream.state import IncidentRecord, Pending, Summary

NOW_WALL = 1_000_000.0
WINDOW_S = 30.0


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
    parked = due = slots = resend = 0
    for raw in records:
        full = IncidentRecord.from_bytes(raw)
        fast = Summary.of(raw, NOW_WALL, WINDOW_S)
        assert fast.parked == full.state.parked
        assert fast.contract_id == full.state.contract_id
        assert fast.next_due_at == full.state.next_due_at
        assert Counter(fast.open_slots) == open_slots(full.state)
        young = tuple(p for p in full.outbox if NOW_WALL - p.written_at <= WINDOW_S)
        assert fast.resend == young
        parked += fast.parked
        due += fast.next_due_at is not None
        slots += len(fast.open_slots)
        resend += len(fast.resend)
    # The stream exercised every branch: parked, due, open clocks, young and old outbox entries.
    assert parked and due and slots and resend
    assert resend < sum(len(IncidentRecord.from_bytes(r).outbox) for r in records)


def test_summary_of_refuses_an_unknown_state_format() -> None:
    raw = stored_records()[0].replace(b'"v":1', b'"v":99', 1)
    with pytest.raises(ValueError):
        Summary.of(raw, NOW_WALL, WINDOW_S)
