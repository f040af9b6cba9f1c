"""Breach-risk features of one incident as of an instant: one pure function, for replay and live.

`features_at(state, at, terms, desk, opened_facts)` reads only what is known at `at`: the
incident's recorded events dated at or before `at`, its clocks (business time from the
contract's calendars), a `DeskState` of the desk at `at`, and a whitelist of the opening
event's attributes. Nothing known only at closure goes in: the ServiceNow export back-fills
`closed_at`, `closed_code`, `resolved_by`, `resolved_at` on every row and `made_sla` is the
closure verdict (the label). Fields are read from a whitelist, never filtered by a blacklist.

Instants are aware; durations are hours (`*_h`) because that is the scale people read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sla_stream.core.calendar import calendar_for
from sla_stream.core.clock import Clock, elapsed_at, utc
from sla_stream.core.incident import IncidentState, Recorded
from sla_stream.core.terms import ContractTerms

HOUR = 3600.0
# Known only at closure (or back-filled from it onto every row): never read, never a feature.
CLOSURE_FIELDS = ("closed_at", "closed_code", "resolved_by", "resolved_at", "made_sla")
# Opening facts a forecast may use: known when the incident opens and never rewritten later.
OPENED_FACTS = ("contact_type", "location", "impact", "urgency")
# Statuses in which the desk is working on the incident; any other open status is a wait.
WORKING_STATUSES = frozenset({"new", "active"})
FINAL_STATUSES = frozenset({"resolved", "closed", "cancelled"})
SEVERITY_RANK = {"P1": 1.0, "P2": 2.0, "P3": 3.0, "P4": 4.0}


@dataclass(frozen=True, slots=True)
class DeskState:
    """The desk as of an instant, for one team: counts over windows that end at that instant.

    Breach rate and time to resolve come only from clocks settled before the instant."""

    desk_open: int = 0
    team_open: int = 0
    desk_arrivals_24h: int = 0
    team_arrivals_24h: int = 0
    team_resolved_7d: int = 0
    desk_resolved_7d: int = 0
    team_median_resolve_h: float | None = None
    team_breach_rate_30d: float | None = None
    desk_breach_rate_7d: float | None = None


# Numeric features, in model order. `CATEGORICAL` are strings (None when unknown).
CLOCK_FEATURES = (
    "res_fraction",
    "res_left_h",
    "res_paused",
    "res_breached",
    "resp_fraction",
    "responded",
)
HISTORY_FEATURES = (
    "severity_rank",
    "age_h",
    "open_hour_of_week",
    "hour_of_week",
    "updates",
    "updates_24h",
    "since_update_h",
    "status_changes",
    "waits",
    "waiting_h",
    "paused_h",
    "team_changes",
    "teams_seen",
    "team_returns",
    "severity_changes",
    "reopens",
)
DESK_FEATURES = (
    "desk_open",
    "team_open",
    "desk_arrivals_24h",
    "team_arrivals_24h",
    "team_backlog_ratio",
    "desk_backlog_ratio",
    "team_median_resolve_h",
    "team_breach_rate_30d",
    "desk_breach_rate_7d",
)
NUMERIC_FEATURES = CLOCK_FEATURES + HISTORY_FEATURES + DESK_FEATURES
CATEGORICAL_FEATURES = ("severity", "status", "category", "team", "opening_team", *OPENED_FACTS)
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES

Features = dict[str, float | str | None]


def features_at(
    state: IncidentState,
    at: datetime,
    terms: ContractTerms,
    desk: DeskState,
    opened_facts: Mapping[str, Any] | None = None,
) -> Features:
    """Every feature in `FEATURES` for `state` as of `at` (aware). `state` is the incident folded
    up to `at` (its events at or before `at` applied, then advanced to `at`), as the live worker
    and the replay hold it; events it records dated after `at` are not read."""
    at = utc(at)
    events = [e for e in state.events if e.occurred_at <= at]
    out: Features = dict.fromkeys(FEATURES)
    out.update(_clock_features(state.clocks, at, terms))
    out.update(_history_features(state, events, at, terms))
    out.update(_desk_features(desk))
    facts = opened_facts or {}
    for name in OPENED_FACTS:
        value = facts.get(name)
        out[name] = None if value is None else str(value)
    return out


def _clock_features(clocks: tuple[Clock, ...], at: datetime, terms: ContractTerms) -> Features:
    out: Features = {}
    for c in clocks:
        target = terms.target(c.metric, c.severity)
        if target is None:
            continue
        cal = calendar_for(terms.calendars.get(target.calendar, target.calendar))
        elapsed = elapsed_at(c, at, cal)
        fraction = elapsed / target.allowance_s
        if c.metric == "resolution":
            out["res_fraction"] = fraction
            out["res_left_h"] = (target.allowance_s - elapsed) / HOUR
            out["res_paused"] = float(c.phase == "paused")
            out["res_breached"] = float(fraction >= 1.0)
        elif c.metric == "first_response":
            out["resp_fraction"] = fraction
            out["responded"] = float(c.phase == "stopped" and c.stopped_at is not None)
    return out


class _Tally:
    """Counts over an incident's events in time order: statuses, waits, teams, severities."""

    def __init__(self, opened_at: datetime, pause_statuses: tuple[str, ...]) -> None:
        self.pause_statuses = pause_statuses
        self.team: str | None = None
        self.category: str | None = None
        self.severity: str | None = None
        self.status: str | None = None
        self.teams: list[str] = []
        self.status_changes = self.waits = self.reopens = 0
        self.team_changes = self.team_returns = self.severity_changes = 0
        self.waiting_s = self.paused_s = 0.0
        self.since = opened_at

    def wait_until(self, at: datetime) -> None:
        """Count the time since the last event in the current status, if it is a wait."""
        if self.status is not None and self.status not in WORKING_STATUSES | FINAL_STATUSES:
            self.waiting_s += (at - self.since).total_seconds()
            if self.status in self.pause_statuses:
                self.paused_s += (at - self.since).total_seconds()
        self.since = at

    def add(self, e: Recorded) -> None:
        self.wait_until(e.occurred_at)
        if e.type == "severity_changed" and self.severity is not None:
            self.severity_changes += e.severity != self.severity
        self.severity = e.severity or self.severity
        self.reopens += e.type == "reopened"
        status = e.status if e.type == "reopened" else (e.status or self.status)
        if status != self.status and e.type != "opened":
            self.status_changes += 1
            self.waits += status not in WORKING_STATUSES | FINAL_STATUSES
        self.status = status
        self.category = e.category or self.category
        if e.team and e.team != self.team:
            if self.team is not None:
                self.team_changes += 1
                self.team_returns += e.team in self.teams  # ping-pong: back to an earlier team
            self.teams.append(e.team)
            self.team = e.team


def _history_features(
    state: IncidentState, events: list[Recorded], at: datetime, terms: ContractTerms
) -> Features:
    zone = ZoneInfo(terms.timezone)
    opened_at = state.opened_at or (events[0].occurred_at if events else at)
    updates = [e for e in events if e.type != "opened"]
    last_at = events[-1].occurred_at if events else opened_at
    tally = _Tally(opened_at, terms.pause_statuses)
    for e in events:
        tally.add(e)
    tally.wait_until(at)
    local_open, local_now = opened_at.astimezone(zone), at.astimezone(zone)
    return {
        "severity_rank": SEVERITY_RANK.get(tally.severity or ""),
        "age_h": (at - opened_at).total_seconds() / HOUR,
        "open_hour_of_week": float(local_open.weekday() * 24 + local_open.hour),
        "hour_of_week": float(local_now.weekday() * 24 + local_now.hour),
        "updates": float(len(updates)),
        "updates_24h": float(
            sum((at - e.occurred_at).total_seconds() <= 24 * HOUR for e in updates)
        ),
        "since_update_h": (at - last_at).total_seconds() / HOUR,
        "status_changes": float(tally.status_changes),
        "waits": float(tally.waits),
        "waiting_h": tally.waiting_s / HOUR,
        "paused_h": tally.paused_s / HOUR,
        "team_changes": float(tally.team_changes),
        "teams_seen": float(len(set(tally.teams))),
        "team_returns": float(tally.team_returns),
        "severity_changes": float(tally.severity_changes),
        "reopens": float(tally.reopens),
        "severity": tally.severity,
        "status": tally.status,
        "category": tally.category,
        "team": tally.team,
        "opening_team": tally.teams[0] if tally.teams else None,
    }


def _desk_features(desk: DeskState) -> Features:
    return {
        "desk_open": float(desk.desk_open),
        "team_open": float(desk.team_open),
        "desk_arrivals_24h": float(desk.desk_arrivals_24h),
        "team_arrivals_24h": float(desk.team_arrivals_24h),
        # Backlog in weeks of the team's own recent throughput: absolute load names the regime.
        "team_backlog_ratio": desk.team_open / max(desk.team_resolved_7d, 1),
        "desk_backlog_ratio": desk.desk_open / max(desk.desk_resolved_7d, 1),
        "team_median_resolve_h": desk.team_median_resolve_h,
        "team_breach_rate_30d": desk.team_breach_rate_30d,
        "desk_breach_rate_7d": desk.desk_breach_rate_7d,
    }
