"""`LocalIncidents` caches only what a page can show: open incidents, and ended ones within the
portal's recent window; records of incidents ended long ago are never turned into views."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

from sla_stream.core import engine
from sla_stream.core.contracts import load_contracts
from sla_stream.core.terms import ContractRecord
from sla_stream.generate import DEFAULT_CONTRACTS, iter_events
from sla_stream.stream.state import IncidentRecord
from sla_stream.web.open_incidents import (
    SKEW_MARGIN_S,
    IncidentFilter,
    LocalIncidents,
    view_of,
)
from tests.unit.test_portal import NOW, RECORDS, ev, incident

DAY = timedelta(days=1)
RECENT_S = 30 * 86_400


class Store:
    """The two things `LocalIncidents` reads of the worker's incident store."""

    def __init__(self, records: dict[str, tuple[int, bytes]]) -> None:
        self.records = records  # incident id -> (partition, stored bytes)
        self.partitions = {p for p, _ in records.values()} | {0}

    def items_by_partition(self) -> Iterator[tuple[int, str, bytes]]:
        for incident_id, (partition, raw) in self.records.items():
            yield partition, incident_id, bytes(raw)  # a fresh object per read, as RocksDB's


class Contracts:
    """The contracts lookup, remembering what it was asked: a view is built only after it."""

    def __init__(self, records: dict[str, ContractRecord]) -> None:
        self.records = records
        self.asked: set[str] = set()

    def __call__(self, contract_id: str) -> ContractRecord | None:
        self.asked.add(contract_id)
        return self.records.get(contract_id)


def stored(state: engine.IncidentState) -> bytes:
    return IncidentRecord(state).to_bytes()


def hand_made() -> dict[str, tuple[int, bytes]]:
    opened = ev(
        "O", "o", "opened", NOW - timedelta(hours=1), contract_id="alpha-msa", severity="P4"
    )
    resolved = [
        ev(
            "R",
            "o",
            "opened",
            NOW - 2 * DAY - timedelta(hours=1),
            contract_id="alpha-extra",
            severity="P2",
        ),
        ev("R", "s", "resolved", NOW - 2 * DAY),
    ]
    # Closed 40 days ago, on a contract nothing else uses: asking for it means a view was built.
    closed = [
        ev("C", "o", "opened", NOW - 41 * DAY, contract_id="beta-msa", severity="P3"),
        ev("C", "c", "closed", NOW - 40 * DAY),
    ]
    parked = engine.apply(
        None, ev("P", "o", "opened", NOW - DAY, contract_id="gamma", severity="P1"), None
    ).state
    return {
        "O": (0, stored(incident([opened]))),
        "R": (1, stored(incident(resolved))),
        "C": (0, stored(incident(closed))),
        "P": (1, stored(parked)),
    }


async def test_an_incident_closed_long_ago_is_never_built_while_open_and_recent_ones_list() -> None:
    records = hand_made()
    contracts = Contracts(dict(RECORDS))
    local = LocalIncidents(Store(records), contracts, recent_s=RECENT_S)

    views, served = await local.views({0, 1}, now=NOW)
    assert served == {0, 1}
    assert {v.incident_id: v.lifecycle for v in views} == {"O": "open", "R": "resolved"}
    assert contracts.asked == {"alpha-msa", "alpha-extra"}  # never beta-msa (C) nor gamma (P)
    again, _ = await local.views({0, 1}, now=NOW)
    assert [v.to_json(NOW) for v in again] == [v.to_json(NOW) for v in views]
    assert "beta-msa" not in contracts.asked and "gamma" not in contracts.asked

    # R ended 2 days before NOW: still listed 27 days later, gone once out of the window.
    later = NOW + 27 * DAY
    assert {v.incident_id for v in (await local.views({0, 1}, now=later))[0]} == {"O", "R"}
    gone = NOW + 29 * DAY
    assert {v.incident_id for v in (await local.views({0, 1}, now=gone))[0]} == {"O"}

    # A reopen changes R's record: it is read again and listed as open.
    record = RECORDS["alpha-extra"]
    state = IncidentRecord.from_bytes(records["R"][1]).state
    state = engine.apply(state, ev("R", "x", "reopened", gone), record).state
    records["R"] = (1, stored(engine.advance(state, gone, record).state))
    listed = {v.incident_id: v.lifecycle for v in (await local.views({0, 1}, now=gone))[0]}
    assert listed == {"O": "open", "R": "open"}


def generated() -> dict[str, tuple[int, bytes]]:
    """Records of a generated stream stopped part-way (open, resolved, closed, cancelled, and
    parked: every fifth incident's contract is unknown)."""
    contracts = load_contracts(DEFAULT_CONTRACTS)
    states: dict[str, engine.IncidentState] = {}
    for event in itertools.islice(iter_events(300, 11, contracts=contracts), 900):
        previous = states.get(event.incident_id)
        known = int(event.incident_id.rsplit("-", 1)[1]) % 5 != 0
        contract_id = event.contract_id or (previous.contract_id if previous else None)
        contract = contracts.get(contract_id) if known and contract_id else None
        states[event.incident_id] = engine.apply(previous, event, contract).state
    return {i: (n % 3, stored(s)) for n, (i, s) in enumerate(sorted(states.items()))}


async def test_what_is_listed_is_what_full_views_and_the_portal_filter_keep() -> None:
    records = generated()
    contracts = load_contracts(DEFAULT_CONTRACTS)
    full = [
        view_of(s, contracts.get(s.contract_id or ""))
        for s in (IncidentRecord.from_bytes(raw).state for _, raw in records.values())
    ]
    views = [v for v in full if v is not None]
    last = max(v.last_event_at for v in views if v.last_event_at is not None)
    assert {v.lifecycle for v in views} == {"open", "resolved", "closed", "cancelled"}
    assert len(views) < len(records)  # some are parked

    local = LocalIncidents(Store(records), contracts.get, recent_s=RECENT_S)
    portal = IncidentFilter(recent_s=RECENT_S)
    widest = IncidentFilter(recent_s=RECENT_S + SKEW_MARGIN_S)
    counts = []
    for now in (last - 20 * DAY, last, last + 10 * DAY, last + 25 * DAY, last + 40 * DAY):
        listed, _ = await local.views({0, 1, 2}, now=now)
        assert all(widest.keeps(v, now) for v in listed)  # nothing older is held
        shown = sorted(v.incident_id for v in listed if portal.keeps(v, now))
        assert shown == sorted(v.incident_id for v in views if portal.keeps(v, now))
        by_id = {v.incident_id: v.to_json(now) for v in views}
        assert all(v.to_json(now) == by_id[v.incident_id] for v in listed)
        counts.append(len(listed))
    assert counts[0] > counts[-1] > 0  # ended ones leave, open ones stay
