"""The ServiceNow mapping file: instance time zone, contract by caller or location, state names.

```yaml
timezone: America/Sao_Paulo        # the instance's local zone; the export's times are in it
default_contract: standard         # contract of an incident no rule below matches
contracts_by_caller: {"Caller 1904": gold}
contracts_by_location: {"Location 204": silver}
states: {Awaiting Vendor: pending_vendor}   # merged over DEFAULT_STATES
priorities: {}                               # merged over DEFAULT_PRIORITIES
resolution_time: state_change      # or resolved_at (see servicenow.py)
system_users: ["Updated by 908"]   # sys_updated_by values that are no agent (events get no actor)
```

A contract is looked up by caller first, then by location, then the default. Statuses are the
names the contracts' `pause_statuses` speak of; five of them have a fixed role in the importer:
`new`, `active`, `resolved`, `closed` and `cancelled` (a ServiceNow state mapped to none of these
is an open status such as `awaiting_user_info`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from sla_stream.core.errors import SlaError
from sla_stream.core.models import Severity

NEW, ACTIVE, RESOLVED, CLOSED, CANCELLED = "new", "active", "resolved", "closed", "cancelled"
FINAL_STATUSES = frozenset({RESOLVED, CLOSED, CANCELLED})

DEFAULT_STATES: dict[str, str] = {
    "New": NEW,
    "Active": ACTIVE,
    "Awaiting User Info": "awaiting_user_info",
    "Awaiting Problem": "awaiting_problem",
    "Awaiting Vendor": "awaiting_vendor",
    "Awaiting Evidence": "awaiting_evidence",
    "Resolved": RESOLVED,
    "Closed": CLOSED,
    "Canceled": CANCELLED,
}
DEFAULT_PRIORITIES: dict[str, Severity] = {
    "1 - Critical": "P1",
    "2 - High": "P2",
    "3 - Moderate": "P3",
    "4 - Low": "P4",
}

ContractId = Annotated[str, Field(min_length=1, max_length=256)]
StatusName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class MappingError(SlaError):
    """A mapping file that is refused; names the file, the field and the value."""

    def __init__(self, message: str, *, field: str = "", value: object = None, file: str = ""):
        where = ":".join(p for p in (file, field) if p)
        text = f"{where}: {message}" if where else message
        if value is not None:
            text += f" (got {value!r})"
        super().__init__(text)
        self.field = field
        self.value = value
        self.file = file


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown IANA time zone") from None
    return name


class ServiceNowMapping(BaseModel):
    """How one ServiceNow instance's export maps onto sla-stream events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: Annotated[str, AfterValidator(_known_zone)]
    default_contract: ContractId
    contracts_by_caller: dict[str, ContractId] = Field(default_factory=dict)
    contracts_by_location: dict[str, ContractId] = Field(default_factory=dict)
    states: dict[str, StatusName] = Field(default_factory=dict)
    priorities: dict[str, Severity] = Field(default_factory=dict)
    resolution_time: Literal["state_change", "resolved_at"] = "state_change"
    system_users: frozenset[str] = frozenset()

    @field_validator("states", mode="after")
    @classmethod
    def _merge_states(cls, value: dict[str, str]) -> dict[str, str]:
        merged = {**DEFAULT_STATES, **value}
        for role in (NEW, RESOLVED, CLOSED):
            if role not in merged.values():
                raise ValueError(f"no state maps to the status {role!r}")
        return merged

    @field_validator("priorities", mode="after")
    @classmethod
    def _merge_priorities(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        return {**DEFAULT_PRIORITIES, **value}

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def contract_for(self, caller: str | None, location: str | None) -> str:
        """Caller first, then location, then the default."""
        if caller is not None and caller in self.contracts_by_caller:
            return self.contracts_by_caller[caller]
        if location is not None and location in self.contracts_by_location:
            return self.contracts_by_location[location]
        return self.default_contract

    def actor_for(self, updated_by: str | None) -> str | None:
        """The agent who saved a row: `sys_updated_by`, unless it is a system user."""
        if updated_by is None or updated_by in self.system_users:
            return None
        return updated_by


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
    "string_pattern_mismatch": "a status is a lower_snake_case name such as awaiting_user_info",
}


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc if p != "[key]")


def parse_mapping(data: object, file: str = "") -> ServiceNowMapping:
    """Validate a parsed mapping; the first problem becomes a `MappingError` naming the field."""
    if not isinstance(data, dict):
        raise MappingError("a mapping file is a YAML mapping", file=file, value=type(data).__name__)
    try:
        # Build through an explicit default so a missing `states` still gets its check.
        return ServiceNowMapping.model_validate({"states": {}, "priorities": {}, **data})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        message = _MESSAGES.get(err["type"], err["msg"].removeprefix("Value error, "))
        value = None if err["type"] == "missing" else err.get("input")
        raise MappingError(message, field=_dotted(err["loc"]), value=value, file=file) from None


def load_mapping(path: Path | str) -> ServiceNowMapping:
    """Read and validate a YAML mapping file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"not valid YAML: {exc}", file=str(path)) from None
    return parse_mapping(data, file=str(path))
