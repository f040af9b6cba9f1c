"""The roster file: agents per team per hour of the week, declared like the contracts file.

```yaml
timezone: America/Sao_Paulo           # the zone the hours are read in
teams:
  Group 70:
    - {days: [mon, tue, wed, thu, fri], hours: "08-18", agents: 6}
    - {days: [sat], hours: "09-13", agents: 2}
```

Blocks of one team add up; an hour no block covers has no agents. A file that does not fit is
refused with `RosterError` naming the field and the value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from sla_stream.core.errors import SlaError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HOURS = re.compile(r"(\d\d)-(\d\d)")


class RosterError(SlaError):
    """A roster file that is refused; the message names the file, the field and the value."""


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown IANA time zone") from None
    return name


def _hours(text: str) -> str:
    match = _HOURS.fullmatch(text)
    if match is None or not 0 <= int(match[1]) < int(match[2]) <= 24:
        raise ValueError('hours are "HH-HH" with 00 <= start < end <= 24, like "08-18"')
    return text


class Block(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    days: list[Day] = Field(min_length=1)
    hours: Annotated[str, AfterValidator(_hours)]
    agents: int = Field(ge=0, le=10_000)

    def hours_of_week(self) -> list[int]:
        start, end = (int(x) for x in self.hours.split("-"))
        return [DAYS.index(d) * 24 + h for d in self.days for h in range(start, end)]


class Roster(BaseModel):
    """Declared agents; `agents(team)` is 168 counts, Monday 00:00 first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: Annotated[str, AfterValidator(_zone)]
    teams: dict[Annotated[str, Field(min_length=1)], list[Block]]

    def agents(self, team: str) -> list[int]:
        week = [0] * 168
        for block in self.teams.get(team, []):
            for hour in block.hours_of_week():
                week[hour] += block.agents
        return week

    def by_team(self) -> dict[str, list[int]]:
        return {team: self.agents(team) for team in self.teams}


def parse_roster(data: object, file: str = "") -> Roster:
    """Validate a parsed roster; the first problem is a `RosterError` naming field and value."""
    prefix = f"{file}: " if file else ""
    if not isinstance(data, dict):
        raise RosterError(f"{prefix}a roster is a YAML mapping (got {type(data).__name__})")
    try:
        return Roster.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        got = "" if err["type"] == "missing" else f" (got {err.get('input')!r})"
        raise RosterError(f"{prefix}{where}: {message}{got}") from None


def load_roster(path: Path | str) -> Roster:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RosterError(f"{path}: not valid YAML: {exc}") from None
    return parse_roster(data, str(path))
