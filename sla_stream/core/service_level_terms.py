"""Service levels and the service credit of a contracts file resolved into terms.

A tier's `service_levels` apply to every contract of the tier; a contract's are added, and one
with the id of a tier's replaces it. Each names a clause of the contract (`clause`), or takes the
clause of the targets it measures when they all cite one. A contract's `service_credit` replaces
the tier's; its fee is the `monthly_fee` given, else the contract's `value` (a year's fee) / 12.
The judging is in `service_levels.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from sla_stream.core.contract_file import ClauseSpec, ContractSpec, ServiceLevelSpec, TierSpec
from sla_stream.core.errors import InvalidContract
from sla_stream.core.models import SEVERITIES
from sla_stream.core.terms import CreditStep, ServiceCredit, ServiceLevel, Target

# (message, path, value) -> the error to raise, naming the file
Fail = Callable[..., InvalidContract]


def clause_named(c: ContractSpec, clause_id: str, path: str, fail: Fail) -> ClauseSpec:
    for clause in c.clauses:
        if clause.id == clause_id:
            return clause
    known = ", ".join(k.id for k in c.clauses)
    raise fail(f"names no clause of the contract (its clauses: {known})", path, clause_id)


def service_levels_of(
    tier: TierSpec,
    tier_name: str,
    c: ContractSpec,
    index: int,
    targets: tuple[Target, ...],
    fail: Fail,
) -> tuple[ServiceLevel, ...]:
    """The tier's service levels with the contract's; each must measure a target it has."""
    chosen: dict[str, tuple[ServiceLevelSpec, str]] = {}
    for j, spec in enumerate(tier.service_levels):
        chosen[spec.id] = (spec, f"tiers.{tier_name}.service_levels[{j}]")
    seen: set[str] = set()
    for j, spec in enumerate(c.service_levels):
        path = f"contracts[{index}].service_levels[{j}]"
        if spec.id in seen:
            raise fail("duplicate service level id", f"{path}.id", spec.id)
        seen.add(spec.id)
        chosen[spec.id] = (spec, path)
    return tuple(_level(spec, path, c, targets, fail) for spec, path in chosen.values())


def _level(
    spec: ServiceLevelSpec, path: str, c: ContractSpec, targets: tuple[Target, ...], fail: Fail
) -> ServiceLevel:
    severities = spec.severity or ()
    measured = [
        t for t in targets if t.metric == spec.metric and t.severity in (severities or SEVERITIES)
    ]
    if not measured:
        raise fail(
            "the contract has no target this service level could measure",
            f"{path}.metric",
            spec.metric,
        )
    cited = sorted({t.clause_id for t in measured})
    if spec.clause is None and len(cited) > 1:
        raise fail(
            f"name its clause: the targets it measures cite {', '.join(cited)}", f"{path}.clause"
        )
    clause = clause_named(c, spec.clause or cited[0], f"{path}.clause", fail)
    return ServiceLevel(
        id=spec.id,
        metric=spec.metric,
        severities=tuple(sorted(set(severities), key=SEVERITIES.index)),
        objective_percent=spec.objective,
        period=spec.period,
        clause_id=clause.id,
        clause_title=clause.title,
    )


def service_credit_of(
    tier: TierSpec, tier_name: str, c: ContractSpec, index: int, fail: Fail
) -> ServiceCredit | None:
    spec = c.service_credit
    path = f"contracts[{index}].service_credit"
    if spec is None:
        spec, path = tier.service_credit, f"tiers.{tier_name}.service_credit"
    if spec is None:
        return None
    clause = clause_named(c, spec.clause, f"{path}.clause", fail)
    if spec.monthly_fee is not None:
        monthly_fee = spec.monthly_fee
    elif c.value is not None:
        monthly_fee = c.value / 12
    else:
        raise fail(
            "a service credit needs the contract's value (a year's fee) or a monthly_fee",
            f"{path}.monthly_fee",
        )
    return ServiceCredit(
        clause_id=clause.id,
        clause_title=clause.title,
        percent_per_miss=spec.percent_per_miss,
        steps=tuple(CreditStep(misses=s.misses, percent=s.percent) for s in spec.steps or ()),
        cap_percent=spec.cap,
        monthly_fee=monthly_fee,
    )
