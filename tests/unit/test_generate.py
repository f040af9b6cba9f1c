"""The synthetic stream: deterministic for a seed, realistic in shape, valid for the engine."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from sla_stream.cli import main
from sla_stream.core.contracts import load_contracts
from sla_stream.generate import DEFAULT_START, iter_events, iter_timed_events

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "contracts.yaml"
EXAMPLE_CONTRACTS = load_contracts(EXAMPLES)


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    one = [e.to_json() for e in iter_events(200, 5, contracts=EXAMPLE_CONTRACTS)]
    two = [e.to_json() for e in iter_events(200, 5, contracts=EXAMPLE_CONTRACTS)]
    other = [e.to_json() for e in iter_events(200, 6, contracts=EXAMPLE_CONTRACTS)]
    assert one == two
    assert one != other


def test_stream_has_the_shape_of_real_life() -> None:
    timed = list(iter_timed_events(3000, 1, contracts=EXAMPLE_CONTRACTS))
    events = [e for _, e in timed]
    kinds = Counter(e.type for e in events)
    opened = [e for e in events if e.type == "opened"]
    assert len({e.incident_id for e in opened}) == 3000
    assert kinds["responded"] > 2800 and kinds["resolved"] > 2800
    for kind in ("status_changed", "severity_changed", "reopened", "cancelled", "closed"):
        assert kinds[kind] > 20, kind
    severities = Counter(e.severity for e in opened)
    assert severities["P3"] > severities["P2"] > severities["P1"] > 0
    ids = Counter(e.event_id for e in events)
    assert 0 < sum(n - 1 for n in ids.values()) < len(events) * 0.02  # a few duplicates
    arrivals = [a for a, _ in timed]
    assert arrivals == sorted(arrivals)  # yielded in arrival order
    late = sum(1 for a, e in timed if e.occurred_at < a)
    assert 0 < late < len(events) * 0.02  # a few out of order
    assert min(e.occurred_at for e in events) >= DEFAULT_START
    assert {e.contract_id for e in opened} <= set(EXAMPLE_CONTRACTS) - {"demo"}
    for e in opened:  # every incident opens under a version in force
        assert EXAMPLE_CONTRACTS[e.contract_id].for_incident_opened_at(e.occurred_at) is not None


def test_p1_and_p2_customers_are_updated_between_response_and_resolution() -> None:
    events = list(iter_events(2000, 2, contracts=EXAMPLE_CONTRACTS))
    by_incident: dict[str, list] = {}
    for e in events:
        by_incident.setdefault(e.incident_id, []).append(e)
    updated = 0
    for evs in by_incident.values():
        severity = next(e.severity for e in evs if e.type == "opened")
        updates = [e.occurred_at for e in evs if e.type == "updated"]
        if severity in ("P3", "P4"):
            assert not updates
            continue
        updated += bool(updates)
        if updates:
            responded = min(e.occurred_at for e in evs if e.type == "responded")
            resolved = min(e.occurred_at for e in evs if e.type == "resolved")
            assert responded < min(updates) and max(updates) <= resolved
    assert updated > 100  # most of the ~300 P1/P2 incidents stay open longer than an update gap


def test_rate_sets_the_arrival_rate() -> None:
    opened = [e for e in iter_events(2000, 3, rate_per_hour=20.0) if e.type == "opened"]
    hours = (opened[-1].occurred_at - opened[0].occurred_at).total_seconds() / 3600
    assert 80 < hours < 120  # 2000 arrivals at 20 an hour: about 100 hours


def test_demo_profile_uses_the_demo_contract_and_windows_of_seconds() -> None:
    events = list(iter_events(50, 1, demo=True))
    assert {e.contract_id for e in events if e.type == "opened"} == {"demo"}
    by_incident: dict[str, list] = {}
    for e in events:
        by_incident.setdefault(e.incident_id, []).append(e.occurred_at)
    spans = sorted((max(v) - min(v)).total_seconds() for v in by_incident.values())
    assert spans[len(spans) // 2] < 15 * 60


def test_generate_command_writes_json_lines() -> None:
    result = CliRunner().invoke(main, ["generate", "--incidents", "5", "--seed", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) >= 10 and all(line.startswith('{"event_id"') for line in lines)
    again = CliRunner().invoke(main, ["generate", "--incidents", "5", "--seed", "2"])
    assert again.output == result.output
    naive = CliRunner().invoke(main, ["generate", "--incidents", "1", "--start", "2026-01-01"])
    assert naive.exit_code != 0 and "offset" in naive.output
