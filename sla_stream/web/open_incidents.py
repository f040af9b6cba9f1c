"""Incidents as people read them: lifecycle, clocks with due times, time left and clause.

`view_of(state, record)` turns the engine's `IncidentState` into an `IncidentView`; its
`to_json(now)` adds what depends on the reading instant (business time left, wall time to the
deadline). `LocalIncidents` reads this worker's incident records and keeps views of those a
page can show (open, or ended within the portal's window), parsing a record again only when its
bytes changed. `at_risk(views, now)` orders running clocks by their deadline.

Time left is measured two ways, both stated: `time_left_s` is wall-clock seconds until the
deadline instant (what a person watching the screen counts down), `remaining_s` is business
seconds of the allowance still unspent (what the contract counts; a paused clock keeps it).
"""

from __future__ import annotations

import asyncio
import math
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sla_stream.core import clock as clk
from sla_stream.core.engine import IncidentState
from sla_stream.core.models import METRICS
from sla_stream.core.terms import ContractRecord, ContractTerms
from sla_stream.stream.state import IncidentRecord, RecordSummary

YIELD_EVERY = 200
SKEW_MARGIN_S = 3600.0  # ended incidents kept this long past the window (peers' clocks differ)


@dataclass(frozen=True, slots=True)
class ClockView:
    """One clock with the target it counts against (None only for a contract since withdrawn).

    The clock's own fields a view reads, not the `Clock` itself: views of open and recent
    incidents stay cached, so every field counts once per cached incident."""

    metric: str
    severity: str
    phase: str
    elapsed_s: float  # business seconds up to `since` (running) or in total (`Clock.elapsed_s`)
    since: datetime | None  # running clocks only
    deadline_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None
    allowance_s: float | None
    clause_id: str | None
    clause_title: str | None
    calendar: Any  # the target's BusinessCalendar, for the elapsed time at the reading instant

    @classmethod
    def of(cls, c: clk.Clock, terms: ContractTerms | None) -> ClockView:
        target = terms.target(c.metric, c.severity) if terms is not None else None
        since = c.since if c.phase == "running" else None
        head = (_word(c.metric), _word(c.severity), _word(c.phase), c.elapsed_s, since)
        tail = (c.deadline_at, c.breached_at, c.stopped_at)
        if target is None or terms is None:
            return cls(*head, *tail, None, None, None, None)
        rule = (
            target.allowance_s,
            target.clause_id,
            target.clause_title,
            terms.calendar_of(target),
        )
        return cls(*head, *tail, *rule)

    @property
    def state(self) -> str:
        """running, paused, breached (still running or paused), met, stopped (breached) or
        cancelled."""
        if self.phase == "stopped":
            return "stopped" if self.breached_at is not None else "met"
        if self.phase == "cancelled":
            return "cancelled"
        return "breached" if self.breached_at is not None else self.phase

    @property
    def due_at(self) -> datetime | None:
        """The deadline instant of a running clock (its breach instant once breached)."""
        if self.phase != "running":
            return None
        return self.breached_at or self.deadline_at

    def elapsed_at(self, now: datetime) -> float:
        if self.calendar is None:
            return self.elapsed_s
        clock = clk.Clock(self.metric, self.severity, self.phase, self.elapsed_s, self.since)
        return clk.elapsed_at(clock, now, self.calendar)

    def to_json(self, now: datetime) -> dict[str, Any]:
        due = self.due_at
        elapsed = self.elapsed_at(now)
        open_ = self.phase in clk.OPEN_PHASES
        return {
            "metric": self.metric,
            "severity": self.severity,
            "state": self.state,
            "allowance_s": self.allowance_s,
            "elapsed_s": round(elapsed, 3),
            "remaining_s": (
                round(self.allowance_s - elapsed, 3)
                if open_ and self.allowance_s is not None
                else None
            ),
            "due_at": _iso(due),
            "time_left_s": round((due - now).total_seconds(), 3) if due is not None else None,
            "breached_at": _iso(self.breached_at),
            "stopped_at": _iso(self.stopped_at),
            "clause_id": self.clause_id,
            "clause_title": self.clause_title,
        }


@dataclass(frozen=True, slots=True)
class IncidentView:
    """What the dashboard and the portal show of one incident."""

    incident_id: str
    contract_id: str
    contract_version: int | None
    customer_id: str | None
    tier: str | None
    severity: str | None
    status: str | None
    category: str | None
    lifecycle: str  # open, resolved, closed or cancelled
    opened_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    last_event_at: datetime | None
    clocks: tuple[ClockView, ...] = field(default=())

    @property
    def is_open(self) -> bool:
        return self.lifecycle == "open"

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "contract_id": self.contract_id,
            "contract_version": self.contract_version,
            "customer_id": self.customer_id,
            "tier": self.tier,
            "severity": self.severity,
            "status": self.status,
            "category": self.category,
            "lifecycle": self.lifecycle,
            "opened_at": _iso(self.opened_at),
            "resolved_at": _iso(self.resolved_at),
            "closed_at": _iso(self.closed_at),
            "last_event_at": _iso(self.last_event_at),
            "clocks": [c.to_json(now) for c in self.clocks],
        }


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _word(text: Any) -> Any:
    """One shared string for the small vocabularies (metric, phase, severity, status...)."""
    return sys.intern(text) if isinstance(text, str) else text


def _lifecycle(state: IncidentState) -> str:
    if state.final is not None:
        return state.final
    if any(c.phase in clk.OPEN_PHASES for c in state.clocks):
        return "open"
    if any(c.metric == "resolution" and c.phase == "stopped" for c in state.clocks):
        return "resolved"
    return "open"


def view_of(state: IncidentState, record: ContractRecord | None) -> IncidentView | None:
    """The view of an evaluated incident; None while it waits (no `opened` yet, or parked)."""
    if not state.evaluated or state.parked or state.contract_id is None:
        return None
    terms = record.version(state.contract_version) if record and state.contract_version else None
    clocks = sorted(state.clocks, key=lambda c: METRICS.index(c.metric))
    resolution = next((c for c in clocks if c.metric == "resolution"), None)
    final = next((e for e in state.events if e.type == state.final), None)
    return IncidentView(
        incident_id=state.incident_id,
        contract_id=_word(state.contract_id),
        contract_version=state.contract_version,
        customer_id=terms.customer_id if terms else None,
        tier=terms.tier if terms else None,
        severity=_word(state.severity),
        status=_word(state.status),
        category=_word(state.category),
        lifecycle=_lifecycle(state),
        opened_at=state.opened_at,
        resolved_at=resolution.stopped_at if resolution and resolution.phase == "stopped" else None,
        closed_at=final.occurred_at if final is not None else None,
        last_event_at=max((e.occurred_at for e in state.events), default=None),
        clocks=tuple(ClockView.of(c, terms) for c in clocks),
    )


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents to return. `recent_s` None: open ones only; else also those whose last
    event is at most `recent_s` before the reading instant (a worker holds ended ones only for
    its portal window, `LocalIncidents.recent_s`: a longer `recent_s` finds no more)."""

    contracts: frozenset[str] | None = None
    severities: frozenset[str] | None = None
    incident_id: str | None = None
    recent_s: float | None = None

    def keeps(self, view: IncidentView, now: datetime) -> bool:
        if self.contracts is not None and view.contract_id not in self.contracts:
            return False
        if self.severities is not None and view.severity not in self.severities:
            return False
        if self.incident_id is not None and view.incident_id != self.incident_id:
            return False
        if view.is_open:
            return True
        if self.recent_s is None or view.last_event_at is None:
            return False
        return (now - view.last_event_at).total_seconds() <= self.recent_s

    def to_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.contracts is not None:
            params["contracts"] = ",".join(sorted(self.contracts))
        if self.severities is not None:
            params["severities"] = ",".join(sorted(self.severities))
        if self.incident_id is not None:
            params["incident"] = self.incident_id
        if self.recent_s is not None:
            params["recent_s"] = repr(self.recent_s)
        return params

    @classmethod
    def from_params(cls, params: Any) -> IncidentFilter:
        def split(name: str) -> frozenset[str] | None:
            text = params.get(name)
            return None if text is None else frozenset(x for x in text.split(",") if x)

        recent = params.get("recent_s")
        return cls(
            contracts=split("contracts"),
            severities=split("severities"),
            incident_id=params.get("incident") or None,
            recent_s=float(recent) if recent else None,
        )


@dataclass(slots=True)
class _Cached:
    """What the cache keeps of one showable record: its bytes' hash, the contract it was read
    against, its view, and until when (epoch seconds) it can be shown at all."""

    digest: int
    record: ContractRecord | None
    view: IncidentView
    shown_until: float


def shown_until(record: RecordSummary, recent_s: float) -> float | None:
    """Until when (epoch seconds) a stored record can be listed: `inf` while open, its last
    event + `recent_s` once ended; None when it has no view (not evaluated, parked, no
    contract) or no events. Decides from the record's summary, as `view_of` and
    `IncidentFilter` would, without building the engine state."""
    if not record.evaluated or record.parked or record.contract_id is None:
        return None
    phases = record.phases
    if record.final is None and (
        any(phase in clk.OPEN_PHASES for _, phase in phases)
        or ("resolution", "stopped") not in phases
    ):
        return math.inf  # open, as `_lifecycle` says
    if record.last_event_at is None:
        return None
    return record.last_event_at.timestamp() + recent_s


class LocalIncidents:
    """Views of the incidents on this worker's active partitions that a page can show: open
    ones, and ended ones while their last event is at most `recent_s` old (the portal's window;
    the dashboard lists open ones only). Re-parsed only on change.

    Why not every record: the worker keeps closed incidents for `SLA_INCIDENT_RETENTION` (90
    days) and resolved ones for good, and a view costs ~1.9 kB, so caching all of them would
    take gigabytes at a million records. A record that cannot be shown is recognised from one
    JSON decode, and only its hash is remembered so the next scan skips it without decoding;
    ended records leave the cache once out of the window. `now` reads the clock.
    """

    def __init__(
        self,
        store: Any,
        contracts: Callable[[str], ContractRecord | None],
        *,
        recent_s: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.contracts = contracts
        self.recent_s = recent_s
        self.now = now
        # partition -> incident id -> what is kept of a showable record
        self._cache: dict[int, dict[str, _Cached]] = {}
        # partition -> sorted hashes of records that cannot be shown now or later (only a change
        # of their bytes, which changes the hash, could make them showable); 8 bytes each
        self._hidden: dict[int, array[int]] = {}

    def ready_partitions(self) -> set[int]:
        """Partitions whose records this worker serves: those its due index was built for."""
        return set(self.store.partitions)

    async def views(
        self, partitions: set[int], now: datetime | None = None
    ) -> tuple[list[IncidentView], set[int]]:
        """Views on `partitions` this worker has ready, and which of them those were.

        Parsing a record costs ~0.1 ms (20,000 records: 1.5-2.6 s the first time, 0.05 s
        when unchanged), so the scan yields to the event loop every `YIELD_EVERY` parses: the
        worker's agents keep running while a page is built. `now` (default: the clock) decides
        which ended incidents are still within the window.
        """
        served = partitions & self.ready_partitions()
        # A peer's reading instant may lag this clock a little: keep a margin past the window.
        horizon = (now or self.now()).timestamp() - SKEW_MARGIN_S
        fresh: dict[int, dict[str, _Cached]] = {p: {} for p in served}
        hidden: dict[int, array[int]] = {p: array("q") for p in served}
        parsed = 0
        for partition, incident_id, raw in self.store.items_by_partition():
            if partition not in served:
                continue
            digest = hash(raw)
            hit = self._cache.get(partition, {}).get(incident_id)
            if hit is None and _holds(self._hidden.get(partition), digest):
                hidden[partition].append(digest)  # known not showable: no decode
                continue
            entry = self._entry(raw, digest, hit, horizon)
            if entry is None or entry.shown_until < horizon:
                hidden[partition].append(digest)
            else:
                fresh[partition][entry.view.incident_id] = entry
            if entry is not hit:
                parsed += 1
                if parsed % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        for index in (self._cache, self._hidden):
            for p in [p for p in index if p not in self.store.partitions]:
                del index[p]
        self._cache.update(fresh)
        self._hidden.update((p, array("q", sorted(h))) for p, h in hidden.items())
        views = [e.view for p in served for e in fresh[p].values()]
        return views, served

    def _entry(
        self, raw: bytes, digest: int, hit: _Cached | None, horizon: float
    ) -> _Cached | None:
        """`hit` if the record and its contract are unchanged, else a new entry; None when the
        record cannot be listed at `horizon` or later (then no view is built)."""
        unchanged = hit is not None and hit.digest == digest
        if unchanged and self.contracts(hit.view.contract_id) is hit.record:
            return hit
        until = shown_until(RecordSummary.of(raw), self.recent_s)
        if until is None or until < horizon:
            return None
        state = IncidentRecord.from_bytes(raw).state
        record = self.contracts(state.contract_id) if state.contract_id else None
        view = view_of(state, record)
        return None if view is None else _Cached(digest, record, view, until)


def _holds(digests: array[int] | None, digest: int) -> bool:
    if not digests:
        return False
    at = bisect_left(digests, digest)
    return at < len(digests) and digests[at] == digest


def at_risk(incidents: Iterable[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """Clocks of open incidents (`IncidentView.to_json` dicts) nearest their deadline: running
    ones by time left (breached ones, overdue, first), then paused ones by business time left.
    One row per clock."""
    rows: list[tuple[tuple[int, float], dict[str, Any]]] = []
    for incident in incidents:
        if incident["lifecycle"] != "open":
            continue
        for c in incident["clocks"]:
            if c["state"] not in ("running", "paused", "breached"):
                continue
            if c["time_left_s"] is not None:
                key = (0, c["time_left_s"])
            else:
                key = (1, c["remaining_s"] if c["remaining_s"] is not None else 0.0)
            row = {
                "incident_id": incident["incident_id"],
                "contract_id": incident["contract_id"],
                "customer_id": incident["customer_id"],
                "category": incident["category"],
                "status": incident["status"],
                **c,
            }
            rows.append((key, row))
    rows.sort(key=lambda kv: (kv[0], kv[1]["incident_id"], kv[1]["metric"]))
    return [row for _, row in rows[:limit]]
