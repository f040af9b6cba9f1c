"""The importer's fast paths give what the plain ones give: csv, times, the events' JSON."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_stream.core.models import IncidentEvent
from sla_stream.importers.csv_records import csv_records
from sla_stream.importers.event_json import EventJson
from sla_stream.importers.servicenow import event_fields
from sla_stream.importers.servicenow_data import sample_rows
from sla_stream.importers.servicenow_mapping import load_mapping
from sla_stream.importers.servicenow_rows import LocalTimes, RowError

EXAMPLE_MAPPING = Path(__file__).resolve().parents[2] / "examples" / "servicenow" / "mapping.yaml"
_PIECES = st.sampled_from(["a", "b c", ",", '"', "\r", "\n", "\r\n", "\0", " ", "é"])
_LINES = st.lists(st.lists(_PIECES, max_size=8).map("".join), max_size=5)


def _read(read, lines: list[str]) -> tuple[str, object]:
    try:
        return "records", list(read(lines))
    except csv.Error as exc:
        return "refused", str(exc)


@settings(max_examples=3000, deadline=None)
@given(_LINES)
def test_csv_records_are_csv_readers_records_or_its_refusal(lines: list[str]) -> None:
    assert _read(csv_records, lines) == _read(csv.reader, lines)


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("America/Sao_Paulo", datetime(2016, 10, 16)),  # an hour skipped at midnight
        ("America/Sao_Paulo", datetime(2017, 2, 18)),  # an hour repeated at midnight
        ("Australia/Lord_Howe", datetime(2016, 10, 2)),  # half an hour skipped at 02:00
        ("America/New_York", datetime(2016, 3, 13)),
    ],
)
def test_every_minute_of_a_dst_change_day_reads_as_the_zone_says(zone: str, day: datetime) -> None:
    times, tz = LocalTimes(ZoneInfo(zone)), ZoneInfo(zone)
    skipped = 0
    for minute in range(-60, 26 * 60):  # the day before's last hour to the day after's first
        wall = day + timedelta(minutes=minute)
        text = wall.strftime("%d-%m-%Y %H:%M")
        local = wall.replace(tzinfo=tz)
        if local.astimezone(UTC).astimezone(tz) != local:
            with pytest.raises(RowError, match="does not exist in"):
                times(text, "sys_updated_at")
            skipped += 1
        else:
            parsed = times(text, "sys_updated_at")
            assert (parsed, parsed.utcoffset(), parsed.fold) == (local, local.utcoffset(), 0)
    assert skipped in (0, 30, 60)


@pytest.mark.parametrize(
    ("seen", "text", "detail"),
    [
        (None, "31-02-2016 10:00", "is not a valid date"),
        ("29-02-2016 10:00", "29-02-2016 10:60", "is not a valid date"),
        ("29-02-2016 10:00", "29-02-16 10:00", "is not dd-mm-yyyy HH:MM"),
    ],
)
def test_an_impossible_time_is_refused_even_after_a_good_one_of_its_hour(seen, text, detail):
    times = LocalTimes(ZoneInfo("America/Sao_Paulo"))
    if seen is not None:
        times(seen, "opened_at")
    with pytest.raises(RowError) as refused:
        times(text, "opened_at")
    assert refused.value.reason == "bad_time"
    assert refused.value.detail == f"opened_at {text!r} {detail}"


def test_each_sample_event_is_written_as_its_model_writes_it() -> None:
    mapping = load_mapping(EXAMPLE_MAPPING)
    to_json = EventJson()
    lines = [to_json(fields) for fields in event_fields(sample_rows(), mapping, every_update=True)]
    assert len(lines) > 6000
    for line in lines:
        assert line == IncidentEvent.model_validate_json(line).to_json() + b"\n"


def test_an_incident_number_too_long_for_an_event_id_is_refused_naming_the_field() -> None:
    header, row = sample_rows(1)
    long_row = row.replace("INC0000045", "INC" + "9" * 260, 1)
    with pytest.raises(ValueError, match="event_id") as refused:
        list(event_fields([header, long_row], load_mapping(EXAMPLE_MAPPING)))
    assert "at most 256 characters" in str(refused.value)


@pytest.mark.parametrize(
    "at",
    [
        datetime(2016, 2, 29, 1, 16, tzinfo=ZoneInfo("America/Sao_Paulo")),
        datetime(2016, 1, 1, tzinfo=ZoneInfo("Europe/London")),  # offset zero: pydantic's Z
        datetime(1890, 1, 1, tzinfo=ZoneInfo("America/Sao_Paulo")),  # offset -03:06:28
        datetime(2016, 1, 1, 0, 0, 0, 500, tzinfo=ZoneInfo("Asia/Kolkata")),
        datetime(999, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo")),
        datetime(2017, 2, 18, 23, 30, fold=1, tzinfo=ZoneInfo("America/Sao_Paulo")),
    ],
)
def test_an_instant_is_written_as_pydantic_writes_it(at: datetime) -> None:
    fields = {"event_id": "e", "incident_id": "i", "type": "responded", "occurred_at": at}
    fields["attributes"] = {}
    expected = IncidentEvent(**fields).to_json() + b"\n"
    assert EventJson()(dict(fields)) == expected
