"""Events carry who acted: model, HTTP ingest, ServiceNow importer (system users left out)."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from sla_stream.core.models import IncidentEvent
from sla_stream.importers.servicenow import convert
from sla_stream.importers.servicenow_mapping import MappingError, load_mapping, parse_mapping
from sla_stream.web.ingest import check_items

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / "examples" / "servicenow" / "data" / "incident_event_log.csv.gz"
EXAMPLE_MAPPING = REPO / "examples" / "servicenow" / "mapping.yaml"


def opened(**more: object) -> dict:
    return {
        "event_id": "e1",
        "incident_id": "INC-1",
        "type": "opened",
        "occurred_at": "2026-03-02T09:00:00+00:00",
        "contract_id": "c",
        "severity": "P3",
        **more,
    }


def test_an_event_may_name_its_actor_and_round_trips() -> None:
    event = IncidentEvent.model_validate(opened(actor="agent-7"))
    assert event.actor == "agent-7"
    assert IncidentEvent.from_json(event.to_json()) == event
    assert b"actor" not in IncidentEvent.model_validate(opened()).to_json()


def test_an_empty_actor_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        IncidentEvent.model_validate(opened(actor=""))
    assert err.value.errors()[0]["loc"] == ("actor",)


def test_http_ingest_accepts_and_publishes_the_actor() -> None:
    batch = check_items(orjson.dumps([opened(actor="agent-7"), opened(actor="")]), 65536)
    assert [r["accepted"] for r in batch.results] == [True, False]
    assert batch.results[1]["field"] == "actor"
    assert orjson.loads(batch.records[0].value)["actor"] == "agent-7"


def log_head(lines: int) -> io.StringIO:
    with gzip.open(LOG, "rt", encoding="utf-8", newline="") as f:
        return io.StringIO("".join(next(f) for _ in range(lines)), newline="")


def test_the_importer_takes_the_actor_from_sys_updated_by_except_system_users() -> None:
    source = log_head(200)
    updaters = {
        (r["number"], r["sys_mod_count"]): r["sys_updated_by"]
        for r in csv.DictReader(log_head(200))
    }
    events = list(convert(source, load_mapping(EXAMPLE_MAPPING)))
    assert events
    system = [
        e
        for e in events
        if updaters[(e.incident_id, str(e.attributes["sys_mod_count"]))] == "Updated by 908"
    ]
    assert system and all(e.actor is None for e in system)
    people = [e for e in events if e not in system]
    assert people
    for e in people:
        assert e.actor == updaters[(e.incident_id, str(e.attributes["sys_mod_count"]))]


def test_without_system_users_every_updater_is_an_actor() -> None:
    mapping = parse_mapping({"timezone": "America/Sao_Paulo", "default_contract": "d"})
    events = list(convert(log_head(200), mapping))
    assert all(e.actor is not None and e.actor.startswith("Updated by ") for e in events)


def test_system_users_must_be_a_list_of_names() -> None:
    with pytest.raises(MappingError) as err:
        parse_mapping(
            {"timezone": "America/Sao_Paulo", "default_contract": "d", "system_users": 908}
        )
    assert "system_users" in str(err.value)
