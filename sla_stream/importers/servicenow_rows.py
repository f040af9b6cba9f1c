"""Reading a ServiceNow event log: CSV rows to parsed rows grouped by incident, or refused.

See `servicenow.py` for what the data looks like and how rows become events.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TextIO
from zoneinfo import ZoneInfo

from sla_stream.importers.csv_records import csv_records
from sla_stream.importers.servicenow_mapping import ServiceNowMapping

MISSING = "?"
REQUIRED_COLUMNS = (
    "number",
    "incident_state",
    "sys_mod_count",
    "sys_updated_at",
    "priority",
    "reopen_count",
    "opened_at",
)
OPTIONAL_COLUMNS = (
    "caller_id",
    "location",
    "category",
    "assignment_group",
    "resolved_at",
    "impact",
    "urgency",
    "contact_type",
    "priority",
    "sys_updated_by",
    "opened_by",
    "subcategory",
    "u_symptom",
)
_BLANK = frozenset({"", MISSING})
_MINUTES = [timedelta(minutes=m) for m in range(60)]
_STAMP = re.compile(r"(\d\d)-(\d\d)-(\d{4}) (\d\d):(\d\d)")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (e.g. a required column is missing)."""


@dataclass(frozen=True, slots=True)
class ReportedRow:
    """A row that was not imported, and why; `row` counts the header as row 1."""

    row: int
    incident: str
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "incident": self.incident,
            "reason": self.reason,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        return f"row {self.row} {self.incident or '-'}: {self.reason}: {self.detail}"


@dataclass
class ImportSummary:
    """Counts of one import; `reported` lists every row that was not imported."""

    rows: int = 0
    incidents: int = 0
    incidents_imported: int = 0
    events: Counter[str] = field(default_factory=Counter)
    reported: list[ReportedRow] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)


class RowError(Exception):
    """A row that cannot be mapped: a short reason tag and a detail naming the column."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Row(NamedTuple):
    """One parsed update of an incident; the other columns stay raw until asked for (`cell`)."""

    line: int
    number: str
    state: str
    status: str
    mod: int
    updated_at: datetime
    severity: str
    reopen_count: int
    category: str | None
    team: str | None  # assignment_group
    actor: str | None  # sys_updated_by, unless a system user
    record: list[str]
    index: dict[str, int]  # the header's column positions, shared by every row

    def cell(self, column: str) -> str | None:
        """A column's value, stripped; `?`, empty or absent as None."""
        i = self.index.get(column)
        value = self.record[i].strip() if i is not None else ""
        return None if value in _BLANK else value

    def cells(self, columns: tuple[str, ...]) -> dict[str, str]:
        """The columns that have a value, by name (as `cell` reads them)."""
        record, index, found = self.record, self.index, {}
        for column in columns:
            i = index.get(column)
            if i is not None and (value := record[i].strip()) not in _BLANK:
                found[column] = value
        return found


class LocalTimes:
    """`dd-mm-yyyy HH:MM` in the instance zone to aware datetimes, cached: the log repeats them."""

    def __init__(self, zone: ZoneInfo):
        self.zone = zone
        self._cache: dict[str, datetime] = {}
        self._hours: dict[str, datetime] = {}  # "dd-mm-yyyy HH" -> that hour's minute 0

    def __call__(self, text: str, column: str) -> datetime:
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        if _STAMP.fullmatch(text) is None:
            raise RowError("bad_time", f"{column} {text!r} is not dd-mm-yyyy HH:MM")
        # The pattern puts each number at a fixed place.
        minute, hour_start = int(text[14:16]), self._hours.get(text[:13])
        if hour_start is not None and minute < 60:
            local = hour_start + _MINUTES[minute]  # wall-clock arithmetic: the zone stays
        else:
            day, month, year, hour = (
                int(text[0:2]),
                int(text[3:5]),
                int(text[6:10]),
                int(text[11:13]),
            )
            try:
                local = datetime(year, month, day, hour, minute, tzinfo=self.zone)
            except ValueError:
                raise RowError("bad_time", f"{column} {text!r} is not a valid date") from None
            if len(self._hours) > 100_000:
                self._hours.clear()
            self._hours[text[:13]] = local.replace(minute=0)
        # A time skipped by a DST change cannot have been written by the instance: wrong zone?
        # (Both in one zone, so `!=` compares the wall times.)
        if local.astimezone(UTC).astimezone(self.zone) != local:
            raise RowError(
                "nonexistent_local_time", f"{column} {text!r} does not exist in {self.zone.key}"
            )
        if len(self._cache) > 500_000:
            self._cache.clear()
        self._cache[text] = local
        return local


def open_log(path: Path | str) -> TextIO:
    """Open a CSV export, gzip-compressed when its name ends in `.gz`."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def read_incidents(
    source: Iterable[str], mapping: ServiceNowMapping, times: LocalTimes, summary: ImportSummary
) -> Iterator[tuple[str, list[Row]]]:
    """Group the parsed rows of each contiguous run of an incident number."""
    reader = csv_records(source)
    header = next(reader, None)
    if header is None:
        raise ImportFileError("the file is empty")
    index = {name.strip(): i for i, name in enumerate(header)}
    absent = [c for c in REQUIRED_COLUMNS if c not in index]
    if absent:
        raise ImportFileError(f"required columns missing from the header: {', '.join(absent)}")
    parse = _row_parser(index, mapping, times)
    width, at_number, reported = len(header), index["number"], summary.reported
    current, rows, done, refused = "", [], set(), False
    for line, record in enumerate(reader, start=2):
        summary.rows += 1
        if len(record) != width:
            reported.append(
                ReportedRow(
                    line, "", "malformed_row", f"{len(record)} fields, the header has {width}"
                )
            )
            continue
        number = record[at_number].strip()
        if number in _BLANK:
            reported.append(ReportedRow(line, "", "missing_value", "number is missing"))
            continue
        if number != current:
            if rows:
                yield current, rows
            current, rows, refused = number, [], number in done
            if not refused:
                done.add(number)
                summary.incidents += 1
        if refused:
            reported.append(
                ReportedRow(
                    line,
                    number,
                    "not_contiguous",
                    "the incident's rows appeared earlier, apart from these",
                )
            )
            continue
        try:
            rows.append(parse(line, number, record))
        except RowError as exc:
            reported.append(ReportedRow(line, number, exc.reason, exc.detail))
    if rows:
        yield current, rows


def _cell_parsers(mapping: ServiceNowMapping, times: LocalTimes) -> tuple[_Parsed, ...]:
    """One memo per parsed column: state, severity, sys_mod_count, reopen_count, sys_updated_at,
    an optional text, and the actor (system users dropped)."""
    states, priorities, system_users = mapping.states, mapping.priorities, mapping.system_users

    def state(cell: str) -> tuple[str, str]:
        state = _required(cell, "incident_state")
        status = states.get(state)
        if status is None:
            raise RowError("unknown_state", f"incident_state {state!r} is not in the mapping")
        return state, status

    def severity(cell: str) -> str:
        priority = _required(cell, "priority")
        severity = priorities.get(priority)
        if severity is None:
            raise RowError("unknown_priority", f"priority {priority!r} is not in the mapping")
        return severity

    def actor(cell: str) -> str | None:
        updated_by = _optional(cell)
        return None if updated_by in system_users else updated_by

    return (
        _Parsed(state),
        _Parsed(severity),
        _Parsed(lambda cell: _integer(cell, "sys_mod_count")),
        _Parsed(lambda cell: _integer(cell, "reopen_count")),
        _Parsed(lambda cell: times(_required(cell, "sys_updated_at"), "sys_updated_at")),
        _Parsed(_optional),
        _Parsed(actor),
    )


def _row_parser(
    index: dict[str, int], mapping: ServiceNowMapping, times: LocalTimes
) -> Callable[[int, str, list[str]], Row]:
    """The parser of one file's rows: each column's raw cells parsed once per distinct value.

    A log repeats its states, priorities, counts, times, categories, groups and users: a row's
    cells are looked up in dicts that call the parser on a value not seen before (which raises
    for a bad one, so a bad value is refused on every row that has it)."""
    at_state, at_priority, at_mod, at_updated_at, at_reopen = (
        index[c]
        for c in ("incident_state", "priority", "sys_mod_count", "sys_updated_at", "reopen_count")
    )
    at_category, at_team, at_updated_by = (
        index.get(c) for c in ("category", "assignment_group", "sys_updated_by")
    )
    state_of, severity_of, mod_of, reopen_of, time_of, optional_of, actor_of = _cell_parsers(
        mapping, times
    )

    def parse(line: int, number: str, record: list[str]) -> Row:
        # The hot loop of a 141k-row log: the columns in the order their errors are reported.
        state, status = state_of[record[at_state]]
        severity = severity_of[record[at_priority]]
        mod = mod_of[record[at_mod]]
        updated_at = time_of[record[at_updated_at]]
        reopen_count = reopen_of[record[at_reopen]]
        return _new_row(
            Row,
            (
                line,
                number,
                state,
                status,
                mod,
                updated_at,
                severity,
                reopen_count,
                None if at_category is None else optional_of[record[at_category]],
                None if at_team is None else optional_of[record[at_team]],
                None if at_updated_by is None else actor_of[record[at_updated_by]],
                record,
                index,
            ),
        )

    return parse


_new_row = tuple.__new__  # a Row without the Python-level __new__ of a NamedTuple


class _Parsed(dict[str, Any]):
    """Raw cell -> its parsed value, parsed once (a parser that raises stores nothing)."""

    def __init__(self, parser: Callable[[str], Any]):
        super().__init__()
        self.parser = parser

    def __missing__(self, cell: str) -> Any:
        if len(self) > 500_000:  # a column of distinct values must not hold the whole log
            self.clear()
        value = self[cell] = self.parser(cell)
        return value


def _required(cell: str, column: str) -> str:
    value = cell.strip()
    if value in _BLANK:
        raise RowError("missing_value", f"{column} is missing")
    return value


def _optional(cell: str) -> str | None:
    value = cell.strip()
    return None if value in _BLANK else value


def _integer(cell: str, column: str) -> int:
    text = _required(cell, column)
    if not (text.isascii() and text.isdigit()):  # str.isdigit alone takes "²", which int refuses
        raise RowError("bad_number", f"{column} {text!r} is not a whole number")
    return int(text)
