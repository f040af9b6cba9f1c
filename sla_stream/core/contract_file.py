"""The contracts file as written by hand: pydantic models of its shape, before any resolution.

Cross-references (tier and calendar names, clause coverage, versions) are checked in
`contracts.py`; this module only checks what each value looks like on its own.
"""

from __future__ import annotations

from datetime import date, datetime
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sla_stream.core.durations import parse_duration_seconds
from sla_stream.core.errors import InvalidContract
from sla_stream.core.models import Metric, Severity


def _duration(value: object) -> float:
    try:
        return parse_duration_seconds(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None


def _thresholds(value: tuple[float, ...]) -> tuple[float, ...]:
    if any(not 0 < t < 1 for t in value):
        raise PydanticCustomError(
            "thresholds", "warning thresholds must each lie strictly between 0 and 1"
        )
    if any(a >= b for a, b in pairwise(value)):
        raise PydanticCustomError(
            "thresholds", "warning thresholds must be in increasing order, without repeats"
        )
    return value


def _instant_or_date(value: object) -> date | datetime | None:
    """An aware instant, or a date meaning midnight in the contract's time zone."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = (
                datetime.fromisoformat(value.strip())
                if "T" in value
                else date.fromisoformat(value.strip())
            )
        except ValueError:
            raise PydanticCustomError(
                "instant", "expected a date (2026-07-01) or an instant with an offset"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError(
                "instant", "an instant needs an offset (2026-07-01T00:00:00+02:00) or use a date"
            )
        return value
    if isinstance(value, date):
        return value
    raise PydanticCustomError("instant", "expected a date or an instant with an offset")


def _percent(value: object) -> float:
    """95, 99.5, "95%" or "95 %": a percentage in (0, 100]."""
    number = value
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            number = float(text)
        except ValueError:
            raise PydanticCustomError(
                "percent", "expected a percentage such as 95 or 95%"
            ) from None
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise PydanticCustomError("percent", "expected a percentage such as 95 or 95%")
    if not 0 < number <= 100:
        raise PydanticCustomError("percent", "a percentage must lie in (0, 100]")
    return float(number)


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _allowance_shorthand(value: object) -> object:
    # `P1: 15m` is short for `P1: {allowance: 15m}`.
    return {"allowance": value} if isinstance(value, str) else value


Duration = Annotated[float, PlainValidator(_duration)]
Thresholds = Annotated[tuple[float, ...], AfterValidator(_thresholds)]
EffectiveDate = Annotated[date | datetime | None, PlainValidator(_instant_or_date)]
Name = Annotated[str, Field(min_length=1, max_length=128)]
Names = Annotated[tuple[Name, ...], BeforeValidator(_one_or_many)]
Severities = Annotated[tuple[Severity, ...], BeforeValidator(_one_or_many)]
Percent = Annotated[float, PlainValidator(_percent)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetSpec(_Spec):
    """One metric at one severity, in a tier or as a contract override; unset means inherit."""

    allowance: Duration | None = None
    calendar: Name | None = None
    warning_thresholds: Thresholds | None = None
    pauses: bool | None = None


TargetTable = dict[
    Metric, dict[Severity, Annotated[TargetSpec, BeforeValidator(_allowance_shorthand)]]
]


class ServiceLevelSpec(_Spec):
    """An aggregate target: `objective` % of a metric's clocks (at `severity`, or every
    severity) settled within their allowance each `period`, under the contract's `clause`
    (default: the clause of the targets it measures, when they share one)."""

    id: Name
    metric: Metric
    severity: Severities | None = None
    objective: Percent
    period: Literal["month", "quarter"] = "month"
    clause: Name | None = None


class CreditStep(_Spec):
    """From `misses` missed targets in a period on, `percent` of the period's fee."""

    misses: int = Field(ge=1)
    percent: Percent


class ServiceCreditSpec(_Spec):
    """What a missed target costs: `percent_per_miss` of the period's fee for each missed
    target, or the `steps` by number of misses; at most `cap` % of the period's fee."""

    clause: Name
    percent_per_miss: Percent | None = None
    steps: tuple[CreditStep, ...] | None = Field(default=None, min_length=1)
    cap: Percent | None = None
    monthly_fee: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_rule(self) -> ServiceCreditSpec:
        if (self.percent_per_miss is None) == (self.steps is None):
            raise PydanticCustomError(
                "credit", "give either percent_per_miss or steps (not both, not neither)"
            )
        misses = [s.misses for s in self.steps or ()]
        if any(a >= b for a, b in pairwise(misses)):
            raise PydanticCustomError(
                "credit", "credit steps must be in increasing order of misses, without repeats"
            )
        return self


class TierSpec(_Spec):
    description: str = ""
    calendar: Name | None = Field(
        default=None, description="calendar of a contract that names none"
    )
    warning_thresholds: Thresholds | None = None
    targets: TargetTable = Field(min_length=1)
    service_levels: tuple[ServiceLevelSpec, ...] = ()
    service_credit: ServiceCreditSpec | None = None


class TierCondition(_Spec):
    """Every condition given must hold; `min_value` is inclusive, `max_value` exclusive."""

    customer_tier: Names | None = None
    min_value: float | None = None
    max_value: float | None = None
    currency: Name | None = None


class TierRule(_Spec):
    tier: Name
    when: TierCondition = TierCondition()


class CoverSpec(_Spec):
    """A clause covers a metric at the severities named, or at every severity if none is."""

    metric: Metric
    severity: Severities | None = None


class ClauseSpec(_Spec):
    id: Name
    title: Annotated[str, Field(min_length=1)]
    text: str = ""
    covers: tuple[CoverSpec, ...] = ()


class ContractSpec(_Spec):
    contract_id: Name
    customer_id: Name
    customer_tier: Name | None = None
    value: float | None = Field(default=None, ge=0)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    tier: Name | None = None
    calendar: Name | None = None
    timezone: Name | None = None
    pause_statuses: Names | None = None
    at_risk_level: float | None = Field(default=None, gt=0, lt=1)
    effective_from: EffectiveDate = None
    effective_to: EffectiveDate = None
    version: int = Field(default=1, ge=1)
    clauses: tuple[ClauseSpec, ...] = Field(min_length=1)
    overrides: TargetTable = Field(default_factory=dict)
    # The tier's service levels, with these added (or replacing the tier's of the same id).
    service_levels: tuple[ServiceLevelSpec, ...] = ()
    service_credit: ServiceCreditSpec | None = None


class ContractsFile(_Spec):
    calendars: dict[Name, Any] = Field(default_factory=dict)
    tiers: dict[Name, TierSpec] = Field(default_factory=dict)
    tier_rules: tuple[TierRule, ...] = ()
    contracts: tuple[ContractSpec, ...] = ()


def dotted(loc: tuple[int | str, ...]) -> str:
    """('contracts', 2, 'clauses', 0, 'metric') -> 'contracts[2].clauses[0].metric'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":
            out += f".{part}" if out else str(part)
    return out


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def read_file_model(data: object, file: str = "") -> ContractsFile:
    """Validate the shape of a parsed file; the first problem becomes an `InvalidContract`."""
    if not isinstance(data, dict):
        raise InvalidContract("a contracts file is a mapping", file=file, value=type(data).__name__)
    try:
        return ContractsFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        message = _MESSAGES.get(err["type"], err["msg"])
        value = None if err["type"] == "missing" else err.get("input")
        if err["loc"] and err["loc"][-1] == "[key]":
            message = f"unknown key: {message}"
        raise InvalidContract(message, path=dotted(err["loc"]), value=value, file=file) from None
