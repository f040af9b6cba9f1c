"""The desk's running counts in event time, from which `DeskState` values are read.

A `DeskBook` is fed what the engine already sees (an incident opened, moved to another team,
left the backlog, came back; a resolution clock settled) and answers `state(team, at)`: open
incidents, arrivals in the last 24 h, resolutions in the last 7 days, the team's median time to
resolve over 14 days and breach rate over 30 days, the desk's breach rate over 7 days, all
from what happened at or before `at`. Items are expected roughly in time order (a replay, a
live feed); a late item counts from when it arrives.
"""

from __future__ import annotations

from collections import Counter, deque
from datetime import datetime, timedelta
from statistics import median

from sla_stream.core.risk_features import DeskState

DAY = timedelta(days=1)


class _Window:
    """Values stamped with an instant, kept while younger than `span`, with a running sum."""

    __slots__ = ("items", "span", "total")

    def __init__(self, span: timedelta) -> None:
        self.items: deque[tuple[datetime, float]] = deque()
        self.span = span
        self.total = 0.0

    def add(self, at: datetime, value: float = 1.0) -> None:
        self.items.append((at, value))
        self.total += value

    def prune(self, at: datetime) -> _Window:
        while self.items and self.items[0][0] <= at - self.span:
            self.total -= self.items.popleft()[1]
        return self

    def __len__(self) -> int:
        return len(self.items)


class _Team:
    __slots__ = ("arrivals", "breaches", "resolve_h", "resolved")

    def __init__(self) -> None:
        self.arrivals = _Window(DAY)
        self.resolved = _Window(7 * DAY)
        self.resolve_h = _Window(14 * DAY)
        self.breaches = _Window(30 * DAY)  # value 1.0 breached, 0.0 met


class DeskBook:
    """Backlog and trailing windows of one desk (or of the part of it one worker sees)."""

    def __init__(self) -> None:
        self.open_team: dict[str, str] = {}  # open incident -> its current team ("" if none)
        self.team_open: Counter[str] = Counter()
        self.teams: dict[str, _Team] = {}
        self.arrivals = _Window(DAY)
        self.resolved = _Window(7 * DAY)
        self.breaches = _Window(7 * DAY)

    def opened(self, incident_id: str, team: str | None, at: datetime) -> None:
        if incident_id in self.open_team:
            return
        self._enter(incident_id, team or "")
        self._team(team).arrivals.add(at)
        self.arrivals.add(at)

    def moved(self, incident_id: str, team: str | None) -> None:
        current = self.open_team.get(incident_id)
        if current is not None and team and team != current:
            self._leave(incident_id)
            self._enter(incident_id, team)

    def left(self, incident_id: str, at: datetime, open_h: float) -> None:
        """The incident left the backlog (resolved, closed, cancelled) after `open_h` hours."""
        team = self.open_team.get(incident_id)
        if team is None:
            return
        self._leave(incident_id)
        self._team(team).resolved.add(at)
        self._team(team).resolve_h.add(at, open_h)
        self.resolved.add(at)

    def returned(self, incident_id: str, team: str | None) -> None:
        """Reopened: back in the backlog, not a new arrival."""
        if incident_id not in self.open_team:
            self._enter(incident_id, team or "")

    def clock_settled(
        self, team: str | None, at: datetime, met: bool, completed_at: datetime | None
    ) -> None:
        """A resolution clock's outcome. A breach is counted at its instant, from the
        provisional outcome (no `completed_at`); the final record that replaces it when the
        clock stops is not counted again. Nothing is kept per incident."""
        if not met and completed_at is not None:
            return
        self._team(team).breaches.add(at, 0.0 if met else 1.0)
        self.breaches.add(at, 0.0 if met else 1.0)

    def state(self, team: str | None, at: datetime) -> DeskState:
        t = self._team(team)
        for window in (t.arrivals, t.resolved, t.resolve_h, t.breaches):
            window.prune(at)
        for window in (self.arrivals, self.resolved, self.breaches):
            window.prune(at)
        hours = [h for _, h in t.resolve_h.items]
        return DeskState(
            desk_open=len(self.open_team),
            team_open=self.team_open[team or ""],
            desk_arrivals_24h=len(self.arrivals),
            team_arrivals_24h=len(t.arrivals),
            team_resolved_7d=len(t.resolved),
            desk_resolved_7d=len(self.resolved),
            team_median_resolve_h=median(hours) if hours else None,
            team_breach_rate_30d=_rate(t.breaches),
            desk_breach_rate_7d=_rate(self.breaches),
        )

    def _team(self, team: str | None) -> _Team:
        found = self.teams.get(team or "")
        if found is None:
            found = self.teams[team or ""] = _Team()
        return found

    def _enter(self, incident_id: str, team: str) -> None:
        self.open_team[incident_id] = team
        self.team_open[team] += 1

    def _leave(self, incident_id: str) -> None:
        team = self.open_team.pop(incident_id)
        self.team_open[team] -= 1


def _rate(window: _Window) -> float | None:
    return window.total / len(window) if len(window) else None
