"""What a desk's history says about its capacity, per team and hour of the week (pure).

From incident events (and the agents who acted in them, `IncidentEvent.actor`) this builds:

- one record per incident: team and severity at opening, when it opened, first left `new`
  (`responded`) and was first resolved;
- staffing per team and clock hour: the distinct actors who acted in that team's incidents in
  that hour (a proxy for agents on duty), or a declared roster (`capacity_roster.py`);
- per team and hour of the week (0 = Monday 00:00 in the desk's zone): arrivals per hour,
  first-response delays, resolution times, open clocks and staffing (`hour_of_week_profile`).

Instants are aware; hours are keyed by their UTC start as whole hours since the epoch, so a DST
change never merges or splits an hour; hour of the week is read in the desk's zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import median
from zoneinfo import ZoneInfo

import numpy as np

from sla_stream.core.models import IncidentEvent

HOURS_PER_WEEK = 168
# What an incident's opening event says about it and a model may read (`capacity_open.py`): a
# whitelist of the request's own facts, set when it is logged. Never the opening row's state,
# assignee or saver: a third of the log's incidents are saved already past `new`, so those are
# the response itself.
OPENING_FACTS = (
    "category",
    "subcategory",
    "u_symptom",
    "contact_type",
    "location",
    "caller_id",
    "opened_by",
    "impact",
    "urgency",
)
UNASSIGNED = "(unassigned)"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hour_index(at: datetime) -> int:
    """Whole hours since the epoch of the UTC hour containing `at`."""
    return int((at - _EPOCH).total_seconds() // 3600)


def hour_start(index: int) -> datetime:
    return _EPOCH + timedelta(hours=index)


def hour_of_week(at: datetime, zone: ZoneInfo) -> int:
    """0..167: Monday 00:00-01:00 local time is 0."""
    local = at.astimezone(zone)
    return local.weekday() * 24 + local.hour


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """One incident as capacity sees it; delays are calendar seconds."""

    incident_id: str
    team: str
    severity: str
    contract_id: str
    opened_at: datetime
    responded_at: datetime | None
    resolved_at: datetime | None
    facts: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def response_s(self) -> float | None:
        if self.responded_at is None:
            return None
        return max(0.0, (self.responded_at - self.opened_at).total_seconds())

    @property
    def resolution_s(self) -> float | None:
        if self.resolved_at is None:
            return None
        return max(0.0, (self.resolved_at - self.opened_at).total_seconds())


@dataclass
class History:
    """Incidents and who was active when; `actors[(team, hour)]` are distinct actor ids."""

    zone: ZoneInfo
    incidents: list[IncidentRecord] = field(default_factory=list)
    actors: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    roster: dict[str, list[int]] | None = None  # declared agents per team per hour of the week

    def staffing(self, team: str, hour: int) -> int:
        """Agents of `team` in the clock hour: the roster's when declared, else distinct actors."""
        if self.roster is not None:
            week = self.roster.get(team)
            return week[hour_of_week(hour_start(hour), self.zone)] if week else 0
        return len(self.actors.get((team, hour), ()))

    def desk_staffing(self) -> dict[int, int]:
        """Agents per hour across every team (an actor in two teams counts once)."""
        if self.roster is not None:
            hours = {h for _, h in self.actors} | {hour_index(r.opened_at) for r in self.incidents}
            return {h: sum(self.staffing(t, h) for t in self.roster) for h in hours}
        per_hour: dict[int, set[str]] = defaultdict(set)
        for (_, hour), ids in self.actors.items():
            per_hour[hour] |= ids
        return {hour: len(ids) for hour, ids in per_hour.items()}

    def teams(self) -> list[str]:
        return sorted({r.team for r in self.incidents})

    def between(self, start: datetime, end: datetime) -> list[IncidentRecord]:
        """Incidents opened in [start, end)."""
        return [r for r in self.incidents if start <= r.opened_at < end]


def history_from_events(events: Iterable[IncidentEvent], zone: ZoneInfo) -> History:
    """Fold events (any order) into incident records and actors per team and hour."""
    opened: dict[str, IncidentEvent] = {}
    responded: dict[str, datetime] = {}
    resolved: dict[str, datetime] = {}
    acted: list[tuple[str, str, int]] = []  # (incident, actor, hour)
    team_of_event: dict[tuple[str, int], str] = {}
    for event in events:
        incident = event.incident_id
        if event.type == "opened" and incident not in opened:
            opened[incident] = event
        elif event.type == "responded":
            responded[incident] = min(responded.get(incident, event.occurred_at), event.occurred_at)
        elif event.type == "resolved":
            resolved[incident] = min(resolved.get(incident, event.occurred_at), event.occurred_at)
        if event.actor is not None:
            hour = hour_index(event.occurred_at)
            acted.append((incident, event.actor, hour))
            if event.team:
                team_of_event[(incident, len(acted) - 1)] = event.team
    history = History(zone=zone)
    for incident, event in opened.items():
        history.incidents.append(
            IncidentRecord(
                incident_id=incident,
                team=event.team or UNASSIGNED,
                severity=event.severity or "P3",
                contract_id=event.contract_id or "",
                opened_at=event.occurred_at,
                responded_at=responded.get(incident),
                resolved_at=resolved.get(incident),
                facts=opening_facts(event),
            )
        )
    history.incidents.sort(key=lambda r: (r.opened_at, r.incident_id))
    for i, (incident, actor, hour) in enumerate(acted):
        team = team_of_event.get((incident, i))
        if team is None:
            first = opened.get(incident)
            team = (first.team if first is not None else None) or UNASSIGNED
        history.actors.setdefault((team, hour), set()).add(actor)
    return history


def opening_facts(event: IncidentEvent) -> dict[str, str]:
    """The whitelisted facts of an opening event (`OPENING_FACTS`), as strings."""
    given = {"category": event.category, **event.attributes}
    return {k: str(given[k]) for k in OPENING_FACTS if given.get(k) is not None}


def open_counts(
    starts: Iterable[datetime], ends: Iterable[datetime | None], at: Iterable[datetime]
) -> list[int]:
    """How many [start, end) intervals contain each instant of `at` (open clocks over time)."""
    start_s = np.sort(np.array([s.timestamp() for s in starts], dtype=float))
    end_s = np.sort(np.array([e.timestamp() for e in ends if e is not None], dtype=float))
    probe = np.array([t.timestamp() for t in at], dtype=float)
    begun = np.searchsorted(start_s, probe, side="right")
    ended = np.searchsorted(end_s, probe, side="right")
    return [int(n) for n in begun - ended]


@dataclass
class HourProfile:
    """One team's hour of the week, averaged over the weeks of the window."""

    hour_of_week: int
    weeks: int
    arrivals: int = 0
    responses_within: int = 0
    response_s: list[float] = field(default_factory=list)
    resolution_s: list[float] = field(default_factory=list)
    staffing_sum: float = 0.0
    open_sum: float = 0.0

    def as_dict(self, within_s: float) -> dict[str, float | int | None]:
        answered = self.response_s
        return {
            "hour_of_week": self.hour_of_week,
            "arrivals": self.arrivals,
            "arrivals_per_hour": self.arrivals / self.weeks,
            "first_response_adherence": (
                self.responses_within / self.arrivals if self.arrivals else None
            ),
            "first_response_median_s": median(answered) if answered else None,
            "resolution_median_s": median(self.resolution_s) if self.resolution_s else None,
            "staffing": self.staffing_sum / self.weeks,
            "open_clocks": self.open_sum / self.weeks,
            "within_s": within_s,
        }


def hour_of_week_profile(
    history: History,
    team: str,
    start: datetime,
    end: datetime,
    within_s: float = 3600.0,
    roster: list[float] | None = None,
) -> list[HourProfile]:
    """The 168 hours of one team's week over [start, end): arrivals, delays, staffing, backlog.

    Staffing is the roster's agents for that hour when given, else the distinct actors.
    Open clocks are incidents opened and not yet resolved at the start of the hour.
    """
    hours = range(hour_index(start), hour_index(end))
    weeks = max(1, round(len(hours) / HOURS_PER_WEEK))
    profile = [HourProfile(h, weeks) for h in range(HOURS_PER_WEEK)]
    records = [r for r in history.incidents if r.team == team]
    for r in records:
        if not start <= r.opened_at < end:
            continue
        cell = profile[hour_of_week(r.opened_at, history.zone)]
        cell.arrivals += 1
        if r.response_s is not None:
            cell.response_s.append(r.response_s)
            cell.responses_within += r.response_s <= within_s
        if r.resolution_s is not None:
            cell.resolution_s.append(r.resolution_s)
    instants = [hour_start(h) for h in hours]
    backlog = open_counts(
        (r.opened_at for r in records), (r.resolved_at for r in records), instants
    )
    for h, at, n in zip(hours, instants, backlog, strict=True):
        cell = profile[hour_of_week(at, history.zone)]
        cell.open_sum += n
        if roster is not None:
            cell.staffing_sum += roster[cell.hour_of_week]
        else:
            cell.staffing_sum += history.staffing(team, h)
    return profile
