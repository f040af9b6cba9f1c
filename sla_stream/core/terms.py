"""Resolved contract terms: what the engine needs, and what travels on `sla.contracts`.

A contracts file (see `contracts.py`) is resolved into one `ContractRecord` per contract id,
holding every version of that contract. The record is the value of the compacted contracts
topic, so compaction by contract id never loses a version a running incident was pinned to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sla_stream.core.calendar import BusinessCalendar, calendar_for
from sla_stream.core.models import Metric, Severity

DEFAULT_WARNING_THRESHOLDS: tuple[float, ...] = (0.5, 0.75, 0.9)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Frozen):
    """One effective commitment: a metric at a severity, under a clause."""

    metric: Metric
    severity: Severity
    allowance_s: float = Field(gt=0)
    calendar: str
    warning_thresholds: tuple[float, ...] = DEFAULT_WARNING_THRESHOLDS
    clause_id: str
    clause_title: str
    pauses: bool = Field(
        default=False,
        description="whether the contract's pause statuses stop this clock from accruing",
    )


class ServiceLevel(_Frozen):
    """An aggregate target: `objective_percent` of a metric's clocks (at `severities`, or every
    severity when empty) settled within their allowance in each period of the contract's zone."""

    id: str
    metric: Metric
    severities: tuple[Severity, ...] = ()
    objective_percent: float = Field(gt=0, le=100)
    period: Literal["month", "quarter"] = "month"
    clause_id: str
    clause_title: str

    def covers(self, metric: str, severity: str) -> bool:
        return metric == self.metric and (not self.severities or severity in self.severities)


class CreditStep(_Frozen):
    misses: int = Field(ge=1)
    percent: float = Field(gt=0, le=100)


class ServiceCredit(_Frozen):
    """What missed service levels cost, in percent of the period's fee (see service_levels)."""

    clause_id: str
    clause_title: str
    percent_per_miss: float | None = None
    steps: tuple[CreditStep, ...] = ()
    cap_percent: float | None = None
    monthly_fee: float = Field(gt=0, description="the file's, else the contract's value / 12")


class ContractTerms(_Frozen):
    """One version of one contract, fully resolved (tier defaults, overrides, calendars)."""

    contract_id: str
    version: int = 1
    customer_id: str
    customer_tier: str | None = None
    tier: str
    value: float | None = None
    currency: str | None = None
    timezone: str = Field(description="zone in which periods (hour, day, quarter) are taken")
    effective_from: AwareDatetime | None = None
    effective_to: AwareDatetime | None = None
    pause_statuses: tuple[str, ...] = ()
    at_risk_level: float | None = Field(
        default=None, gt=0, lt=1, description="forecast probability that raises `at_risk`"
    )
    calendars: dict[str, dict[str, Any]] = Field(
        description="calendar blocks by name, each accepted by BusinessCalendar.from_dict"
    )
    targets: tuple[Target, ...]
    clauses: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="clause id -> {title, text}"
    )
    service_levels: tuple[ServiceLevel, ...] = ()
    service_credit: ServiceCredit | None = None

    def target(self, metric: str, severity: str) -> Target | None:
        """The target for `metric` at `severity` (the first one listed), indexed once per
        terms object: the engine asks several times per event."""
        hit = _TARGETS.get(id(self))
        if hit is None or hit[0] is not self:  # the id of a terms object no longer cached
            index: dict[tuple[str, str], Target] = {}
            for t in self.targets:
                index.setdefault((t.metric, t.severity), t)
            if len(_TARGETS) >= _MAX_INDEXED:
                _TARGETS.clear()
            hit = _TARGETS[id(self)] = (self, index)
        return hit[1].get((metric, severity))

    def calendar_block(self, name: str) -> dict[str, Any] | str:
        """The calendar block a target names; a name with no block ("24x7") stands for itself."""
        return self.calendars.get(name, name)

    def calendar_of(self, target: Target) -> BusinessCalendar:
        """The business calendar `target` counts on, memoised per contract version."""
        return _calendar(self, target.calendar)

    def in_force_at(self, instant: datetime) -> bool:
        if self.effective_from is not None and instant < self.effective_from:
            return False
        return not (self.effective_to is not None and instant >= self.effective_to)


class ContractRecord(_Frozen):
    """Every version of one contract: the value of `sla.contracts`, keyed by contract id."""

    contract_id: str
    versions: tuple[ContractTerms, ...]

    def version(self, number: int) -> ContractTerms | None:
        for v in self.versions:
            if v.version == number:
                return v
        return None

    def pinned(self, version: int | None, opened_at: datetime) -> ContractTerms | None:
        """An incident's terms: its pinned `version`, or before it is pinned the version in
        force at its opening instant; None when the record has no such version."""
        return self.for_incident_opened_at(opened_at) if version is None else self.version(version)

    def for_incident_opened_at(self, instant: datetime) -> ContractTerms | None:
        """The highest version in force at `instant`: the terms an incident opened then keeps."""
        best: ContractTerms | None = None
        for v in self.versions:
            if v.in_force_at(instant) and (best is None or v.version > best.version):
                best = v
        return best


# id -> (terms, targets by (metric, severity)); holding the terms keeps their id from reuse.
_TARGETS: dict[int, tuple[ContractTerms, dict[tuple[str, str], Target]]] = {}
_MAX_INDEXED = 4096  # contract versions indexed at once; a worker sees a few hundred

_CALENDARS: dict[tuple[str, int, str], tuple[object, BusinessCalendar]] = {}


def _calendar(terms: ContractTerms, name: str) -> BusinessCalendar:
    block = terms.calendar_block(name)
    key = (terms.contract_id, terms.version, name)
    hit = _CALENDARS.get(key)
    # The same id and version can come with other blocks (a file re-applied after an edit).
    if hit is not None and (hit[0] is block or hit[0] == block):
        return hit[1]
    cal = calendar_for(block)
    _CALENDARS[key] = (block, cal)
    return cal
