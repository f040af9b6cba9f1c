"""`IncidentStore` remembers the records it wrote last, decoded, and reads them as stored."""

from __future__ import annotations

import itertools

from sla_stream.core import engine
from sla_stream.core.contracts import load_contracts
from sla_stream.generate import DEFAULT_CONTRACTS, iter_events
from sla_stream.stream.state import IncidentRecord, IncidentStore


def plain_store(table: dict[bytes, bytes]) -> IncidentStore:
    """A store over a plain mapping, as after its first due index (no changelog offsets to
    note before writes: a mapping has no changelog)."""
    store = IncidentStore(table)
    store._offsets_before_writes = None
    return store


def written(store: IncidentStore, events: int) -> dict[str, IncidentRecord]:
    """Apply a generated stream through the store as the worker does: load, step, save."""
    contracts = load_contracts(DEFAULT_CONTRACTS)
    last: dict[str, IncidentRecord] = {}
    for event in itertools.islice(iter_events(60, 3, contracts=contracts), events):
        record = store.load(event.incident_id)
        assert record == last.get(event.incident_id)  # remembered or read back: the same
        previous = record.state if record else None
        step = engine.apply(previous, event, contracts.get(event.contract_id or ""))
        after = IncidentRecord(step.state, ())
        store.save(0, event.incident_id, after)
        last[event.incident_id] = after
    return last


def test_a_remembered_or_evicted_record_loads_as_the_stored_bytes_decode() -> None:
    table: dict[bytes, bytes] = {}
    store = plain_store(table)
    store.recent_max = 8  # far fewer than the incidents: most reads go back to the table
    last = written(store, 400)
    assert len(store.recent) == 8 and len(last) > 8
    for incident_id, record in last.items():
        assert store.load(incident_id) == IncidentRecord.from_bytes(table[incident_id.encode()])
        assert store.load(incident_id) == record


def test_an_assignment_forgets_what_another_worker_may_have_changed_since() -> None:
    table: dict[bytes, bytes] = {}
    store = plain_store(table)
    last = written(store, 200)
    incident_id, mine = next(iter(last.items()))
    other = next(r for i, r in last.items() if i != incident_id)
    table[incident_id.encode()] = other.to_bytes()  # a restore brought another version
    assert store.load(incident_id) == mine  # remembered: this worker's own last write
    store.forget_recent()  # partitions assigned again
    assert store.load(incident_id) == other
    store.delete(incident_id)
    assert store.load(incident_id) is None
