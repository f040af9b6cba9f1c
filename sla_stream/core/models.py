"""Wire models: every message on every topic, validated with pydantic and serialised with orjson.

Instants are aware datetimes (`*_at`); durations are seconds (`*_s`). Naive timestamps are
refused: a contract dispute over "which 09:00" is exactly what this service exists to prevent.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

Severity = Literal["P1", "P2", "P3", "P4"]
Metric = Literal["first_response", "resolution", "update"]
EventType = Literal[
    "opened",
    "responded",
    "updated",
    "status_changed",
    "severity_changed",
    "resolved",
    "reopened",
    "closed",
    "cancelled",
]
AlertKind = Literal[
    "warning",
    "breach",
    "met",
    "retracted",
    "stopped",
    "at_risk",
    "target_missed",
    "target_headroom",
]

SEVERITIES: tuple[str, ...] = get_args(Severity)
METRICS: tuple[str, ...] = get_args(Metric)
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


def _rfc3339_only(value: Any) -> Any:
    # pydantic would accept a bare number as Unix time; an event's instant must say its offset.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("must be an RFC 3339 timestamp with an offset, not a number")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]
NonEmpty = Annotated[str, Field(min_length=1, max_length=256)]


class WireModel(BaseModel):
    """Frozen, closed models: an unknown field is a typo until proven otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_json(cls, data: bytes | str) -> Any:
        return cls.model_validate_json(data)


class Effect(WireModel):
    """A message the engine emits (an alert, an outcome): built by the hundred thousand in a
    replay, from values the engine has already checked."""

    @classmethod
    def trusted(cls, **fields: Any) -> Any:
        """The model of `fields` without validating them: only for values the core computed
        with the right types (pydantic's own validation cost as much as the rest of a step)."""
        model = _new(cls)
        _set(model, "__dict__", {**_DEFAULTS[cls], **fields})  # declared order: the JSON's
        _set(model, "__pydantic_fields_set__", set(fields))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model

    def to_json(self) -> bytes:
        """As `WireModel.to_json` writes it; orjson writes UTC instants and tuples as pydantic's
        JSON mode does, so the dump is skipped when every instant is UTC (the core's are)."""
        fields = {k: v for k, v in self.__dict__.items() if v is not None}
        for v in fields.values():
            if isinstance(v, datetime) and v.tzinfo is not UTC:
                return super().to_json()
        return orjson.dumps(fields, option=orjson.OPT_UTC_Z)


class IncidentEvent(WireModel):
    """One step of an incident's lifecycle, as a ticketing system reports it."""

    event_id: NonEmpty
    incident_id: NonEmpty
    type: EventType
    occurred_at: Instant
    contract_id: NonEmpty | None = None
    severity: Severity | None = None
    status: NonEmpty | None = None
    category: str | None = None
    team: str | None = None
    # Who acted (an agent id, never a system account): staffing is counted from these.
    actor: NonEmpty | None = None
    source: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _required_by_type(self) -> IncidentEvent:
        if self.type == "opened":
            if self.contract_id is None:
                raise ValueError("contract_id is required on an 'opened' event")
            if self.severity is None:
                raise ValueError("severity is required on an 'opened' event")
        if self.type == "severity_changed" and self.severity is None:
            raise ValueError("severity is required on a 'severity_changed' event")
        if self.type == "status_changed" and self.status is None:
            raise ValueError("status is required on a 'status_changed' event")
        return self


class Alert(Effect):
    """A warning, breach, met, retraction or stop for one clock; `alert_id` is deterministic.

    `target_missed` and `target_headroom` are about a contract's service level over a period,
    not one clock (`core/service_levels.py`): `incident_id` is empty, `severity` is the highest
    it measures, `threshold` its objective, `allowance_s` the period's length, `elapsed_s` how
    much of it had gone by, `deadline` its end; the fields after `model_version` say the rest.
    """

    alert_id: str
    kind: AlertKind
    incident_id: str
    contract_id: str
    customer_id: str
    metric: Metric
    severity: Severity
    threshold: float | None = None
    allowance_s: float
    elapsed_s: float
    deadline: datetime | None = None
    clause_id: str
    clause_title: str
    emitted_at: datetime
    retracts: str | None = None
    # `update` only: which update cycle of the incident (1 from the first response on).
    cycle: int | None = Field(default=None, ge=1)
    # `at_risk` only: the calibrated probability of a breach, why, and which model said so.
    probability: float | None = None
    reasons: tuple[str, ...] | None = None
    model_version: str | None = None
    # `target_missed` and `target_headroom` only: which service level and period, its figure
    # (numerator met, denominator settled), the breaches it can still take, the credit owed.
    service_level: str | None = None
    severities: tuple[Severity, ...] | None = None
    period: str | None = None
    numerator: int | None = None
    denominator: int | None = None
    headroom: int | None = None
    credit_percent: float | None = None


class Outcome(Effect):
    """How one clock ended: met or breached, with its business seconds; or a withdrawal of one."""

    outcome_id: str
    incident_id: str
    contract_id: str
    customer_id: str
    tier: str
    severity: Severity
    category: str | None = None
    team: str | None = None
    metric: Metric
    allowance_s: float
    elapsed_s: float
    met: bool
    opened_at: datetime
    completed_at: datetime | None = None
    settled_at: datetime
    withdraws: str | None = None
    cycle: int | None = Field(default=None, ge=1, description="`update` only: the cycle")


_new, _set = object.__new__, object.__setattr__
_DEFAULTS: dict[type, dict[str, Any]] = {
    cls: {name: f.default for name, f in cls.model_fields.items()} for cls in (Alert, Outcome)
}

# A letter's `detail` is cut to this many characters: an error message can quote the input.
MAX_DETAIL_CHARS = 2000


class DeadLetter(WireModel):
    """Input that could not be accepted: the original bytes, where they came from, and why.

    The copy of the original is cut when the whole letter would exceed the size it is given
    (`truncated` is then true and `original_size` says how long the original was), so a letter
    always fits the producer's limit; the original itself stays on its topic at `offset`.
    """

    original_b64: str
    original_text: str | None = None
    topic: str
    partition: int | None = None
    offset: int | None = None
    reason: str
    detail: str = ""
    field: str | None = None
    # Bytes of the original value; absent for a null value (a tombstone).
    original_size: int | None = None
    truncated: bool = False

    @classmethod
    def of(
        cls,
        raw: bytes | None,
        *,
        topic: str,
        reason: str,
        detail: str = "",
        max_bytes: int | None = None,
        **where: Any,
    ) -> DeadLetter:
        """A letter for `raw` whose JSON is at most `max_bytes` long (no limit when None)."""
        if len(detail) > MAX_DETAIL_CHARS:
            detail = detail[:MAX_DETAIL_CHARS] + f"... ({len(detail)} characters)"
        original = raw or b""
        text_ok = _is_utf8(original)

        def build(keep: int) -> DeadLetter:
            copy = original[:keep]
            return cls(
                original_b64=base64.b64encode(copy).decode("ascii"),
                original_text=_utf8_prefix(copy) if text_ok else None,
                topic=topic,
                reason=reason,
                detail=detail,
                original_size=None if raw is None else len(raw),
                truncated=keep < len(original),
                **where,
            )

        keep = len(original)
        letter = build(keep)
        if max_bytes is None:
            return letter
        size = len(letter.to_json())
        while size > max_bytes and keep > 0:
            # Shrink in proportion (escaped text can cost up to 6 bytes a byte), with a margin.
            keep = min(keep - 1, int(keep * max_bytes / size * 0.95))
            letter = build(max(keep, 0))
            size = len(letter.to_json())
        return letter

    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _utf8_prefix(data: bytes) -> str:
    """`data` as text, less a character that a cut split in two (at most 3 trailing bytes)."""
    for cut in range(4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")


WIRE_MODELS: dict[str, type[WireModel]] = {
    "incident-event": IncidentEvent,
    "alert": Alert,
    "outcome": Outcome,
    "dead-letter": DeadLetter,
}
