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
4. Leaving `New` is the first response. 8,521 incidents have no `New` row at all (their first row
   is already Active, Awaiting or Resolved): their response is dated at the first row
   (`first_row_past_new`). `New` straight to `Resolved`/`Closed` also emits `responded` first.
5. A change of open status emits `status_changed` (`awaiting_user_info`, back to `active`, ...),
   except `New` to `Active`, which the `responded` event (status `active`) already says.
6. `resolved_at` and `closed_at` hold the record's last values on every row: they describe only
   the last resolution, and `resolved_at` equals the time of the row entering that last
   `Resolved` in 23,067 incidents, of a later save while still `Resolved` (hours to days later)
   in 295, is `?` in 1,543 and is never anything else. So by default (`resolution_time:
   state_change`) `resolved` is dated at the row where the state became `Resolved`;
   `resolution_time: resolved_at` dates the last resolution at `resolved_at` instead.
7. `Resolved`/`Closed` back to an open state is `reopened` (with the new status); in the log the
   reopen count rises exactly then. A rise between two final rows emits `reopened` and the final
   event again. 12 incidents are reopened after `Closed` (the instance auto-closes 5 days after
   resolution): since the engine treats `closed` as final, only an incident's last `Closed`
   emits `closed`; an earlier one is counted in the notes (`closed_then_reopened`).
8. Rows that cannot be mapped (state `-100`, `?` or unparseable where required, local times that
   do not exist in the zone) are reported with their row number (header = row 1) and skipped;
   the incident goes on from the rows around them. Ambiguous local times (DST fall-back) take
   the earlier instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sla_stream.core.models import IncidentEvent
from sla_stream.importers.servicenow_mapping import (
    ACTIVE,
    CANCELLED,
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
__all__ = ["ImportFileError", "ImportSummary", "ReportedRow", "convert", "open_log"]


def convert(
    source: Iterable[str], mapping: ServiceNowMapping, summary: ImportSummary | None = None
) -> Iterator[IncidentEvent]:
    """Yield the events of each incident of a ServiceNow event log, in log order of incidents.

    `source` is an open text file (newline="") or any iterable of CSV lines. Counts and every
    reported row go to `summary`. Events of one incident come in their own order; instants are
    aware, in the mapping's zone.
    """
    summary = summary if summary is not None else ImportSummary()
    times = LocalTimes(mapping.zone())
    for number, rows in read_incidents(source, mapping, times, summary):
        events = _Incident(number, mapping, times, summary).convert(rows)
        if events:
            summary.incidents_imported += 1
        for event in events:
            summary.events[event.type] += 1
            yield event


def _in_sequence(rows: list[Row], summary: ImportSummary) -> list[Row]:
    """Order by mod count; of rows sharing one, drop those dated outside their neighbours."""
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
    """Walks one incident's rows in sequence and emits its events."""

    def __init__(
        self, number: str, mapping: ServiceNowMapping, times: LocalTimes, summary: ImportSummary
    ):
        self.number = number
        self.mapping = mapping
        self.times = times
        self.summary = summary
        self.events: list[IncidentEvent] = []
        self.pending_closed: IncidentEvent | None = None
        self.ids: set[str] = set()
        self.status = NEW
        self.severity = ""
        self.reopen_count = 0
        self.responded = False
        self.last_at: datetime | None = None
        self.contract = ""
        self.last_resolving_line = 0
        self.resolution_bound: datetime | None = None

    def convert(self, rows: list[Row]) -> list[IncidentEvent]:
        rows = _in_sequence(rows, self.summary)
        rows = self._open(rows)
        self._find_last_resolution(rows)
        for row in rows:
            self._step(row)
        if self.pending_closed is not None:
            self.events.append(self.pending_closed)
        return self.events

    def _find_last_resolution(self, rows: list[Row]) -> None:
        """The row entering the last Resolved, and when the first row after that episode is."""
        previous = None
        for i, row in enumerate(rows):
            if row.status == RESOLVED and previous != RESOLVED:
                self.last_resolving_line = row.line
                after = (r.updated_at for r in rows[i + 1 :] if r.status != RESOLVED)
                self.resolution_bound = next(after, None)
            previous = row.status

    def _open(self, rows: list[Row]) -> list[Row]:
        """Open at the first row whose opened_at reads; report the rows before it."""
        for i, row in enumerate(rows):
            try:
                opened_at = self.times(row.cells["opened_at"] or "", "opened_at")
            except RowError as exc:
                detail = exc.detail if row.cells["opened_at"] else "opened_at is missing"
                self.summary.reported.append(ReportedRow(row.line, self.number, exc.reason, detail))
                continue
            self.severity, self.reopen_count = row.severity, row.reopen_count
            self.contract = self.mapping.contract_for(row.cells["caller_id"], row.cells["location"])
            self.last_at = opened_at
            keys = ("caller_id", "location", "priority", "impact", "urgency", "contact_type")
            facts = {k: row.cells[k] for k in keys if row.cells[k] is not None}
            self._emit(row, opened_at, "opened", severity=row.severity, status=NEW, extra=facts)
            if row.status != NEW:
                self.summary.notes["first_row_past_new"] += 1
            return rows[i:]
        return []

    def _step(self, row: Row) -> None:
        at = self._at(row.updated_at)
        rose = row.reopen_count > self.reopen_count
        self.reopen_count = max(self.reopen_count, row.reopen_count)
        if row.severity != self.severity:
            self.severity = row.severity
            self._emit(row, at, "severity_changed", severity=row.severity)
        if self.status in FINAL_STATUSES:
            self._from_final(row, at, rose)
        else:
            self._from_open(row, at)

    def _from_open(self, row: Row, at: datetime) -> None:
        target, previous = row.status, self.status
        if not self.responded and target != NEW:
            self.responded = True
            status = None if target in FINAL_STATUSES else target
            self._emit(row, at, "responded", status=status)
        if target == previous:
            return
        self.status = target
        if target == RESOLVED:
            self._emit(row, self._resolution_at(row, at), "resolved")
        elif target == CLOSED:
            self.pending_closed = self._event(row, at, "closed")
        elif target == CANCELLED:
            self._emit(row, at, "cancelled")
        elif not (previous == NEW and target == ACTIVE):
            self._emit(row, at, "status_changed", status=target)

    def _from_final(self, row: Row, at: datetime, rose: bool) -> None:
        target = row.status
        if target not in FINAL_STATUSES or rose:
            self._drop_pending_closed()
            self.status = target if target not in FINAL_STATUSES else ACTIVE
            self._emit(
                row, at, "reopened", status=None if rose and target in FINAL_STATUSES else target
            )
            if target in FINAL_STATUSES:  # reopened and final again between two rows
                self.summary.notes["reopened_between_rows"] += 1
                self._from_open(row, at)
        elif target != self.status:
            if self.status == CLOSED:
                self._drop_pending_closed()
            self.status = target
            if target == CLOSED:
                self.pending_closed = self._event(row, at, "closed")
            elif target == CANCELLED:
                self._emit(row, at, "cancelled")

    def _drop_pending_closed(self) -> None:
        if self.pending_closed is not None:
            self.pending_closed = None
            self.summary.notes["closed_then_reopened"] += 1

    def _resolution_at(self, row: Row, at: datetime) -> datetime:
        """The state change, or `resolved_at` for the last resolution when the mapping says so."""
        if self.mapping.resolution_time != "resolved_at" or row.line != self.last_resolving_line:
            return at
        text = row.cells["resolved_at"]
        try:
            resolved_at = self.times(text, "resolved_at") if text else None
        except RowError:
            resolved_at = None
        # Only inside its Resolved episode; elsewhere it would reorder the incident's events.
        bound = self.resolution_bound
        if resolved_at is None or resolved_at < at or (bound is not None and resolved_at > bound):
            self.summary.notes["resolved_at_not_used"] += 1
            return at
        self.summary.notes["resolved_at_used"] += 1
        return resolved_at

    def _at(self, instant: datetime) -> datetime:
        assert self.last_at is not None
        if instant < self.last_at:
            self.summary.notes["times_moved_forward"] += 1
            return self.last_at
        self.last_at = instant
        return instant

    def _event(self, row: Row, at: datetime, kind: str, **fields: Any) -> IncidentEvent:
        event_id = f"{self.number}:{row.mod}:{kind}"
        n = 1
        while event_id in self.ids:  # two kept rows with one mod count: still unique, stable
            n += 1
            event_id = f"{self.number}:{row.mod}:{kind}#{n}"
        self.ids.add(event_id)
        extra = fields.pop("extra", {})
        return IncidentEvent(
            event_id=event_id,
            incident_id=self.number,
            type=kind,
            occurred_at=at,
            contract_id=self.contract,
            category=row.cells["category"],
            team=row.cells["assignment_group"],
            source=SOURCE,
            attributes={
                "row": row.line,
                "sys_mod_count": row.mod,
                "incident_state": row.state,
                **extra,
            },
            **fields,
        )

    def _emit(self, row: Row, at: datetime, kind: str, **fields: Any) -> None:
        self.events.append(self._event(row, at, kind, **fields))
