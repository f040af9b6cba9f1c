"""SLA scenarios as data (`tests/scenarios/*.yaml`): load one, and compare effects with it.

Two drivers run the same files: the offline replay (`tests/unit/test_scenarios.py`) and a real
worker on the embedded broker. The format is described in `tests/scenarios/README.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from sla_stream.core.contracts import load_contracts, parse_contracts
from sla_stream.core.models import Alert, IncidentEvent, Outcome
from sla_stream.core.terms import ContractRecord

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
TOLERANCE_S = 1e-6


@dataclass(frozen=True)
class ContractArrives:
    """A step: contract `contract_id` becomes known at `at` (before it, it is unknown), or with
    `from_version`, its versions from that one on are published at `at` (before it, the record
    holds only the earlier ones)."""

    contract_id: str
    at: datetime | None
    from_version: int | None = None


Step = IncidentEvent | ContractArrives


@dataclass
class Scenario:
    name: str
    path: Path
    contracts: dict[str, ContractRecord]  # every contract, including the withheld ones
    withheld: frozenset[str]  # unknown until their `contract_arrives` step
    steps: list[Step]
    until: datetime
    alerts: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]
    ignored: dict[str, int] = field(default_factory=dict)
    parked: int | None = None
    explain: list[dict[str, Any]] = field(default_factory=list)  # clocks explained at `until`

    def known_contracts(self) -> dict[str, ContractRecord]:
        known = {k: v for k, v in self.contracts.items() if k not in self.withheld}
        for step in self.steps:
            if isinstance(step, ContractArrives) and step.from_version is not None:
                record = known[step.contract_id]
                earlier = tuple(v for v in record.versions if v.version < step.from_version)
                known[step.contract_id] = record.model_copy(update={"versions": earlier})
        return known

    def events(self) -> list[IncidentEvent]:
        return [s for s in self.steps if isinstance(s, IncidentEvent)]


def scenario_paths() -> list[Path]:
    return sorted(p for p in SCENARIOS.glob("*.yaml") if p.name != "contracts.yaml")


def load_scenario(path: Path) -> Scenario:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "contracts" in data:
        contracts = parse_contracts(data["contracts"], file=str(path))
    else:
        contracts = load_contracts(path.parent / data["contracts_file"])
    defaults = data.get("defaults", {})
    steps: list[Step] = []
    counters: dict[str, int] = {}
    for raw in data["steps"]:
        if "contract_arrives" in raw:
            at = _instant(raw["at"]) if "at" in raw else None
            steps.append(ContractArrives(raw["contract_arrives"], at, raw.get("from_version")))
            continue
        steps.append(_event(raw, defaults, counters))
    withheld = frozenset(
        s.contract_id for s in steps if isinstance(s, ContractArrives) and s.from_version is None
    )
    expect = data.get("expect", {})
    return Scenario(
        name=data.get("name", path.stem),
        path=path,
        contracts=contracts,
        withheld=withheld,
        steps=steps,
        until=_instant(data["until"]),
        alerts=list(expect.get("alerts", [])),
        outcomes=list(expect.get("outcomes", [])),
        ignored=dict(expect.get("ignored", {})),
        parked=expect.get("parked"),
        explain=list(expect.get("explain", [])),
    )


def _event(
    raw: dict[str, Any], defaults: dict[str, Any], counters: dict[str, int]
) -> IncidentEvent:
    fields = dict(raw)
    if "at" in fields:
        fields["occurred_at"] = fields.pop("at")
    fields.setdefault("incident_id", defaults.get("incident_id", "INC-1"))
    if fields.get("type") == "opened":
        fields.setdefault("contract_id", defaults.get("contract_id"))
    incident = fields["incident_id"]
    counters[incident] = counters.get(incident, 0) + 1
    fields.setdefault("event_id", f"{incident}-e{counters[incident]}")
    if isinstance(fields["occurred_at"], datetime):
        fields["occurred_at"] = fields["occurred_at"].isoformat()
    return IncidentEvent.model_validate(fields)


def _instant(value: object) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if at.tzinfo is None:
        raise ValueError(f"scenario instant {value!r} needs an offset")
    return at


def compare(
    kind: str, actual: list[Alert] | list[Outcome], expected: list[dict[str, Any]]
) -> list[str]:
    """Differences between effects and expectations, as readable lines (empty: they agree).

    Effects are compared per incident, in order (interleaving across incidents is free); only
    the fields an expectation names are compared. `retracts` / `withdraws` hold the index (from
    0) of the expected entry they name.
    """
    problems: list[str] = []
    matched: dict[int, Any] = {}
    by_incident: dict[str, list[int]] = {}
    for index, exp in enumerate(expected):
        by_incident.setdefault(exp.get("incident_id", "INC-1"), []).append(index)
    got: dict[str, list[Any]] = {}
    for item in actual:
        got.setdefault(item.incident_id, []).append(item)
    for incident in sorted(set(by_incident) | set(got)):
        want, have = by_incident.get(incident, []), got.get(incident, [])
        if len(want) != len(have):
            problems.append(
                f"{incident}: {len(have)} {kind} instead of {len(want)}:\n    "
                + "\n    ".join(_brief(h) for h in have)
            )
        for index, item in zip(want, have, strict=False):
            matched[index] = item
    for index, item in sorted(matched.items()):
        for key, value in expected[index].items():
            problem = _field_problem(key, value, item, matched)
            if problem:
                problems.append(f"{kind}[{index}] ({_brief(item)}): {problem}")
    return problems


def _field_problem(key: str, want: Any, item: Any, matched: dict[int, Any]) -> str | None:
    have = getattr(item, key)
    if key in ("retracts", "withdraws") and isinstance(want, int):
        target = matched.get(want)
        ref = getattr(target, "alert_id", None) or getattr(target, "outcome_id", None)
        return None if have is not None and have == ref else f"{key} should name entry {want}"
    if isinstance(have, datetime) or (have is None and isinstance(want, str | datetime)):
        want_at = None if want is None else _instant(want)
        return None if have == want_at else f"{key} {_iso(have)} != {_iso(want_at)}"
    if isinstance(have, float) and isinstance(want, int | float):
        return None if abs(have - want) <= TOLERANCE_S else f"{key} {have} != {want}"
    return None if have == want else f"{key} {have!r} != {want!r}"


def _iso(at: datetime | None) -> str:
    return "null" if at is None else at.isoformat()


def _brief(item: Any) -> str:
    if isinstance(item, Alert):
        return (
            f"{item.kind} {item.metric} t={item.threshold} elapsed={item.elapsed_s} "
            f"at={item.emitted_at.isoformat()}"
        )
    return (
        f"{item.metric} met={item.met} elapsed={item.elapsed_s} settled={item.settled_at} "
        f"withdraws={'yes' if item.withdraws else 'no'}"
    )
