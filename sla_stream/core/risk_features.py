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
from sla_stream.core.incident import IncidentState
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
    out.update(_history_features(state, events, at, terms, out))
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


def _history_features(
    state: IncidentState, events: list, at: datetime, terms: ContractTerms, out: Features
) -> Features:
    zone = ZoneInfo(terms.timezone)
    opened_at = state.opened_at or (events[0].occurred_at if events else at)
    updates = [e for e in events if e.type != "opened"]
    last_at = events[-1].occurred_at if events else opened_at
    team, category, severity, status = None, None, None, None
    teams: list[str] = []
    status_changes = waits = team_changes = team_returns = severity_changes = reopens = 0
    waiting_s = paused_s = 0.0
    since = opened_at
    for e in events:
        if status is not None and status not in WORKING_STATUSES | FINAL_STATUSES:
            waiting_s += (e.occurred_at - since).total_seconds()
            if status in terms.pause_statuses:
                paused_s += (e.occurred_at - since).total_seconds()
        since = e.occurred_at
        if e.type == "severity_changed" and severity is not None and e.severity != severity:
            severity_changes += 1
        severity = e.severity or severity
        if e.type == "reopened":
            reopens += 1
        new_status = e.status if e.type == "reopened" else (e.status or status)
        if new_status != status and e.type != "opened":
            status_changes += 1
            if new_status not in WORKING_STATUSES | FINAL_STATUSES:
                waits += 1
        status = new_status
        category = e.category or category
        if e.team and e.team != team:
            if team is not None:
                team_changes += 1
                team_returns += e.team in teams  # ping-pong: back to a team that had it
            teams.append(e.team)
            team = e.team
    if status is not None and status not in WORKING_STATUSES | FINAL_STATUSES:
        waiting_s += (at - since).total_seconds()
        if status in terms.pause_statuses:
            paused_s += (at - since).total_seconds()
    local_open, local_now = opened_at.astimezone(zone), at.astimezone(zone)
    return {
        "severity_rank": SEVERITY_RANK.get(severity or ""),
        "age_h": (at - opened_at).total_seconds() / HOUR,
        "open_hour_of_week": float(local_open.weekday() * 24 + local_open.hour),
        "hour_of_week": float(local_now.weekday() * 24 + local_now.hour),
        "updates": float(len(updates)),
        "updates_24h": float(
            sum((at - e.occurred_at).total_seconds() <= 24 * HOUR for e in updates)
        ),
        "since_update_h": (at - last_at).total_seconds() / HOUR,
        "status_changes": float(status_changes),
        "waits": float(waits),
        "waiting_h": waiting_s / HOUR,
        "paused_h": paused_s / HOUR,
        "team_changes": float(team_changes),
        "teams_seen": float(len(set(teams))),
        "team_returns": float(team_returns),
        "severity_changes": float(severity_changes),
        "reopens": float(reopens),
        "severity": severity,
        "status": status,
        "category": category,
        "team": team,
        "opening_team": teams[0] if teams else None,
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
