"""Wire models: what an event must carry, and how a refusal names the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sla_stream.core.models import Alert, DeadLetter, IncidentEvent

OPENED = {
    "event_id": "e1",
    "incident_id": "INC1",
    "type": "opened",
    "occurred_at": "2026-03-02T09:00:00+01:00",
    "contract_id": "acme",
    "severity": "P1",
}


def refusal(data: dict) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        IncidentEvent.model_validate(data)
    return info.value


def test_valid_opened_event_round_trips_through_json() -> None:
    event = IncidentEvent.model_validate(OPENED)
    assert event.occurred_at.utcoffset() is not None
    assert IncidentEvent.from_json(event.to_json()) == event


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"occurred_at": "2026-03-02T09:00:00"}, "occurred_at", "timezone"),
        ({"occurred_at": 1767258000}, "occurred_at", "RFC 3339"),
        ({"type": "escalated"}, "type", "opened"),
        ({"severity": "P5"}, "severity", "P1"),
        ({"event_id": ""}, "event_id", "at least 1"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_invalid_field_is_named(change: dict, field: str, words: str) -> None:
    error = refusal({**OPENED, **change})
    locations = [e["loc"] for e in error.errors()]
    assert any(field in loc for loc in locations), locations
    assert words in str(error)


@pytest.mark.parametrize("missing", ["contract_id", "severity"])
def test_opened_without_required_field_is_refused_naming_it(missing: str) -> None:
    data = {k: v for k, v in OPENED.items() if k != missing}
    error = refusal(data)
    assert f"{missing} is required on an 'opened' event" in str(error)


def test_status_changed_needs_status_and_severity_changed_needs_severity() -> None:
    base = {"event_id": "e2", "incident_id": "INC1", "occurred_at": "2026-03-02T10:00:00Z"}
    assert "status is required" in str(refusal({**base, "type": "status_changed"}))
    assert "severity is required" in str(refusal({**base, "type": "severity_changed"}))
    ok = IncidentEvent.model_validate({**base, "type": "responded"})
    assert ok.contract_id is None


def test_missing_required_identifiers_are_named() -> None:
    error = refusal({"type": "responded", "occurred_at": "2026-03-02T10:00:00Z"})
    assert {e["loc"][0] for e in error.errors()} == {"event_id", "incident_id"}


def test_models_are_frozen() -> None:
    event = IncidentEvent.model_validate(OPENED)
    with pytest.raises(ValidationError):
        event.severity = "P2"  # type: ignore[misc]


def test_dead_letter_keeps_original_bytes_even_when_not_utf8() -> None:
    raw = b"\xff\xfenot json"
    dl = DeadLetter.of(raw, topic="sla.incident-events", reason="not_json", partition=2, offset=7)
    assert dl.original() == raw
    assert dl.original_text is None
    again = DeadLetter.from_json(dl.to_json())
    assert again.original() == raw and again.reason == "not_json" and again.offset == 7


def test_alert_serialises_instants_with_offset() -> None:
    alert = Alert(
        alert_id="a1",
        kind="breach",
        incident_id="INC1",
        contract_id="acme",
        customer_id="cust",
        metric="resolution",
        severity="P1",
        threshold=1.0,
        allowance_s=14400,
        elapsed_s=14400,
        deadline="2026-03-02T13:00:00+00:00",
        clause_id="4.2",
        clause_title="Resolution",
        emitted_at="2026-03-02T13:00:00+00:00",
    )
    assert b'"deadline":"2026-03-02T13:00:00Z"' in alert.to_json()
