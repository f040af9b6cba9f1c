"""Contracts files: refusals that point at the mistake, and resolution to effective terms."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sla_stream.cli.contracts import contracts
from sla_stream.core.calendar import BusinessCalendar
from sla_stream.core.contract_file import dotted
from sla_stream.core.contract_versions import published_conflicts
from sla_stream.core.contracts import (
    DEFAULT_PAUSE_STATUSES,
    load_contracts,
    parse_contracts,
)
from sla_stream.core.durations import describe_seconds, parse_duration_seconds
from sla_stream.core.errors import InvalidContract
from sla_stream.core.models import METRICS, SEVERITIES
from sla_stream.core.terms import ContractRecord

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contracts.yaml"
FILE = "portfolio.yaml"

OFFICE = {
    "timezone": "Europe/Berlin",
    "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-25"],
}


def base() -> dict[str, Any]:
    """A small valid file: two tiers, one office calendar, one contract with two clauses."""
    return {
        "calendars": {"office": copy.deepcopy(OFFICE)},
        "tiers": {
            "gold": {
                "calendar": "office",
                "targets": {
                    "first_response": {"P1": {"allowance": "15m", "calendar": "24x7"}, "P3": "4h"},
                    "resolution": {"P1": {"allowance": "4h", "calendar": "24x7"}, "P3": "PT16H"},
                },
            },
            "bronze": {
                "warning_thresholds": [0.8],
                "targets": {"first_response": {"P1": "2h"}, "resolution": {"P1": "1h30m"}},
            },
        },
        "tier_rules": [
            {"tier": "gold", "when": {"customer_tier": ["key", "strategic"], "min_value": 100000}},
            {"tier": "bronze"},
        ],
        "contracts": [
            {
                "contract_id": "c-1",
                "customer_id": "acme",
                "customer_tier": "key",
                "value": 250000,
                "currency": "EUR",
                "calendar": "office",
                "clauses": [
                    {"id": "4.1", "title": "Response", "covers": [{"metric": "first_response"}]},
                    {"id": "4.2", "title": "Restoration", "covers": [{"metric": "resolution"}]},
                ],
            }
        ],
    }


def refusal(data: dict[str, Any]) -> InvalidContract:
    with pytest.raises(InvalidContract) as caught:
        parse_contracts(data, file=FILE)
    err = caught.value
    assert err.file == FILE
    assert str(err).startswith(f"{FILE}:{err.path}: ")
    return err


def only(data: dict[str, Any]) -> ContractRecord:
    records = parse_contracts(data, file=FILE)
    assert len(records) == 1
    return next(iter(records.values()))


# --- refusals, each naming the file, the path in it and the value ---------------------------


def test_unknown_calendar_of_a_contract() -> None:
    data = base()
    data["contracts"][0]["calendar"] = "ofice"
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[0].calendar", "ofice")
    assert "unknown calendar" in str(err) and "'ofice'" in str(err)


def test_unknown_calendar_of_a_tier_target() -> None:
    data = base()
    data["tiers"]["gold"]["targets"]["resolution"]["P1"]["calendar"] = "24/7"
    err = refusal(data)
    assert (err.path, err.value) == ("tiers.gold.targets.resolution.P1.calendar", "24/7")


def test_unknown_calendar_of_an_override() -> None:
    data = base()
    data["contracts"][0]["overrides"] = {"resolution": {"P3": {"calendar": "weekend"}}}
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[0].overrides.resolution.P3.calendar", "weekend")


def test_calendar_block_errors_are_prefixed_with_the_calendar() -> None:
    data = base()
    data["calendars"]["office"]["hours"]["mon"] = [["09:00", "25:00"]]
    err = refusal(data)
    assert (err.path, err.value) == ("calendars.office.hours.mon[0]", ["09:00", "25:00"])


def test_date_exception_errors_name_the_file_the_calendar_path_and_value(tmp_path: Path) -> None:
    data = base()
    data["calendars"]["office"]["dates"] = {"2026-12-24": [["08:00", "12:00"]]}
    assert parse_contracts(data, file=FILE)["c-1"].versions[0].calendars["office"]["dates"] == {
        "2026-12-24": [["08:00", "12:00"]]
    }
    data["calendars"]["office"]["dates"] = {"2026-12-24": [["12:00", "08:00"]]}
    err = refusal(data)
    assert (err.path, err.value) == ("calendars.office.dates.2026-12-24[0]", ["12:00", "08:00"])
    # Unquoted YAML dates are dates (not strings) as keys; a bad one is named as written.
    text = yaml.safe_dump(base()).replace("  office:\n", "  office:\n    dates: {2026-13-01: []}\n")
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidContract) as caught:
        load_contracts(path)
    assert (caught.value.file, caught.value.path) == (
        str(path),
        "calendars.office.dates.2026-13-01",
    )
    assert caught.value.value == "2026-13-01"
    good = tmp_path / "d.yaml"
    good.write_text(text.replace("2026-13-01: []", "2026-12-24: []"), encoding="utf-8")
    terms = load_contracts(good)["c-1"].versions[0]
    assert terms.calendars["office"]["dates"] == {"2026-12-24": []}


def test_unknown_tier_named_by_a_contract() -> None:
    data = base()
    data["contracts"][0]["tier"] = "platinum"
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[0].tier", "platinum")
    assert "known: bronze, gold" in str(err)


def test_unknown_tier_named_by_a_rule() -> None:
    data = base()
    data["tier_rules"][1]["tier"] = "brnze"
    err = refusal(data)
    assert (err.path, err.value) == ("tier_rules[1].tier", "brnze")


@pytest.mark.parametrize("allowance", ["4 hours", "4", 4, "2d", "P1D", "P1M", "0s", "PT4X", ""])
def test_bad_duration(allowance: Any) -> None:
    data = base()
    data["tiers"]["gold"]["targets"]["first_response"]["P3"] = {"allowance": allowance}
    err = refusal(data)
    assert err.path == "tiers.gold.targets.first_response.P3.allowance"
    assert err.value == allowance


@pytest.mark.parametrize(
    "thresholds", [[0.5, 1.0], [0.0, 0.5], [-0.1], [1.5], [0.9, 0.5], [0.5, 0.5]]
)
def test_thresholds_outside_zero_one_or_unsorted(thresholds: list[float]) -> None:
    data = base()
    data["tiers"]["gold"]["targets"]["resolution"]["P1"]["warning_thresholds"] = thresholds
    err = refusal(data)
    assert err.path == "tiers.gold.targets.resolution.P1.warning_thresholds"
    assert list(err.value) == thresholds
    assert "between 0 and 1" in str(err) or "increasing order" in str(err)


def test_thresholds_of_an_override_are_checked_too() -> None:
    data = base()
    data["contracts"][0]["overrides"] = {
        "first_response": {"P1": {"warning_thresholds": [0.9, 0.8]}}
    }
    err = refusal(data)
    assert err.path == "contracts[0].overrides.first_response.P1.warning_thresholds"
    assert "increasing order" in str(err)


def test_effective_to_before_effective_from() -> None:
    data = base()
    data["contracts"][0]["effective_from"] = "2026-07-01"
    data["contracts"][0]["effective_to"] = "2026-06-30"
    err = refusal(data)
    assert err.path == "contracts[0].effective_to"
    assert err.value == "2026-06-30T00:00:00+02:00"  # a date is midnight in the contract's zone
    assert "after effective_from (2026-07-01T00:00:00+02:00)" in str(err)


def test_effective_to_equal_to_effective_from_is_refused() -> None:
    data = base()
    data["contracts"][0]["effective_from"] = "2026-07-01T00:00:00+02:00"
    data["contracts"][0]["effective_to"] = "2026-07-01"
    assert refusal(data).path == "contracts[0].effective_to"


def test_naive_effective_instant_is_refused() -> None:
    data = base()
    data["contracts"][0]["effective_from"] = "2026-07-01T09:00:00"
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[0].effective_from", "2026-07-01T09:00:00")


def test_duplicate_contract_ids() -> None:
    data = base()
    data["contracts"].append(copy.deepcopy(data["contracts"][0]))
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[1].contract_id", "c-1")
    assert "duplicate contract id" in str(err) and "contracts[0]" in str(err)


def test_clause_covering_an_unknown_metric() -> None:
    data = base()
    data["contracts"][0]["clauses"][0]["covers"].append({"metric": "first_reply"})
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[0].clauses[0].covers[1].metric", "first_reply")


def test_clause_covering_an_unknown_severity() -> None:
    data = base()
    data["contracts"][0]["clauses"][0]["covers"][0]["severity"] = ["P1", "P5"]
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[0].clauses[0].covers[0].severity[1]", "P5")


def test_target_that_no_clause_covers_is_reported() -> None:
    data = base()
    data["contracts"][0]["clauses"].pop()
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[0].clauses", "resolution/P1")
    assert "covered by no clause" in str(err)


def test_clause_covering_a_severity_without_a_target() -> None:
    data = base()
    data["contracts"][0]["clauses"][1]["covers"] = [{"metric": "resolution", "severity": "P2"}]
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[0].clauses[1].covers[0].severity", "P2")


def test_two_clauses_covering_one_target() -> None:
    data = base()
    data["contracts"][0]["clauses"][1]["covers"].append({"metric": "first_response"})
    err = refusal(data)
    assert err.path == "contracts[0].clauses[1].covers[1]"
    assert "already covered by clause '4.1'" in str(err)


def test_unknown_field_is_a_typo() -> None:
    data = base()
    data["contracts"][0]["pause_status"] = ["pending_customer"]
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[0].pause_status", ["pending_customer"])
    assert "unknown field" in str(err)


def test_unknown_metric_key_in_a_tier() -> None:
    data = base()
    data["tiers"]["gold"]["targets"]["response"] = {"P1": "1h"}
    err = refusal(data)
    assert (err.path, err.value) == ("tiers.gold.targets.response", "response")


def test_override_adding_a_target_needs_an_allowance() -> None:
    data = base()
    data["contracts"][0]["overrides"] = {"resolution": {"P2": {"calendar": "24x7"}}}
    err = refusal(data)
    assert err.path == "contracts[0].overrides.resolution.P2"
    assert "needs an allowance" in str(err)


def test_no_tier_and_no_matching_rule() -> None:
    data = base()
    data["tier_rules"].pop()
    data["contracts"][0]["customer_tier"] = "standard"
    err = refusal(data)
    assert err.path == "contracts[0]"
    assert err.value == {"customer_tier": "standard", "value": 250000, "currency": "EUR"}


def test_value_without_currency() -> None:
    data = base()
    del data["contracts"][0]["currency"]
    assert refusal(data).path == "contracts[0].currency"


def test_unknown_contract_time_zone() -> None:
    data = base()
    data["contracts"][0]["timezone"] = "Europe/Berlln"
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[0].timezone", "Europe/Berlln")


def test_versions_of_one_contract_name_one_customer() -> None:
    data = base()
    later = copy.deepcopy(data["contracts"][0])
    later.update(version=2, customer_id="acme-gmbh", effective_from="2026-07-01")
    data["contracts"].append(later)
    err = refusal(data)
    assert (err.path, err.value) == ("contracts[1].customer_id", "acme-gmbh")


def test_a_superseding_version_needs_effective_from() -> None:
    data = base()
    data["contracts"].append({**copy.deepcopy(data["contracts"][0]), "version": 2})
    assert refusal(data).path == "contracts[1].effective_from"


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("tiers: [unclosed\n", encoding="utf-8")
    with pytest.raises(InvalidContract, match="not valid YAML") as caught:
        load_contracts(bad)
    assert caught.value.file == str(bad)
    other = tmp_path / "contracts.toml"
    other.write_text("", encoding="utf-8")
    with pytest.raises(InvalidContract, match=r"\.yaml, \.yml or \.json"):
        load_contracts(other)


def test_load_names_the_file_in_refusals(tmp_path: Path) -> None:
    data = base()
    data["contracts"][0]["tier"] = "platinum"
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InvalidContract) as caught:
        load_contracts(path)
    assert (caught.value.file, caught.value.path) == (str(path), "contracts[0].tier")
    assert str(caught.value).startswith(f"{path}:contracts[0].tier: unknown tier")


def test_dotted_paths() -> None:
    assert dotted(("contracts", 2, "clauses", 0, "covers", 1, "metric")) == (
        "contracts[2].clauses[0].covers[1].metric"
    )
    assert dotted(("tiers", "gold", "targets", "respond", "[key]")) == "tiers.gold.targets.respond"


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("4h", 14400),
        ("1h30m", 5400),
        ("1h0m30s", 3630),
        ("1.5h", 5400),
        ("PT4H", 14400),
        ("PT1H30M", 5400),
        ("pt45m", 2700),
        (" 2h ", 7200),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_seconds(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(30, "30 seconds"), (900, "15 minutes"), (5400, "1 hour 30 minutes"), (144000, "40 hours")],
)
def test_durations_in_plain_words(seconds: float, words: str) -> None:
    assert describe_seconds(seconds) == words


# --- resolution -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("customer_tier", "value", "tier"),
    [
        ("strategic", 2_000_000, "platinum"),  # matches platinum and gold: the first rule wins
        ("strategic", 999_999, "gold"),
        ("key", 250_000, "gold"),
        ("key", 249_999, "silver"),
        ("standard", 5_000_000, "silver"),
        ("standard", 99_999, "bronze"),
        (None, None, "bronze"),
    ],
)
def test_tier_selection_by_rules(customer_tier: str | None, value: float | None, tier: str) -> None:
    data = base()
    for name in ("platinum", "silver"):
        data["tiers"][name] = copy.deepcopy(data["tiers"]["bronze"])
    data["tier_rules"] = [
        {"tier": "platinum", "when": {"customer_tier": "strategic", "min_value": 1_000_000}},
        {"tier": "gold", "when": {"customer_tier": ["strategic", "key"], "min_value": 250_000}},
        {"tier": "silver", "when": {"min_value": 100_000}},
        {"tier": "bronze"},
    ]
    contract = data["contracts"][0]
    contract.update(customer_tier=customer_tier, value=value)
    if value is None:
        del contract["currency"]
    assert only(data).versions[0].tier == tier


def test_rules_can_match_on_currency_and_a_value_ceiling() -> None:
    data = base()
    data["tier_rules"].insert(
        0, {"tier": "bronze", "when": {"currency": "USD", "max_value": 500_000}}
    )
    assert only(data).versions[0].tier == "gold"  # EUR: the USD rule does not apply
    data["contracts"][0]["currency"] = "USD"
    assert only(data).versions[0].tier == "bronze"
    data["contracts"][0]["value"] = 500_000  # the ceiling is exclusive
    assert only(data).versions[0].tier == "gold"


def test_a_named_tier_beats_the_rules() -> None:
    data = base()
    data["contracts"][0]["tier"] = "bronze"
    terms = only(data).versions[0]
    assert terms.tier == "bronze"
    assert terms.target("first_response", "P1").allowance_s == 7200


def test_tier_defaults_fill_every_target() -> None:
    terms = only(base()).versions[0]
    fr1 = terms.target("first_response", "P1")
    assert fr1 is not None
    assert (fr1.allowance_s, fr1.calendar, fr1.warning_thresholds) == (
        900,
        "24x7",
        (0.5, 0.75, 0.9),
    )
    assert (fr1.clause_id, fr1.clause_title) == ("4.1", "Response")
    assert terms.target("resolution", "P3").allowance_s == 16 * 3600
    assert terms.target("first_response", "P2") is None
    assert len(terms.targets) == 4


def test_overrides_win_over_tier_defaults() -> None:
    data = base()
    data["tiers"]["gold"]["warning_thresholds"] = [0.6, 0.8]
    data["contracts"][0]["overrides"] = {
        "first_response": {"P1": "10m"},
        "resolution": {
            "P1": {"allowance": "2h", "warning_thresholds": [0.25, 0.5], "pauses": False},
            "P2": {"allowance": "8h"},  # a target the tier does not have
        },
    }
    terms = only(data).versions[0]
    fr1 = terms.target("first_response", "P1")
    assert (fr1.allowance_s, fr1.calendar, fr1.warning_thresholds) == (600, "24x7", (0.6, 0.8))
    r1 = terms.target("resolution", "P1")
    assert (r1.allowance_s, r1.calendar, r1.warning_thresholds, r1.pauses) == (
        7200,
        "24x7",  # the tier target's calendar, kept: the override did not name one
        (0.25, 0.5),
        False,
    )
    r2 = terms.target("resolution", "P2")
    assert (r2.allowance_s, r2.calendar, r2.clause_id) == (28800, "office", "4.2")
    # untouched targets keep the tier's values
    assert terms.target("resolution", "P3").allowance_s == 16 * 3600


def test_per_target_calendars() -> None:
    data = base()
    data["calendars"]["weekend"] = {
        "timezone": "Europe/Berlin",
        "hours": {"sat": [["10:00", "14:00"]], "sun": [["10:00", "14:00"]]},
    }
    data["contracts"][0]["overrides"] = {"first_response": {"P3": {"calendar": "weekend"}}}
    terms = only(data).versions[0]
    calendars = {(t.metric, t.severity): t.calendar for t in terms.targets}
    assert calendars == {
        ("first_response", "P1"): "24x7",  # the tier target's own calendar
        ("first_response", "P3"): "weekend",  # the override's
        ("resolution", "P1"): "24x7",
        ("resolution", "P3"): "office",  # the contract's
    }
    assert sorted(terms.calendars) == ["24x7", "office", "weekend"]
    for target in terms.targets:
        BusinessCalendar.from_dict(terms.calendars[target.calendar])
    assert terms.calendars["office"]["holidays"] == ["2026-12-25"]


def test_calendar_falls_back_to_the_tier_then_24x7() -> None:
    data = base()
    del data["contracts"][0]["calendar"]
    assert only(data).versions[0].target("resolution", "P3").calendar == "office"  # gold's
    data["contracts"][0]["tier"] = "bronze"  # bronze names no calendar
    terms = only(data).versions[0]
    assert {t.calendar for t in terms.targets} == {"24x7"}
    assert terms.timezone == "UTC"
    assert terms.calendars == {"24x7": {"timezone": "UTC", "hours": "24x7"}}


def test_timezone_defaults_to_the_contracts_calendar() -> None:
    data = base()
    assert only(data).versions[0].timezone == "Europe/Berlin"
    data["contracts"][0]["timezone"] = "Europe/Brussels"
    assert only(data).versions[0].timezone == "Europe/Brussels"


def test_pausing_defaults() -> None:
    terms = only(base()).versions[0]
    assert terms.pause_statuses == DEFAULT_PAUSE_STATUSES
    assert not terms.target("first_response", "P1").pauses
    assert terms.target("resolution", "P1").pauses
    data = base()
    data["contracts"][0]["pause_statuses"] = "on_hold"
    data["tiers"]["gold"]["targets"]["first_response"]["P3"] = {"allowance": "4h", "pauses": True}
    terms = only(data).versions[0]
    assert terms.pause_statuses == ("on_hold",)
    assert terms.target("first_response", "P3").pauses


def test_a_specific_clause_beats_a_metric_wide_one() -> None:
    data = base()
    data["contracts"][0]["clauses"].append(
        {
            "id": "A1",
            "title": "Critical incidents",
            "text": "Priority 1 is answered in ten minutes.",
            "covers": [{"metric": "first_response", "severity": "P1"}],
        }
    )
    terms = only(data).versions[0]
    assert terms.target("first_response", "P1").clause_id == "A1"
    assert terms.target("first_response", "P3").clause_id == "4.1"
    assert terms.clauses["A1"] == {
        "title": "Critical incidents",
        "text": "Priority 1 is answered in ten minutes.",
    }


def test_version_supersession() -> None:
    data = base()
    v1 = data["contracts"][0]
    v1["effective_from"] = "2026-01-01"
    v2 = copy.deepcopy(v1)
    v2.update(version=2, effective_from="2026-07-01T00:00:00+02:00")
    v2["overrides"] = {"resolution": {"P1": "2h"}}
    data["contracts"] = [v2, v1]  # file order does not matter
    record = only(data)
    assert [v.version for v in record.versions] == [1, 2]
    before = datetime(2026, 6, 30, 21, 59, tzinfo=UTC)
    after = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # 2026-07-01 00:00 in Berlin
    assert record.for_incident_opened_at(before).version == 1
    assert record.for_incident_opened_at(after).version == 2
    assert record.for_incident_opened_at(after).target("resolution", "P1").allowance_s == 7200
    # an incident opened under version 1 keeps its terms: the record still carries them
    assert record.version(1).target("resolution", "P1").allowance_s == 4 * 3600
    assert record.for_incident_opened_at(datetime(2025, 12, 31, tzinfo=UTC)) is None


def test_resolved_records_round_trip_through_json() -> None:
    record = only(base())
    assert ContractRecord.model_validate_json(record.model_dump_json()) == record


def test_yaml_and_json_files_resolve_alike(tmp_path: Path) -> None:
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps(base()), encoding="utf-8")
    as_yaml = tmp_path / "c.yml"
    as_yaml.write_text(yaml.safe_dump(base()), encoding="utf-8")
    assert load_contracts(as_json) == load_contracts(as_yaml)


def test_unquoted_clock_times_in_yaml_stay_clock_times(tmp_path: Path) -> None:
    text = yaml.safe_dump(base()).replace("'17:00'", "17:00").replace("'09:00'", "09:00")
    assert "- 17:00" in text
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    terms = load_contracts(path)["c-1"].versions[0]
    assert terms.calendars["office"]["hours"]["mon"] == [["09:00", "17:00"]]


# --- the example portfolio ------------------------------------------------------------------


def test_the_example_file_validates() -> None:
    records = load_contracts(EXAMPLE)
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert {"platinum", "gold", "silver", "bronze", "demo"} <= set(raw["tiers"])
    assert len(records) == 7  # six customer contracts and the demo
    assert len({r.versions[0].customer_id for r in records.values()}) == 7
    assert len({r.versions[0].tier for r in records.values()}) == 5
    assert [v.version for v in records["nordwind-logistik-msa"].versions] == [1, 2]
    for record in records.values():
        for terms in record.versions:
            have = {(t.metric, t.severity) for t in terms.targets}
            # every response and resolution target; update cycles where the tier keeps them
            assert {(m, s) for m, s in have if m != "update"} == {
                (m, s) for m in METRICS if m != "update" for s in SEVERITIES
            }
            for target in terms.targets:  # every target names a clause the contract has
                assert terms.clauses[target.clause_id]["title"] == target.clause_title
                assert terms.clauses[target.clause_id]["text"]
                BusinessCalendar.from_dict(terms.calendars[target.calendar])
    # the amendment keeps the duty manager informed every 30 minutes while P1; update cycles
    # pause on the pause statuses by default, like resolution
    v2 = records["nordwind-logistik-msa"].version(2)
    assert v2 is not None
    update_p1 = v2.target("update", "P1")
    assert update_p1 is not None and update_p1.clause_id == "A1-2"
    assert (update_p1.allowance_s, update_p1.pauses) == (1800.0, True)
    assert records["tallgrass-coop-basic"].versions[0].target("update", "P1") is None


def test_the_example_calendars_have_public_holidays() -> None:
    terms = load_contracts(EXAMPLE)["nordwind-logistik-msa"].versions[0]
    berlin = BusinessCalendar.from_dict(terms.calendars["berlin-office"])
    # 2026-10-03, German Unity Day, is a Saturday; 2026-05-01 (Labour Day) is a Friday.
    start = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
    assert berlin.elapsed(start, datetime(2026, 5, 1, 15, 0, tzinfo=UTC)) == 0
    hudson = load_contracts(EXAMPLE)["hudson-health-ssa"].versions[0]
    new_york = BusinessCalendar.from_dict(hudson.calendars["new-york-office"])
    july_4th = datetime(2025, 7, 4, 13, 0, tzinfo=UTC)  # a Friday
    assert new_york.elapsed(july_4th, datetime(2025, 7, 4, 20, 0, tzinfo=UTC)) == 0
    # Date exceptions: Saturday 5 Dec 2026 opens 09-13 (+01), Wed 23 Dec closes at 12:00.
    saturday = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
    assert berlin.elapsed(saturday, saturday + timedelta(days=1)) == 4 * 3600
    wednesday = datetime(2026, 12, 23, 0, 0, tzinfo=UTC)
    assert berlin.elapsed(wednesday, wednesday + timedelta(days=1)) == 4 * 3600


def test_the_demo_contract_counts_seconds_around_the_clock() -> None:
    record = load_contracts(EXAMPLE)["demo"]
    terms = record.for_incident_opened_at(datetime(2026, 3, 1, tzinfo=UTC))
    assert terms is not None and terms.customer_id == "demo-co"
    assert terms.target("first_response", "P1").allowance_s == 30
    assert terms.target("resolution", "P1").allowance_s == 90
    assert all(t.calendar == "24x7" and t.allowance_s <= 300 for t in terms.targets)


def test_the_example_amendment_supersedes_version_one_from_july_2026() -> None:
    record = load_contracts(EXAMPLE)["nordwind-logistik-msa"]
    june = record.for_incident_opened_at(datetime(2026, 6, 15, tzinfo=UTC))
    july = record.for_incident_opened_at(datetime(2026, 7, 15, tzinfo=UTC))
    assert (june.version, june.target("resolution", "P1").allowance_s) == (1, 4 * 3600)
    assert (july.version, july.target("resolution", "P1").allowance_s) == (2, 2 * 3600)
    assert july.target("resolution", "P1").clause_id == "A1-2"


# --- the command line, on files only --------------------------------------------------------


def test_cli_validate_summarises_a_valid_file() -> None:
    result = CliRunner().invoke(contracts, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "valid: 7 contracts, 8 versions, 75 targets" in result.output
    assert "nordwind-logistik-msa: customer nordwind-logistik, tier platinum, 2 versions" in (
        result.output
    )


def test_cli_validate_names_file_path_and_value(tmp_path: Path) -> None:
    data = base()
    data["tiers"]["gold"]["targets"]["first_response"]["P3"] = "4 hrs"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = CliRunner().invoke(contracts, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:tiers.gold.targets.first_response.P3.allowance: expected a duration" in (
        result.output
    )
    assert "(got '4 hrs')" in result.output


def test_cli_show_prints_the_effective_terms_as_a_table() -> None:
    result = CliRunner().invoke(
        contracts,
        ["show", "nordwind-logistik-msa", "--file", str(EXAMPLE), "--version", "2"],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("nordwind-logistik-msa version 2: customer nordwind-logistik")
    header = next(i for i, line in enumerate(lines) if line.startswith("metric"))
    assert lines[header].split() == [
        "metric",
        "severity",
        "allowance",
        "calendar",
        "warn",
        "at",
        "pauses",
        "clause",
    ]
    rows = lines[header + 2 : header + 12]
    assert lines[header + 12] == ""  # then the service levels and the credit clause
    assert lines[header + 13].split()[:3] == ["service", "level", "commitment"]
    assert "95 % of P1/P2 first responses within target each month" in lines[header + 16]
    assert lines[-1].startswith("service credit (A1-6 Service Credits (Amendment 1)): ")
    assert len(rows) == 10
    assert rows[0].split() == [
        "first_response",
        "P1",
        "10",
        "minutes",
        "24x7",
        "50%",
        "75%",
        "90%",
        "no",
        "A1-2",
        "Critical",
        "Incidents",
        "(Amendment",
        "1)",
    ]
    assert rows[6].split()[:6] == ["resolution", "P3", "16", "hours", "berlin-office", "50%"]
    assert rows[8].split()[:7] == ["update", "P1", "30", "minutes", "24x7", "50%", "yes"]


def test_cli_show_an_unknown_contract_or_version() -> None:
    unknown = CliRunner().invoke(contracts, ["show", "nope", "--file", str(EXAMPLE)])
    assert unknown.exit_code == 1 and "no contract 'nope'" in unknown.output
    version = CliRunner().invoke(
        contracts, ["show", "demo", "--file", str(EXAMPLE), "--version", "3"]
    )
    assert version.exit_code == 1 and "demo has no version 3 (has 1)" in version.output


# --- published versions are immutable --------------------------------------------------------


def _edited(edit: Any) -> dict[str, ContractRecord]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    edit(data)
    return parse_contracts(data, file="edited.yaml")


def _nordwind(data: dict[str, Any], index: int) -> dict[str, Any]:
    return [c for c in data["contracts"] if c["contract_id"] == "nordwind-logistik-msa"][index]


PUBLISHED_CASES = [
    ("the same file", lambda d: None, []),
    (
        "a new contract",
        lambda d: d["contracts"].append(
            {**copy.deepcopy(d["contracts"][-1]), "contract_id": "new-co", "customer_id": "new-co"}
        ),
        [],
    ),
    (
        "a third version",
        lambda d: d["contracts"].append(
            {**copy.deepcopy(_nordwind(d, 1)), "version": 3, "effective_from": "2027-01-01"}
        ),
        [],
    ),
    (
        "a published version's tier changed",
        lambda d: _nordwind(d, 0).update(tier="silver"),
        [
            "nordwind-logistik-msa version 1 is already published and would change (tier, "
            "targets, service_levels)"  # platinum's service level is no longer inherited
        ],
    ),
    (
        "a published version dropped",
        lambda d: d["contracts"].remove(_nordwind(d, 1)),
        ["nordwind-logistik-msa version 2 is published and missing from the file"],
    ),
]


@pytest.mark.parametrize(
    ("edit", "starts"), [pytest.param(*c[1:], id=c[0]) for c in PUBLISHED_CASES]
)
def test_a_published_version_cannot_change(edit: Any, starts: list[str]) -> None:
    published = load_contracts(EXAMPLE)
    problems = published_conflicts(published, _edited(edit))
    assert [p[: len(s)] for p, s in zip(problems, starts, strict=False)] == starts
    assert len(problems) == len(starts)
    if starts and "change" in starts[0]:
        assert problems[0].endswith("publish the new terms as version 3 with a later "
                                    "effective_from instead")  # fmt: skip
