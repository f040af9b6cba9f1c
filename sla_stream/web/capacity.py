"""`/capacity` and `GET /api/v1/capacity`: the staffing plan of `sla-stream capacity`, served.

    GET /capacity          the page: teams, staffing vs needed per hour of the week (heat map),
                           predicted adherence vs agents for one cell, contracts at risk
    GET /api/v1/capacity   the same figures as JSON

The worker does not fit the model (that takes minutes on a whole log): it shows the JSON that
`sla-stream capacity --format json --out FILE` wrote, at the path `SLA_CAPACITY_REPORT` names.
The file is read at request time and parsed again only when its mtime or size changes, so a
new plan shows up without a restart. Query parameters: `team` (default: the report's first,
the busiest) and `hour_of_week` (0..167 from Monday 00:00 in the log's zone; default: the
team's busiest hour). Without a report the page says how to make one (200) and the API answers
404 with the same words; a file that is not a capacity report is a 500 naming field and value.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sla_stream.web import capacity_html
from sla_stream.web.access import Access
from sla_stream.web.replies import json_reply

if TYPE_CHECKING:
    from sla_stream.worker_app import SlaApp

PAGE_PATH = "/capacity"
DATA_PATH = "/api/v1/capacity"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS_PER_WEEK = 168
CHART_HEADROOM_AGENTS = 3  # the chart runs this far past today's staffing and the need
HOW_TO = (
    "Make one with `sla-stream capacity --log "
    "examples/servicenow/data/incident_event_log.csv.gz --format json --out capacity.json` "
    "(or `--events events.jsonl`), then start the worker with "
    "SLA_CAPACITY_REPORT=capacity.json. The worker reads the file again whenever it changes."
)


class NoReport(Exception):
    """No report to show (not configured, or no file there): the reader is told how to make one."""


class BadReport(Exception):
    """The configured file is not a capacity report; the message names the field and value."""


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Cell(_Open):
    hour_of_week: int = Field(ge=0, lt=HOURS_PER_WEEK)
    arrivals_per_week: float
    current: float
    needed: int | None
    predicted: float
    marginal: float
    low: float
    high: float
    # Predicted adherence at 0, 1, 2, ... agents, flat after its last value. Reports written
    # before the field existed have none: the page then shows no chart.
    curve: list[float] | None = None


class Team(_Open):
    team: str
    predicted: float
    cells: list[Cell]


class AtRisk(_Open):
    contract: str
    incidents: int
    predicted: float
    teams_under_target: list[dict[str, Any]]


class Backtest(_Open):
    group_week_mae: float | None
    hour_of_week_mae: float | None
    band_points: tuple[float, float]
    cut: str


class Report(_Open):
    target: float = Field(gt=0, le=1)
    metric: str
    teams: list[Team]
    contracts_at_risk: list[AtRisk]
    backtest: Backtest
    what_if: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Loaded:
    report: Report
    path: Path
    modified_at: datetime


class ReportFile:
    """The report at `path`, parsed once per version of the file (its mtime and size)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._cached: tuple[tuple[int, int], Loaded] | None = None

    def load(self) -> Loaded:
        if self.path is None:
            raise NoReport(f"No capacity report: SLA_CAPACITY_REPORT is not set. {HOW_TO}")
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise NoReport(f"No capacity report at {self.path}. {HOW_TO}") from None
        version = (stat.st_mtime_ns, stat.st_size)
        if self._cached is not None and self._cached[0] == version:
            return self._cached[1]
        loaded = Loaded(
            parse_report(self.path.read_bytes(), str(self.path)),
            self.path,
            datetime.fromtimestamp(stat.st_mtime, UTC),
        )
        self._cached = (version, loaded)
        return loaded


def parse_report(raw: bytes, source: str) -> Report:
    """The report in `raw`, or BadReport naming the file, the field and the value."""
    try:
        return Report.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise BadReport(f"{source}: not JSON ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        got = repr(first.get("input"))[:80]
        raise BadReport(
            f"{source}: {where}: {first['msg']} (got {got}); it should be the JSON of "
            "`sla-stream capacity --format json`"
        ) from None


class BadParameter(ValueError):
    """A query parameter the report cannot answer (an unknown team, an hour out of range)."""


def status_of(cell: Cell) -> str:
    """`unreachable` (no staffing up to the plan's limit reaches the target), `short` or `ok`."""
    if cell.needed is None:
        return "unreachable"
    return "short" if cell.needed > cell.current else "ok"


def cell_view(cell: Cell) -> dict[str, Any]:
    """A report cell with its day, hour and how far today's staffing is from the need."""
    data = cell.model_dump(exclude={"curve"})
    data["day"] = DAYS[cell.hour_of_week // 24]
    data["hour"] = cell.hour_of_week % 24
    data["status"] = status_of(cell)
    data["shortfall"] = None if cell.needed is None else round(cell.needed - cell.current, 2)
    return data


def team_view(team: Team) -> dict[str, Any]:
    cells = [cell_view(c) for c in team.cells]
    return {
        "team": team.team,
        "predicted": team.predicted,
        "hours": len(cells),
        "hours_short": sum(1 for c in cells if c["status"] == "short"),
        "hours_unreachable": sum(1 for c in cells if c["status"] == "unreachable"),
        "agent_hours_short": round(
            sum(max(0.0, c["shortfall"]) for c in cells if c["shortfall"] is not None), 2
        ),
        "cells": cells,
    }


def curve_points(cell: Cell, band: tuple[float, float]) -> list[dict[str, Any]] | None:
    """Predicted adherence (and the backtest band around it) at 0..N agents for one cell."""
    if not cell.curve:
        return None
    top = max(math.ceil(cell.current), cell.needed or 0) + CHART_HEADROOM_AGENTS
    top = max(top, len(cell.curve) - 1) if cell.needed is None else top
    points = []
    for agents in range(top + 1):
        value = cell.curve[min(agents, len(cell.curve) - 1)]  # flat after the last value
        points.append(
            {
                "agents": agents,
                "predicted": value,
                "low": round(max(0.0, value + band[0] / 100), 4),
                "high": round(min(1.0, value + band[1] / 100), 4),
            }
        )
    return points


def _selection(report: Report, params: Mapping[str, str]) -> tuple[Team | None, Cell | None]:
    if not report.teams:
        return None, None
    name = params.get("team") or report.teams[0].team
    team = next((t for t in report.teams if t.team == name), None)
    if team is None:
        raise BadParameter(f"unknown team {name!r}; the report plans {len(report.teams)} teams")
    if not team.cells:
        return team, None
    raw = params.get("hour_of_week")
    if not raw:
        return team, max(team.cells, key=lambda c: (c.arrivals_per_week, -c.hour_of_week))
    if not raw.isdigit() or int(raw) >= HOURS_PER_WEEK:
        raise BadParameter(f"'hour_of_week' must be 0..167 (got {raw!r})")
    cell = next((c for c in team.cells if c.hour_of_week == int(raw)), None)
    if cell is None:
        raise BadParameter(f"{team.team} had no incidents at hour of the week {raw}")
    return team, cell


def capacity_view(loaded: Loaded, params: Mapping[str, str]) -> dict[str, Any]:
    """What the page shows and the API returns; BadParameter for a team or hour it cannot show."""
    report = loaded.report
    team, cell = _selection(report, params)
    band = report.backtest.band_points
    selected = None
    if team is not None and cell is not None:
        selected = {
            "team": team.team,
            **cell_view(cell),
            "curve": curve_points(cell, band),
        }
    return {
        "source": {"path": str(loaded.path), "modified_at": loaded.modified_at.isoformat()},
        "target": report.target,
        "metric": report.metric,
        "what_if": report.what_if,
        "backtest": report.backtest.model_dump(),
        "teams": [team_view(t) for t in report.teams],
        "contracts_at_risk": [c.model_dump() for c in report.contracts_at_risk],
        "selected": selected,
    }


def answer(reports: ReportFile, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """(200, the view), or (404 | 400 | 500, {"error": ...})."""
    try:
        return 200, capacity_view(reports.load(), params)
    except NoReport as exc:
        return 404, {"error": str(exc)}
    except BadParameter as exc:
        return 400, {"error": str(exc)}
    except BadReport as exc:
        return 500, {"error": str(exc)}


def page(reports: ReportFile, params: Mapping[str, str]) -> str:
    """The page; a bad parameter shows the default view under a notice, no report its remedy."""
    status, body = answer(reports, params)
    notice = None
    if status == 400:
        notice = body["error"]
        status, body = answer(reports, {})
    if status != 200:
        return capacity_html.no_report(body["error"])
    return capacity_html.page(body, notice=notice)


def register_capacity(sla_app: SlaApp) -> None:
    """Add `/capacity` and `/api/v1/capacity` to the worker's web server (viewer access)."""
    reports = ReportFile(sla_app.settings.capacity_report)

    @sla_app.routes.page(DATA_PATH, Access.VIEWER)
    async def data_view(view: Any, request: Any) -> Any:
        status, body = await asyncio.to_thread(answer, reports, dict(request.query))
        return json_reply(view, body, status)

    @sla_app.routes.page(PAGE_PATH, Access.VIEWER)
    async def page_view(view: Any, request: Any) -> Any:
        return view.html(await asyncio.to_thread(page, reports, dict(request.query)))
