"""ServiceNow importer: the sample converts whole, three real incidents pinned, bad rows named."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from sla_stream.cli import main
from sla_stream.core.engine import TYPE_ORDER
from sla_stream.core.models import IncidentEvent
from sla_stream.importers.servicenow import ImportFileError, ImportSummary, convert
from sla_stream.importers.servicenow_data import (
    SAMPLE_ROWS,
    SERVICENOW_LOG,
    sample_rows,
    write_sample,
)
from sla_stream.importers.servicenow_mapping import (
    MappingError,
    ServiceNowMapping,
    load_mapping,
    parse_mapping,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLE = sample_rows()  # header and the first 5,998 rows of the shipped log: 890 incidents
EXAMPLE_MAPPING = REPO / "examples" / "servicenow" / "mapping.yaml"
ZONE = "America/Sao_Paulo"


@pytest.fixture(scope="module")
def mapping() -> ServiceNowMapping:
    return load_mapping(EXAMPLE_MAPPING)


@pytest.fixture(scope="module")
def sample(mapping: ServiceNowMapping) -> tuple[dict[str, list[IncidentEvent]], ImportSummary]:
    summary = ImportSummary()
    by_incident: dict[str, list[IncidentEvent]] = defaultdict(list)
    for event in convert(SAMPLE, mapping, summary):
        by_incident[event.incident_id].append(event)
    return dict(by_incident), summary


def pinned(events: list[IncidentEvent]) -> list[tuple]:
    return [
        (e.type, e.occurred_at.isoformat(), e.severity, e.status, e.attributes["row"])
        for e in events
    ]


# -- the sample, derived from the shipped log ---------------------------------------------


def test_the_sample_is_the_first_890_incidents_of_the_shipped_log_each_whole() -> None:
    assert SERVICENOW_LOG.relative_to(REPO).as_posix() == (
        "examples/servicenow/data/incident_event_log.csv.gz"
    )
    numbers = [line.split(",", 1)[0] for line in SAMPLE[1:]]
    assert SAMPLE[0].startswith("number,incident_state,") and len(numbers) == SAMPLE_ROWS
    assert len(set(numbers)) == 890
    following = sample_rows(SAMPLE_ROWS + 1)[-1].split(",", 1)[0]
    assert following not in numbers  # the next row starts a new incident: none is cut


# -- the whole sample ----------------------------------------------------------------------------


def test_all_890_incidents_of_the_sample_convert_and_every_event_validates(sample) -> None:
    by_incident, summary = sample
    assert (summary.rows, summary.incidents, summary.incidents_imported) == (5998, 890, 890)
    assert len(by_incident) == 890
    events = [e for evs in by_incident.values() for e in evs]
    for event in events:
        assert IncidentEvent.model_validate_json(event.to_json()) == event
        assert event.source == "servicenow"
        assert event.occurred_at.utcoffset() is not None
    assert len({e.event_id for e in events}) == len(events)
    assert summary.events == Counter(
        opened=890,
        responded=890,
        status_changed=442,
        severity_changed=45,
        resolved=901,
        reopened=11,
        closed=890,
    )


def test_each_incident_opens_once_responds_once_closes_last_and_never_goes_back(sample) -> None:
    by_incident, _ = sample
    for number, events in by_incident.items():
        types = [e.type for e in events]
        assert types[0] == "opened" and types.count("opened") == 1, number
        assert types.count("responded") == 1, number
        assert types[-1] == "closed" and types.count("closed") == 1, number
        instants = [e.occurred_at for e in events]
        assert instants == sorted(instants), number


def test_the_engine_tie_break_at_one_instant_keeps_the_log_order_of_rows(sample) -> None:
    # The engine sorts by (occurred_at, TYPE_ORDER, event_id): that must never reorder two rows.
    by_incident, _ = sample
    for number, events in by_incident.items():
        engine = sorted(events, key=lambda e: (e.occurred_at, TYPE_ORDER[e.type], e.event_id))
        rows = [e.attributes["row"] for e in engine]
        order = {row: i for i, row in enumerate(dict.fromkeys(e.attributes["row"] for e in events))}
        assert [order[r] for r in rows] == sorted(order[r] for r in rows), number


def test_the_sample_reports_exactly_its_five_rows_that_repeat_a_mod_count(sample) -> None:
    _, summary = sample
    assert [(r.row, r.incident, r.reason) for r in summary.reported] == [
        (330, "INC0000130", "duplicate_mod_count"),
        (346, "INC0000134", "duplicate_mod_count"),
        (351, "INC0000135", "duplicate_mod_count"),
        (359, "INC0000137", "duplicate_mod_count"),
        (438, "INC0000164", "duplicate_mod_count"),
    ]
    assert "also on row 360" in summary.reported[3].detail


def test_contracts_come_from_caller_then_location_then_default(sample) -> None:
    by_incident, _ = sample
    opened = {n: evs[0] for n, evs in by_incident.items()}
    by_contract = Counter(e.contract_id for e in opened.values())
    assert by_contract == {"sn-standard": 551, "sn-headquarters": 326, "sn-key-users": 13}
    for event in opened.values():
        caller, location = event.attributes.get("caller_id"), event.attributes.get("location")
        if caller == "Caller 4414":
            assert event.contract_id == "sn-key-users"
        elif location in ("Location 204", "Location 161"):
            assert event.contract_id == "sn-headquarters"
        else:
            assert event.contract_id == "sn-standard"
        # Every event of the incident carries the contract of its opening.
        assert {e.contract_id for e in by_incident[event.incident_id]} == {event.contract_id}


def test_caller_wins_over_location() -> None:
    both = {"contracts_by_caller": {"Caller 2403": "c"}, "contracts_by_location": {"L": "l"}}
    m = parse_mapping({"timezone": ZONE, "default_contract": "d", **both})
    assert m.contract_for("Caller 2403", "L") == "c"
    assert m.contract_for("Caller 1", "L") == "l"
    assert m.contract_for(None, None) == "d"


# -- three real incidents, pinned against their raw rows ------------------------------------------


def test_pinned_incident_with_a_pause(sample) -> None:
    # number,incident_state,reopen_count,sys_mod_count,sys_updated_at,priority,opened_at,...
    # 1056: INC0000355,New,0,0,29-02-2016 15:32,3 - Moderate,29-02-2016 15:30  (Location 51)
    # 1057: INC0000355,Awaiting User Info,0,1,02-03-2016 12:37,3 - Moderate,29-02-2016 15:30
    # 1058: INC0000355,Active,0,2,02-03-2016 16:27,3 - Moderate,29-02-2016 15:30
    # 1059: INC0000355,Resolved,0,3,03-03-2016 11:54,3 - Moderate,29-02-2016 15:30
    # 1060: INC0000355,Closed,0,4,08-03-2016 12:00,3 - Moderate,29-02-2016 15:30
    # Sao Paulo is at -03:00 in March 2016. Leaving New for Awaiting User Info is the response
    # and the start of the pause; back to Active ends it.
    events = sample[0]["INC0000355"]
    assert pinned(events) == [
        ("opened", "2016-02-29T15:30:00-03:00", "P3", "new", 1056),
        ("responded", "2016-03-02T12:37:00-03:00", None, "awaiting_user_info", 1057),
        ("status_changed", "2016-03-02T12:37:00-03:00", None, "awaiting_user_info", 1057),
        ("status_changed", "2016-03-02T16:27:00-03:00", None, "active", 1058),
        ("resolved", "2016-03-03T11:54:00-03:00", None, None, 1059),
        ("closed", "2016-03-08T12:00:00-03:00", None, None, 1060),
    ]
    assert [e.event_id for e in events][:3] == [
        "INC0000355:0:opened",
        "INC0000355:1:responded",
        "INC0000355:1:status_changed",
    ]
    assert {(e.contract_id, e.category, e.team) for e in events} == {
        ("sn-standard", "Category 61", "Group 30")
    }
    assert events[0].attributes == {
        "row": 1056,
        "sys_mod_count": 0,
        "incident_state": "New",
        "caller_id": "Caller 599",
        "location": "Location 51",
        "priority": "3 - Moderate",
        "impact": "2 - Medium",
        "urgency": "2 - Medium",
        "contact_type": "Phone",
        "opened_by": "Opened by  221",
        "subcategory": "Subcategory 16",
        "u_symptom": "Symptom 4",
    }


def test_pinned_incident_with_a_priority_change(sample) -> None:
    # number,incident_state,reopen_count,sys_mod_count,sys_updated_at,priority,opened_at,
    #   category,assignment_group                                        (Location 204)
    # 2159: INC0000637,New,0,0,01-03-2016 11:31,3 - Moderate,01-03-2016 11:26,Category 53,Group 70
    # 2160: INC0000637,New,0,1,01-03-2016 11:36,2 - High,01-03-2016 11:26,Category 43,Group 70
    # 2161: INC0000637,New,0,2,01-03-2016 16:43,2 - High,01-03-2016 11:26,Category 43,Group 39
    # 2162: INC0000637,Resolved,0,3,03-03-2016 09:24,2 - High,01-03-2016 11:26,Category 43,Group 39
    # 2163: INC0000637,Closed,0,4,08-03-2016 10:00,2 - High,01-03-2016 11:26,Category 43,Group 39
    # Raised from P3 to P2 while New; New straight to Resolved is the response and the resolution.
    events = sample[0]["INC0000637"]
    assert pinned(events) == [
        ("opened", "2016-03-01T11:26:00-03:00", "P3", "new", 2159),
        ("severity_changed", "2016-03-01T11:36:00-03:00", "P2", None, 2160),
        ("responded", "2016-03-03T09:24:00-03:00", None, None, 2162),
        ("resolved", "2016-03-03T09:24:00-03:00", None, None, 2162),
        ("closed", "2016-03-08T10:00:00-03:00", None, None, 2163),
    ]
    assert [(e.category, e.team) for e in events] == [
        ("Category 53", "Group 70"),
        ("Category 43", "Group 70"),
        ("Category 43", "Group 39"),
        ("Category 43", "Group 39"),
        ("Category 43", "Group 39"),
    ]
    assert {e.contract_id for e in events} == {"sn-headquarters"}


def test_pinned_incident_reopened(sample) -> None:
    # number,incident_state,reopen_count,sys_mod_count,sys_updated_at,priority,opened_at  (Loc. 51)
    # 5430: INC0001312,Active,0,0,02-03-2016 13:41,3 - Moderate,02-03-2016 13:40
    # 5431: INC0001312,Resolved,0,12,06-04-2016 14:29,3 - Moderate,02-03-2016 13:40
    # 5432: INC0001312,Active,1,13,06-04-2016 16:31,3 - Moderate,02-03-2016 13:40
    # 5433: INC0001312,Active,1,14,06-04-2016 16:31,3 - Moderate,02-03-2016 13:40
    # 5434: INC0001312,Awaiting User Info,1,17,14-04-2016 09:57,3 - Moderate,02-03-2016 13:40
    # 5435: INC0001312,Awaiting User Info,1,21,25-04-2016 10:50,3 - Moderate,02-03-2016 13:40
    # 5436: INC0001312,Resolved,1,22,25-04-2016 11:16,3 - Moderate,02-03-2016 13:40
    # 5437: INC0001312,Closed,1,23,30-04-2016 12:07,3 - Moderate,02-03-2016 13:40
    # No New row: the first row (already Active) is the response. Resolved -> Active with the
    # reopen count rising to 1 is the reopen; rows 5433 and 5435 change nothing that counts.
    events = sample[0]["INC0001312"]
    assert pinned(events) == [
        ("opened", "2016-03-02T13:40:00-03:00", "P3", "new", 5430),
        ("responded", "2016-03-02T13:41:00-03:00", None, "active", 5430),
        ("resolved", "2016-04-06T14:29:00-03:00", None, None, 5431),
        ("reopened", "2016-04-06T16:31:00-03:00", None, "active", 5432),
        ("status_changed", "2016-04-14T09:57:00-03:00", None, "awaiting_user_info", 5434),
        ("resolved", "2016-04-25T11:16:00-03:00", None, None, 5436),
        ("closed", "2016-04-30T12:07:00-03:00", None, None, 5437),
    ]
    assert [e.event_id for e in events] == [
        "INC0001312:0:opened",
        "INC0001312:0:responded",
        "INC0001312:12:resolved",
        "INC0001312:13:reopened",
        "INC0001312:17:status_changed",
        "INC0001312:22:resolved",
        "INC0001312:23:closed",
    ]


def test_an_update_dated_before_opened_at_is_dated_at_the_opening(sample) -> None:
    # 336: INC0000131,Active,0,0,29-02-2016 07:14,...,opened_at 29-02-2016 09:41
    events = sample[0]["INC0000131"]
    assert pinned(events)[:2] == [
        ("opened", "2016-02-29T09:41:00-03:00", "P3", "new", 336),
        ("responded", "2016-02-29T09:41:00-03:00", None, "active", 336),
    ]
    assert sample[1].notes["times_moved_forward"] == 1


def test_a_row_repeating_a_mod_count_out_of_place_is_left_out_and_the_rest_imported(sample) -> None:
    # 359: INC0000137,New,0,1,29-02-2016 11:10   <- reported: after the mod-2 row's 11:03
    # 360: INC0000137,New,0,1,29-02-2016 09:52
    # 361: INC0000137,Resolved,0,2,29-02-2016 11:03
    # 362: INC0000137,Closed,0,3,05-03-2016 12:00
    assert [t[:2] for t in pinned(sample[0]["INC0000137"])] == [
        ("opened", "2016-02-29T09:48:00-03:00"),
        ("responded", "2016-02-29T11:03:00-03:00"),
        ("resolved", "2016-02-29T11:03:00-03:00"),
        ("closed", "2016-03-05T12:00:00-03:00"),
    ]


def test_resolution_time_resolved_at_dates_the_last_resolution_at_resolved_at() -> None:
    # 3: INC0000045,Resolved,0,2,29-02-2016 08:53 ... resolved_at 29-02-2016 11:29
    # 4: INC0000045,Resolved,0,3,29-02-2016 11:29 ... resolved_at 29-02-2016 11:29
    def resolved(mode: str) -> str:
        m = parse_mapping({"timezone": ZONE, "default_contract": "d", "resolution_time": mode})
        for event in convert(SAMPLE, m):
            if event.incident_id == "INC0000045" and event.type == "resolved":
                return event.occurred_at.isoformat()
        raise AssertionError("no resolved event")

    assert resolved("state_change") == "2016-02-29T08:53:00-03:00"
    assert resolved("resolved_at") == "2016-02-29T11:29:00-03:00"


# -- crafted rows: what cannot be mapped is reported by row number -------------------------------

HEADER = SAMPLE[0].rstrip("\r\n").split(",")


def csv_text(*rows: dict[str, str]) -> io.StringIO:
    base = dict.fromkeys(HEADER, "?")
    base.update(
        priority="3 - Moderate",
        reopen_count="0",
        opened_at="01-03-2016 09:00",
        caller_id="Caller 1",
        location="Location 1",
    )
    lines = [",".join(HEADER)]
    for row in rows:
        if "_raw" in row:
            lines.append(row["_raw"])
        else:
            lines.append(",".join({**base, **row}[c] for c in HEADER))
    return io.StringIO("\r\n".join(lines) + "\r\n", newline="")


def row(number: str, state: str, mod: int | str, at: str, **more: str) -> dict[str, str]:
    return {
        "number": number,
        "incident_state": state,
        "sys_mod_count": str(mod),
        "sys_updated_at": at,
        **more,
    }


def run(source: io.StringIO) -> tuple[dict[str, list[IncidentEvent]], ImportSummary]:
    summary = ImportSummary()
    by_incident: dict[str, list[IncidentEvent]] = defaultdict(list)
    m = parse_mapping({"timezone": ZONE, "default_contract": "d"})
    for event in convert(source, m, summary):
        by_incident[event.incident_id].append(event)
    return dict(by_incident), summary


def test_rows_that_cannot_be_mapped_are_reported_with_row_number_and_reason() -> None:
    source = csv_text(
        row("X1", "New", 0, "01-03-2016 09:05"),  # row 2
        row("X1", "-100", 1, "01-03-2016 09:10"),  # row 3
        row("X1", "Active", 2, "?"),  # row 4
        row("X1", "Active", 3, "31-02-2016 10:00"),  # row 5
        row("X1", "Resolved", 4, "01-03-2016 12:00"),  # row 6
        row("X1", "Closed", 5, "06-03-2016 12:00"),  # row 7
        row("X2", "New", 0, "01-03-2016 09:01", priority="5 - Planning"),  # row 8
        row("X2", "Active", 1, "01-03-2016 09:30"),  # row 9
        {"_raw": "X2,Active,TRUE"},  # row 10
        row("X1", "Active", 6, "07-03-2016 09:00"),  # row 11
        row("X3", "New", 0, "16-10-2016 00:30"),  # row 12: skipped by DST in Sao Paulo
        row("X3", "Active", 1, "16-10-2016 09:00", opened_at="16-10-2016 08:00"),  # row 13
        row("X4", "New", 0, "01-03-2016 09:00", opened_at="?"),  # row 14
        row("X5", "Active", "x", "01-03-2016 09:00"),  # row 15
        row("X6", "Active", "²", "01-03-2016 09:00"),  # row 16: a digit int() refuses
    )
    by_incident, summary = run(source)
    assert [(r.row, r.incident, r.reason) for r in summary.reported] == [
        (3, "X1", "unknown_state"),
        (4, "X1", "missing_value"),
        (5, "X1", "bad_time"),
        (8, "X2", "unknown_priority"),
        (10, "", "malformed_row"),
        (11, "X1", "not_contiguous"),
        (12, "X3", "nonexistent_local_time"),
        (14, "X4", "missing_value"),
        (15, "X5", "bad_number"),
        (16, "X6", "bad_number"),
    ]
    details = [r.detail for r in summary.reported]
    assert "'-100'" in details[0] and "sys_updated_at" in details[1] and "'31-02-2016" in details[2]
    assert "opened_at" in details[7]
    # The rest of each incident still imports.
    assert [e.type for e in by_incident["X1"]] == ["opened", "responded", "resolved", "closed"]
    assert pinned(by_incident["X2"]) == [
        ("opened", "2016-03-01T09:00:00-03:00", "P3", "new", 9),
        ("responded", "2016-03-01T09:30:00-03:00", None, "active", 9),
    ]
    # After Sao Paulo's 2016 DST start the offset is -02:00.
    assert by_incident["X3"][0].occurred_at.isoformat() == "2016-10-16T08:00:00-02:00"
    assert (summary.rows, summary.incidents, summary.incidents_imported) == (15, 6, 3)


def test_an_ambiguous_local_time_takes_the_earlier_instant() -> None:
    # Sao Paulo left DST at midnight into 2017-02-19: 23:00-23:59 on the 18th happened twice.
    by_incident, summary = run(
        csv_text(
            row("X1", "New", 0, "18-02-2017 23:30", opened_at="18-02-2017 23:20"),
            row("X1", "Active", 1, "19-02-2017 00:10", opened_at="18-02-2017 23:20"),
        )
    )
    assert [e.occurred_at.isoformat() for e in by_incident["X1"]] == [
        "2017-02-18T23:20:00-02:00",
        "2017-02-19T00:10:00-03:00",
    ]
    assert summary.reported == []


def test_a_missing_required_column_refuses_the_file() -> None:
    source = io.StringIO("number,incident_state,sys_updated_at\r\nX1,New,01-03-2016 09:00\r\n")
    with pytest.raises(ImportFileError, match="sys_mod_count"):
        list(convert(source, parse_mapping({"timezone": ZONE, "default_contract": "d"})))


def test_a_reopen_after_closed_emits_one_closed_at_the_end() -> None:
    by_incident, summary = run(
        csv_text(
            row("X1", "New", 0, "01-03-2016 09:05"),
            row("X1", "Resolved", 1, "01-03-2016 12:00"),
            row("X1", "Closed", 2, "06-03-2016 12:00"),
            row("X1", "Active", 3, "07-03-2016 08:00", reopen_count="1"),
            row("X1", "Resolved", 4, "07-03-2016 10:00", reopen_count="1"),
            row("X1", "Closed", 5, "12-03-2016 10:00", reopen_count="1"),
        )
    )
    assert [(e.type, e.attributes["row"]) for e in by_incident["X1"]] == [
        ("opened", 2),
        ("responded", 3),
        ("resolved", 3),
        ("reopened", 5),
        ("resolved", 6),
        ("closed", 7),
    ]
    assert summary.notes["closed_then_reopened"] == 1


def test_rows_in_one_minute_keep_their_order_under_the_engine_tie_break() -> None:
    # Reopened and resolved again in the same minute (as INC0008478 of the whole log): the engine
    # would apply `resolved` before `reopened` at one instant, so the later row gets a second.
    by_incident, summary = run(
        csv_text(
            row("X1", "Active", 0, "01-03-2016 09:05"),
            row("X1", "Resolved", 1, "01-03-2016 11:45"),
            row("X1", "Active", 2, "01-03-2016 11:47", reopen_count="1"),
            row("X1", "Resolved", 3, "01-03-2016 11:47", reopen_count="1"),
        )
    )
    assert [(e.type, e.occurred_at.isoformat()) for e in by_incident["X1"][2:]] == [
        ("resolved", "2016-03-01T11:45:00-03:00"),
        ("reopened", "2016-03-01T11:47:00-03:00"),
        ("resolved", "2016-03-01T11:47:01-03:00"),
    ]
    assert summary.notes["second_added_for_order"] == 1


# -- the mapping file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "Mars/Olympus_Mons"),
        ({"contracts_by_site": {}}, "contracts_by_site", None),
        ({"priorities": {"1 - Critical": "P0"}}, "priorities.1 - Critical", "P0"),
        ({"states": {"Awaiting User Info": "Awaiting User"}}, "states.Awaiting User Info", None),
        ({"states": {"Closed": "done"}}, "states", "'closed'"),
        ({"default_contract": ""}, "default_contract", None),
        ({"resolution_time": "later"}, "resolution_time", "later"),
    ],
)
def test_a_mapping_error_names_the_field_and_value(change: dict, field: str, value) -> None:
    data = {"timezone": ZONE, "default_contract": "d", **change}
    with pytest.raises(MappingError) as info:
        parse_mapping(data, file="mapping.yaml")
    assert info.value.field == field
    assert str(info.value).startswith(f"mapping.yaml:{field}: ")
    if value is not None:
        assert value in str(info.value)


def test_a_missing_required_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(f"timezone: {ZONE}\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"m\.yaml:default_contract: required field"):
        load_mapping(path)


def test_the_example_mapping_merges_the_default_states_and_priorities(mapping) -> None:
    assert mapping.timezone == ZONE
    assert mapping.states["Awaiting Vendor"] == "awaiting_vendor"
    assert "-100" not in mapping.states
    assert mapping.priorities["1 - Critical"] == "P1"
    custom = parse_mapping(
        {"timezone": ZONE, "default_contract": "d", "states": {"Awaiting Vendor": "on_hold"}}
    )
    assert custom.states["Awaiting Vendor"] == "on_hold"
    assert custom.states["Awaiting User Info"] == "awaiting_user_info"


# -- the command ---------------------------------------------------------------------------------


def test_cli_writes_events_counts_and_the_report(tmp_path: Path) -> None:
    out, report = tmp_path / "events.jsonl", tmp_path / "reported.jsonl"
    sample = write_sample(tmp_path / "sample.csv")  # a plain CSV file, as an export is
    args = ["import", "servicenow", str(sample), "--mapping", str(EXAMPLE_MAPPING)]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    events = [IncidentEvent.from_json(x) for x in out.read_bytes().splitlines()]
    assert len(events) == 4069
    assert events[0].event_id == "INC0000045:0:opened"
    # By default all events come in time order, as a live feed (and replay) would have them.
    assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
    text = result.output
    assert "rows" in text and "5,998" in text and "890 imported" in text
    assert any(line.split() == ["closed", "890"] for line in text.splitlines())
    assert any(line.split() == ["duplicate_mod_count", "5"] for line in text.splitlines())
    assert [orjson.loads(x)["row"] for x in report.read_bytes().splitlines()] == [
        330,
        346,
        351,
        359,
        438,
    ]


def test_cli_incident_order_and_reported_rows_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    # The README's way: the shipped gzip log itself, cut to the sample by --limit.
    args = ["import", "servicenow", str(SERVICENOW_LOG), "--mapping", str(EXAMPLE_MAPPING)]
    args += ["--limit", str(SAMPLE_ROWS)]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--order", "incident"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0].startswith("row 330 INC0000130: duplicate_mod_count: ")
    events = [IncidentEvent.from_json(x) for x in out.read_bytes().splitlines()]
    assert len(events) == 4069
    runs = [
        e.incident_id
        for i, e in enumerate(events)
        if i == 0 or events[i - 1].incident_id != e.incident_id
    ]
    assert len(runs) == len(set(runs)) == 890  # each incident's events together


def test_cli_refuses_a_bad_mapping_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("timezone: Europe/Atlantis\ndefault_contract: d\n", encoding="utf-8")
    args = ["import", "servicenow", str(SERVICENOW_LOG), "--mapping", str(bad)]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "e.jsonl")])
    assert result.exit_code == 1
    assert "timezone" in result.output and "Europe/Atlantis" in result.output
    assert not (tmp_path / "e.jsonl").exists()
