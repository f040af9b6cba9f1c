"""Offline replay: the engine over a file of events, in simulated time, with a summary.

Events are taken in file order, as a worker would receive them. Simulated time is the latest
`occurred_at` seen so far: before an event at t, every incident's dues strictly before t fire
(a heap of due instants across incidents), so warnings and breaches land between events at their
own instants; an earlier-dated event is a late event and goes through the engine's late path.
At the end everything due up to `until` (default: the latest event) fires.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import click

from sla_stream.analytics.service_levels import ReplayLevels
from sla_stream.core import engine
from sla_stream.core.clock import utc
from sla_stream.core.engine import IncidentState, Result
from sla_stream.core.errors import InvalidEvent
from sla_stream.core.event_codec import decode_event
from sla_stream.core.models import METRICS, Alert, IncidentEvent, Outcome
from sla_stream.core.terms import ContractRecord

PROGRESS_MIN_BYTES = 2_000_000  # smaller inputs finish before a bar would be worth reading
SHOWN_INVALID = 20
INVALID_FILE = "invalid-lines.txt"


@dataclass
class ReplaySummary:
    """What a replay did; adherence counts live outcomes (withdrawals undone), per metric."""

    lines: int = 0
    events: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    after_until: int = 0
    incidents: int = 0
    parked: int = 0
    cancelled: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    outcome_records: int = 0
    withdrawals: int = 0
    until: datetime | None = None
    adherence: dict[str, tuple[int, int]] = field(default_factory=dict)  # metric -> (met, all)

    def render(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.alerts.items())) or "none"
        ignored = ", ".join(f"{k} {n}" for k, n in sorted(self.ignored.items())) or "none"
        source = f" from {self.lines} lines ({len(self.invalid)} invalid)" if self.lines else ""
        lines = [
            f"events: {self.events} applied{source}; {self.after_until} after --until; "
            f"ignored: {ignored}",
            f"incidents: {self.incidents} ({self.parked} parked on an unknown contract, "
            f"{self.cancelled} cancelled)",
            f"until: {self.until.isoformat() if self.until else '-'}",
            f"alerts: {sum(self.alerts.values())} ({kinds})",
            f"outcomes: {self.outcome_records} records ({self.withdrawals} withdrawals)",
        ]
        for metric in METRICS:
            met, total = self.adherence.get(metric, (0, 0))
            rate = f"{100.0 * met / total:.2f} %" if total else "n/a"
            lines.append(f"adherence {metric}: {rate} ({met} met / {total} settled)")
        return "\n".join(lines)


class Replayer:
    """Feeds events to the engine in arrival order and fires dues in simulated time."""

    def __init__(
        self,
        contracts: dict[str, ContractRecord],
        on_alert: Callable[[Alert], None],
        on_outcome: Callable[[Outcome], None],
        until: datetime | None = None,
    ) -> None:
        self.contracts = dict(contracts)
        self.on_alert = on_alert
        self.on_outcome = on_outcome
        self.until = utc(until) if until is not None else None
        self.states: dict[str, IncidentState] = {}
        self.heap: list[tuple[datetime, int, str]] = []
        self.seq = 0
        self.now: datetime | None = None
        self.summary = ReplaySummary()
        self._live: dict[str, tuple[str, bool]] = {}  # outcome_id -> (metric, met)
        self._scheduled: dict[str, datetime] = {}  # incident -> its live heap entry's instant
        self.levels = ReplayLevels()  # service-level alerts, as the worker's rollup sends them

    def event(self, event: IncidentEvent) -> None:
        t = utc(event.occurred_at)
        if self.until is not None and t > self.until:
            self.summary.after_until += 1
            return
        if self.now is None or t > self.now:
            self._fire_before(t)
            self.now = t
        state = self.states.get(event.incident_id)
        # The replay owns its states (nothing else holds them): updated in place, not copied.
        step = engine.apply(state, event, self._contract(state, event), owned=True)
        if step.ignored is not None:
            self.summary.ignored[step.ignored] += 1
            if step.ignored in ("duplicate", "after_final"):
                return
        self.summary.events += 1
        self._take(event.incident_id, step)

    def contract_arrives(self, record: ContractRecord, at: datetime | None = None) -> None:
        """A contract becomes known (at `at`, default now): its parked incidents are evaluated
        from their recorded events, past dues firing with their own instants."""
        if at is not None and (self.now is None or utc(at) > self.now):
            self._fire_before(utc(at))
            self.now = utc(at)
        self.contracts[record.contract_id] = record
        for incident_id, state in list(self.states.items()):
            if state.parked and state.contract_id == record.contract_id:
                self._take(incident_id, engine.advance(state, self.now or at, record, owned=True))

    def finish(self) -> ReplaySummary:
        """Fire everything due up to `until` (default: the latest event) and sum up."""
        end = self.until or self.now
        if end is not None:
            self._fire_before(end, inclusive=True)
        s = self.summary
        s.until = end
        s.incidents = len(self.states)
        s.parked = sum(1 for st in self.states.values() if st.parked)
        s.cancelled = sum(1 for st in self.states.values() if st.final == "cancelled")
        counts = {m: [0, 0] for m in METRICS}
        for metric, met in self._live.values():
            counts[metric][0] += met
            counts[metric][1] += 1
        s.adherence = {m: (c[0], c[1]) for m, c in counts.items()}
        return s

    def _contract(self, state: IncidentState | None, event: IncidentEvent) -> ContractRecord | None:
        contract_id = state.contract_id if state is not None else None
        if contract_id is None and event.type == "opened":
            contract_id = event.contract_id
        return self.contracts.get(contract_id) if contract_id else None

    def _fire_before(self, bound: datetime, *, inclusive: bool = False) -> None:
        heap = self.heap
        while heap and (heap[0][0] < bound or (inclusive and heap[0][0] == bound)):
            due, _, incident_id = heapq.heappop(heap)
            if self._scheduled.get(incident_id) != due:
                continue  # stale: the incident was rescheduled since
            del self._scheduled[incident_id]
            state = self.states[incident_id]
            if state.next_due_at != due:
                continue  # nothing due any more (stopped, or due later)
            contract = self.contracts.get(state.contract_id) if state.contract_id else None
            self._take(incident_id, engine.advance(state, due, contract, owned=True))

    def _take(self, incident_id: str, step: Result) -> None:
        self.states[incident_id] = step.state
        for alert in step.alerts:
            self.summary.alerts[alert.kind] += 1
            self.on_alert(alert)
        for outcome in step.outcomes:
            self.summary.outcome_records += 1
            if outcome.withdraws is not None:
                self.summary.withdrawals += 1
                self._live.pop(outcome.withdraws, None)
            else:
                self._live[outcome.outcome_id] = (outcome.metric, outcome.met)
            self.on_outcome(outcome)
            for alert in self.levels.after_outcome(
                outcome, self.contracts.get(outcome.contract_id)
            ):
                self.summary.alerts[alert.kind] += 1
                self.on_alert(alert)
        due = step.next_due_at
        if due is not None and self._scheduled.get(incident_id) != due:
            self._scheduled[incident_id] = due  # one live heap entry per incident
            self.seq += 1
            heapq.heappush(self.heap, (due, self.seq, incident_id))


@contextlib.contextmanager
def _no_cycle_collections() -> Iterator[None]:
    """A replay keeps every incident's state in memory and allocates many short-lived tuples;
    the cyclic collector would rescan all those states again and again (a third of the run time
    at the default thresholds, still 7 % with a first generation of 100,000 objects). The engine
    makes no reference cycles (tests/unit/test_replay.py checks it), so reference counting frees
    all its garbage: the collector is off during the replay, then as it was. What the replay
    keeps goes to the oldest generation first (freeze, unfreeze): else the first collection
    after it would scan every state it kept (7 % of a replay's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def read_events(lines: Iterable[bytes], summary: ReplaySummary) -> Iterator[IncidentEvent]:
    """Parse JSON lines; an invalid line is recorded with its number (from 1) and skipped."""
    for number, line in enumerate(lines, start=1):
        summary.lines = number
        if not line.strip():
            continue
        try:
            yield decode_event(line)
        except InvalidEvent as exc:
            summary.invalid.append((number, str(exc)))


def replay_events(
    events: Iterable[IncidentEvent],
    contracts: dict[str, ContractRecord],
    until: datetime | None = None,
) -> tuple[list[Alert], list[Outcome], ReplaySummary]:
    """In-process replay of parsed events (tests, benchmarks)."""
    alerts: list[Alert] = []
    outcomes: list[Outcome] = []
    replayer = Replayer(contracts, alerts.append, outcomes.append, until)
    with _no_cycle_collections():
        for event in events:
            replayer.event(event)
        return alerts, outcomes, replayer.finish()


def replay_stream(
    contracts: dict[str, ContractRecord],
    source: IO[bytes],
    size: int | None,
    out_dir: Path,
    until: datetime | None = None,
) -> ReplaySummary:
    """Replay JSON lines from `source` (`size` bytes, if known: a progress bar on large inputs
    goes to stderr); write `alerts.jsonl`, `outcomes.jsonl` and, if any, `invalid-lines.txt`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        (out_dir / "alerts.jsonl").open("wb") as alerts_out,
        (out_dir / "outcomes.jsonl").open("wb") as outcomes_out,
    ):
        replayer = Replayer(
            contracts,
            lambda a: alerts_out.write(a.to_json() + b"\n"),
            lambda o: outcomes_out.write(o.to_json() + b"\n"),
            until,
        )
        lines: Iterable[bytes] = source
        if size is not None and size >= PROGRESS_MIN_BYTES:
            lines = _with_progress(source, size)
        with _no_cycle_collections():
            for event in read_events(lines, replayer.summary):
                replayer.event(event)
            summary = replayer.finish()
    if summary.invalid:
        text = "".join(f"{n}: {reason}\n" for n, reason in summary.invalid)
        (out_dir / INVALID_FILE).write_text(text, encoding="utf-8")
    return summary


def replay_file(
    contracts: dict[str, ContractRecord],
    events_path: Path,
    out_dir: Path,
    until: datetime | None = None,
) -> ReplaySummary:
    """`replay_stream` over a file."""
    with events_path.open("rb") as source:
        return replay_stream(contracts, source, events_path.stat().st_size, out_dir, until)


def _with_progress(source: IO[bytes], size: int) -> Iterator[bytes]:
    with click.progressbar(length=size, label="replaying", file=sys.stderr) as bar:
        for line in source:
            bar.update(len(line))
            yield line
