"""ServiceNow incident event log (CSV, a row per update) to `IncidentEvent`s, incident by incident.

What the public log shows (141,712 rows, 24,918 incidents), and what the importer does about it:

1. An incident's rows are contiguous; rows are read as a stream and converted a whole incident at
   a time. A number that comes back after another incident is reported (`not_contiguous`).
2. Order is `sys_mod_count` (the record's version), then `sys_updated_at`, then row number: in
   24,913 incidents the time never goes back in that order, while 9,318 incidents have two rows
   in the same minute, which only the count can order. The other 5 (all near the start of the
   log) each have one row repeating another row's count at a time outside its neighbours' times
   (`INC0000130` row 330: count 2 at 07:27, before the count-1 row at 09:59); that row is
   reported (`duplicate_mod_count`) and the rest imported.
3. Every incident opens at `opened_at`, with the opening row's caller, location and priority.
   In one incident the first update precedes `opened_at` (`INC0000131`: created and updated at
   07:14, opened_at 09:41); an event is never dated before the incident's previous event, so
   such a row is dated at it and counted in the notes (`times_moved_forward`).
4. Leaving `New` is the first response. 8,522 incidents have no `New` row at all (their first row
   is already Active, Awaiting or Resolved): their response is dated at the first row
   (`first_row_past_new`). `New` straight to `Resolved`/`Closed` also emits `responded` first.
5. A change of open status emits `status_changed` (`awaiting_user_info`, back to `active`, ...),
   except `New` to `Active`, which the `responded` event (status `active`) already says. Every
   event that changes the status carries it (the engine sets the status from any event).
6. `resolved_at` and `closed_at` hold the record's last values on every row: they describe only
   the last resolution, and `resolved_at` equals the time of the row entering that last
   `Resolved` in 23,067 incidents, of a later save while still `Resolved` (hours to days later)
   in 295, is `?` in 1,543 and is never anything else. So by default (`resolution_time:
   state_change`) `resolved` is dated at the row where the state became `Resolved`;
   `resolution_time: resolved_at` dates the last resolution at `resolved_at` instead.
7. `Resolved`/`Closed` back to an open state is `reopened` (with the new status); in the log the
   reopen count rises exactly then and nowhere else. 12 incidents are reopened after `Closed`
   (the instance closes most incidents 5 days after resolution): as the engine treats `closed`
   as final, only an incident's last `Closed` emits `closed`; an earlier one is counted in the
   notes (`closed_then_reopened`). A rise between two final rows (never seen) has no instant to
   give a reopen and re-resolution: counted (`reopen_count_rose_while_final`), nothing emitted.
8. Times have no seconds, and the engine orders events of one instant by type
   (`engine.TYPE_ORDER`). Where that would reverse two rows of the same minute (117 rows, e.g.
   `INC0008478` reopened at 11:47 and resolved again at 11:47), the later row is dated one
   second on (`second_added_for_order`), so the engine applies the rows in log order.
9. Rows that cannot be mapped (state `-100`, `?` or unparseable where required, local times that
   do not exist in the zone) are reported with their row number (header = row 1) and skipped;
   the incident goes on from the rows around them. Ambiguous local times (DST fall-back) take
   the earlier instant.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sla_stream.core.engine import TYPE_ORDER
from sla_stream.core.models import IncidentEvent
from sla_stream.importers.servicenow_mapping import (
    ACTIVE,
    CLOSED,
    FINAL_STATUSES,
    NEW,
    RESOLVED,
    ServiceNowMapping,
)
from sla_stream.importers.servicenow_rows import (
    ImportFileError,
    ImportSummary,
    LocalTimes,
    ReportedRow,
    Row,
    RowError,
    open_log,
    read_incidents,
)

SOURCE = "servicenow"
_OPENING_FACTS = (  # the opening row's columns its `opened` event carries
    *("caller_id", "location", "priority", "impact", "urgency", "contact_type"),
    *("opened_by", "subcategory", "u_symptom"),  # what capacity's model reads
)
_SECOND = timedelta(seconds=1)
_BEFORE_ALL = datetime.min.replace(tzinfo=UTC)
_LEFT_OUT_IF_NONE = ("severity", "status", "category", "team", "actor")
# What `IncidentEvent` could refuse in an event built here: an id or actor over this length.
_MAX_LENGTH = min(
    m.max_length
    for name in ("event_id", "incident_id", "actor")
    for m in IncidentEvent.model_fields[name].metadata
    if hasattr(m, "max_length")
)
__all__ = [
    "EventFields",
    "ImportFileError",
    "ImportSummary",
    "ReportedRow",
    "convert",
    "event_fields",
    "open_log",
]
# An event as the fields of its JSON form, in `IncidentEvent`'s order, None left out, and
# `occurred_at` an aware datetime: `IncidentEvent(**fields)` is the event.
EventFields = dict[str, Any]
_Pending = tuple[str, str | None, str | None, dict[str, str] | None]


def convert(
    source: Iterable[str],
    mapping: ServiceNowMapping,
    summary: ImportSummary | None = None,
    *,
    every_update: bool = False,
) -> Iterator[IncidentEvent]:
    """Yield the events of each incident of a ServiceNow event log, in log order of incidents.

    `source` is an open text file (newline="") or any iterable of CSV lines. Counts and every
    reported row go to `summary`. Events of one incident come in their own order; instants are
    aware, in the mapping's zone. With `every_update`, an open incident's row that changes
    nothing the clocks see (a note, a reassignment) still yields a `status_changed` to its
    current status: the engine ignores it, while the forecast counts updates and handovers.
    """
    for fields in event_fields(source, mapping, summary, every_update=every_update):
        yield IncidentEvent(**fields)


def event_fields(
    source: Iterable[str],
    mapping: ServiceNowMapping,
    summary: ImportSummary | None = None,
    *,
    every_update: bool = False,
) -> Iterator[EventFields]:
    """`convert` without building the models: each event's fields, already valid (what the
    model could refuse, it is asked to refuse), for writing them out at once."""
    summary = summary if summary is not None else ImportSummary()
    times = LocalTimes(mapping.zone())
    for number, rows in read_incidents(source, mapping, times, summary):
        incident = _Incident(number, mapping, times, summary)
        incident.every_update = every_update
        events = incident.convert(rows)
        if events:
            summary.incidents_imported += 1
        for event in events:
            summary.events[event["type"]] += 1
            yield event


def _in_sequence(rows: list[Row], summary: ImportSummary) -> list[Row]:
    """Order by mod count; of rows sharing one, drop those dated outside their neighbours."""
    if all(a.mod < b.mod for a, b in itertools.pairwise(rows)):
        return rows  # nearly every incident: already in order, no count repeated
    rows = sorted(rows, key=lambda r: (r.mod, r.updated_at, r.line))
    groups: dict[int, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.mod, []).append(row)
    mods = list(groups)
    single = {m: g[0].updated_at for m, g in groups.items() if len(g) == 1}
    kept: list[Row] = []
    for i, mod in enumerate(mods):
        group = groups[mod]
        if len(group) > 1:
            low = next((single[m] for m in reversed(mods[:i]) if m in single), None)
            high = next((single[m] for m in mods[i + 1 :] if m in single), None)
            fits = [
                r
                for r in group
                if (low is None or r.updated_at >= low) and (high is None or r.updated_at <= high)
            ]
            if fits and len(fits) < len(group):
                for row in group:
                    if row not in fits:
                        summary.reported.append(_misfit(row, fits[0], low, high))
                group = fits
        kept.extend(group)
    return kept


def _misfit(row: Row, kept: Row, low: datetime | None, high: datetime | None) -> ReportedRow:
    def show(t: datetime | None) -> str:
        return "-" if t is None else t.strftime("%d-%m-%Y %H:%M")

    return ReportedRow(
        row.line,
        row.number,
        "duplicate_mod_count",
        f"sys_mod_count {row.mod} is also on row {kept.line}; this row's sys_updated_at "
        f"{show(row.updated_at)} lies outside its neighbours' {show(low)} .. {show(high)}",
    )


class _Incident:
    """Walks one incident's rows in sequence; each row's events are buffered, then dated."""

    def __init__(
        self, number: str, mapping: ServiceNowMapping, times: LocalTimes, summary: ImportSummary
    ):
        self.number = number
        self.mapping = mapping
        self.times = times
        self.summary = summary
        self.events: list[EventFields] = []
        self.pending_closed: EventFields | None = None
        # A row's events before they are dated: (type, severity, status, extra attributes).
        self.buffer: list[_Pending] = []
        self.ids: set[str] = set()
        self.status = NEW
        self.severity = ""
        self.reopen_count = 0
        self.responded = False
        self.contract = ""
        self.last_at = _BEFORE_ALL
        self.last_rank = -1  # highest TYPE_ORDER rank among the events dated at `last_at`
        self.last_resolving_line = 0
        self.resolution_bound: datetime | None = None
        self.every_update = False

    def convert(self, rows: list[Row]) -> list[EventFields]:
        rows = self._open(_in_sequence(rows, self.summary))
        self._find_last_resolution(rows)
        for row in rows:
            self._step(row)
        if self.pending_closed is not None:
            self.events.append(self.pending_closed)
        return self.events

    def _open(self, rows: list[Row]) -> list[Row]:
        """Open at the first row whose opened_at reads; report the rows before it."""
        for i, row in enumerate(rows):
            try:
                text = row.cell("opened_at")
                if text is None:
                    raise RowError("missing_value", "opened_at is missing")
                opened_at = self.times(text, "opened_at")
            except RowError as exc:
                self.summary.reported.append(
                    ReportedRow(row.line, self.number, exc.reason, exc.detail)
                )
                continue
            self.severity, self.reopen_count = row.severity, row.reopen_count
            facts = row.cells(_OPENING_FACTS)
            self.contract = self.mapping.contract_for(facts.get("caller_id"), facts.get("location"))
            self.buffer.append(("opened", row.severity, NEW, facts))
            self._flush(row, opened_at)
            if row.status != NEW:
                self.summary.notes["first_row_past_new"] += 1
            return rows[i:]
        return []

    def _find_last_resolution(self, rows: list[Row]) -> None:
        """The row entering the last Resolved, and when the first row after that episode is."""
        previous = None
        for i, row in enumerate(rows):
            if row.status == RESOLVED and previous != RESOLVED:
                self.last_resolving_line = row.line
                after = (r.updated_at for r in rows[i + 1 :] if r.status != RESOLVED)
                self.resolution_bound = next(after, None)
            previous = row.status

    def _step(self, row: Row) -> None:
        rose = row.reopen_count > self.reopen_count
        if rose:
            self.reopen_count = row.reopen_count
        if row.severity != self.severity:
            self.severity = row.severity
            self.buffer.append(("severity_changed", row.severity, None, None))
        if self.status not in FINAL_STATUSES:
            self._from_open(row.status)
        elif row.status not in FINAL_STATUSES:
            self._drop_pending_closed()
            self.status = row.status
            self.buffer.append(("reopened", None, row.status, None))
        else:
            if rose:  # reopened and final again between two rows: no instant to give either
                self.summary.notes["reopen_count_rose_while_final"] += 1
            self._final_to_final(row.status)
        noted = self.every_update and not self.buffer and self.status not in FINAL_STATUSES
        self._flush(row, row.updated_at)
        if noted:
            self.events.append(self._update(row))

    def _from_open(self, target: str) -> None:
        previous = self.status
        if not self.responded and target != NEW:
            self.responded = True
            status = None if target in FINAL_STATUSES else target
            self.buffer.append(("responded", None, status, None))
        if target == previous:
            return
        self.status = target
        if target in FINAL_STATUSES:
            self.buffer.append((target, None, None, None))  # resolved, closed or cancelled
        elif not (previous == NEW and target == ACTIVE):  # `responded` says that one
            self.buffer.append(("status_changed", None, target, None))

    def _final_to_final(self, target: str) -> None:
        if target == self.status:
            return
        if self.status == CLOSED:
            self._drop_pending_closed()
        self.status = target
        if target != RESOLVED:  # already resolved: nothing to stop again
            self.buffer.append((target, None, None, None))

    def _drop_pending_closed(self) -> None:
        if self.pending_closed is not None:
            self.pending_closed = None
            self.summary.notes["closed_then_reopened"] += 1

    def _flush(self, row: Row, at: datetime) -> None:
        """Date the row's events, build them; `closed` waits in case the incident reopens."""
        if not self.buffer:
            self._date(at, None)
            return
        buffer = self.buffer
        rank = TYPE_ORDER[buffer[0][0]]
        if len(buffer) > 1:
            rank = min(TYPE_ORDER[pending[0]] for pending in buffer)
        at = self._date(at, rank)
        for kind, severity, status, extra in buffer:
            when = self._resolution_at(row, at) if kind == RESOLVED else at
            event = self._event(row, when, kind, severity, status, extra)
            if kind == CLOSED:
                self.pending_closed = event
            else:
                self.events.append(event)
            if when == at:
                self.last_rank = max(self.last_rank, TYPE_ORDER[kind])
        self.buffer.clear()

    def _date(self, at: datetime, rank: int | None) -> datetime:
        """Never before the previous event; a second later if the engine would reorder them."""
        if at < self.last_at:
            if at < self.last_at.replace(second=0):  # not just behind a second added below
                self.summary.notes["times_moved_forward"] += 1
            at = self.last_at
        if at == self.last_at and rank is not None and rank <= self.last_rank:
            # The export drops seconds. The log's order is known; the engine's tie-break at one
            # instant (`TYPE_ORDER`, then event_id) would guess: date the later row a second on.
            self.summary.notes["second_added_for_order"] += 1
            at += _SECOND
        if at > self.last_at:
            self.last_at, self.last_rank = at, -1
        return at

    def _resolution_at(self, row: Row, at: datetime) -> datetime:
        """The state change, or `resolved_at` for the last resolution when the mapping says so."""
        if self.mapping.resolution_time != "resolved_at" or row.line != self.last_resolving_line:
            return at
        text = row.cell("resolved_at")
        try:
            resolved_at = self.times(text, "resolved_at") if text else None
        except RowError:
            resolved_at = None
        # Only inside its Resolved episode; elsewhere it would reorder the incident's events.
        bound = self.resolution_bound
        late = bound is not None and resolved_at is not None and resolved_at > bound
        if resolved_at is None or resolved_at < row.updated_at or late:
            self.summary.notes["resolved_at_not_used"] += 1
            return at
        self.summary.notes["resolved_at_used"] += 1
        return max(resolved_at, at)

    def _update(self, row: Row) -> EventFields:
        """A row that changes nothing the clocks see, as a `status_changed` to the status.

        Dated at its row (never before the previous event) and kept out of the same-instant
        ordering, so it moves no later event by a second; its id starts with `!`, which sorts
        before every other event id of the incident, so at one instant the engine applies it
        before the real events and the status they leave stands."""
        at = max(row.updated_at, self.last_at)
        event = self._event(row, at, "status_changed", None, self.status, None)
        self.ids.discard(event["event_id"])  # that id stays free for the real events
        event_id, n = f"{self.number}:!{row.mod}:update", 1
        while event_id in self.ids:
            n += 1
            event_id = f"{self.number}:!{row.mod}:update#{n}"
        self.ids.add(event_id)
        event["event_id"] = event_id
        return event

    def _event(
        self,
        row: Row,
        at: datetime,
        kind: str,
        severity: str | None,
        status: str | None,
        extra: dict[str, str] | None,
    ) -> EventFields:
        event_id, n = f"{self.number}:{row.mod}:{kind}", 1
        while event_id in self.ids:  # two kept rows share a mod count: still unique and stable
            n += 1
            event_id = f"{self.number}:{row.mod}:{kind}#{n}"
        self.ids.add(event_id)
        attributes = {"row": row.line, "sys_mod_count": row.mod, "incident_state": row.state}
        event = {  # every field at once (one allocation), then the empty ones left out
            "event_id": event_id,
            "incident_id": self.number,
            "type": kind,
            "occurred_at": at,
            "contract_id": self.contract,
            "severity": severity,
            "status": status,
            "category": row.category,
            "team": row.team,
            "actor": row.actor,
            "source": SOURCE,
            "attributes": {**attributes, **extra} if extra else attributes,
        }
        for name in _LEFT_OUT_IF_NONE:
            if event[name] is None:
                del event[name]
        if len(event_id) > _MAX_LENGTH or len(row.actor or "") > _MAX_LENGTH:
            IncidentEvent(**event)  # refused: pydantic's error names the field and the value
        return event
