"""A realistic synthetic stream of incident events, deterministic for a seed.

Incidents arrive as a Poisson process. Each gets a contract (among those in force when it
opens), a severity from a mix, a team whose response and resolution times are log-normal
(scaled by severity), and sometimes a pause for customer input, a severity change, a reopen, a
cancellation. P1 and P2 incidents get customer updates (`updated`) at log-normal intervals from
the response to the resolution. Events are yielded in arrival order; a few arrive late (out of
order) and a few twice (same `event_id`). No wall clock: time starts at `start` and is
simulated.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sla_stream.core.models import IncidentEvent
from sla_stream.core.terms import ContractRecord

DEFAULT_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
DEFAULT_CONTRACTS = Path(__file__).resolve().parents[1] / "examples" / "contracts.yaml"
FALLBACK_CONTRACT_IDS = ("nordwind-logistik-msa", "hudson-health-ssa", "brightline-retail-2025")
DEMO_CONTRACT = "demo"


@dataclass(frozen=True)
class Team:
    category: str
    respond_median_s: float
    resolve_median_s: float


@dataclass(frozen=True)
class Profile:
    """Shape of a stream: arrivals, severity mix, team times and how often the unusual happens."""

    rate_per_hour: float
    severity_weights: tuple[float, float, float, float]  # P1..P4
    severity_speed: tuple[float, float, float, float]  # multiplies a team's medians
    teams: dict[str, Team]
    sigma: float = 0.9  # of log(duration)
    pause_median_s: float = 3 * 3600
    reopen_after_median_s: float = 4 * 3600
    close_after_median_s: float = 24 * 3600
    p_cancel: float = 0.02
    p_pause: float = 0.18
    p_severity_change: float = 0.06
    p_reopen: float = 0.04
    p_close: float = 0.85
    p_duplicate: float = 0.003
    p_late: float = 0.004
    late_median_s: float = 1200
    update_median_s: float | None = None  # between customer updates while P1/P2; None: none


REALISTIC = Profile(
    rate_per_hour=8.0,
    severity_weights=(0.03, 0.12, 0.45, 0.40),
    severity_speed=(0.12, 0.3, 1.0, 1.6),
    teams={
        "service-desk": Team("access", 35 * 60, 10 * 3600),
        "network": Team("network", 50 * 60, 18 * 3600),
        "database": Team("data", 80 * 60, 24 * 3600),
        "application": Team("software", 45 * 60, 16 * 3600),
        "workplace": Team("hardware", 105 * 60, 32 * 3600),
    },
    sigma=1.0,
    update_median_s=40 * 60,
)
# Windows of tens of seconds (the `demo` contract) so a live demo shows every kind within minutes.
DEMO = Profile(
    rate_per_hour=900.0,
    severity_weights=(0.25, 0.35, 0.25, 0.15),
    severity_speed=(0.6, 0.8, 1.0, 1.2),
    teams={"demo-desk": Team("demo", 25.0, 80.0), "demo-ops": Team("demo", 40.0, 120.0)},
    sigma=0.5,
    pause_median_s=20.0,
    reopen_after_median_s=20.0,
    close_after_median_s=60.0,
    p_cancel=0.05,
    p_pause=0.25,
    p_severity_change=0.15,
    p_reopen=0.1,
    p_close=0.9,
    p_duplicate=0.01,
    p_late=0.02,
    late_median_s=10.0,
)
SEVERITIES = ("P1", "P2", "P3", "P4")


def iter_timed_events(
    incidents: int,
    seed: int,
    start: datetime = DEFAULT_START,
    rate_per_hour: float | None = None,
    contracts: dict[str, ContractRecord] | None = None,
    demo: bool = False,
) -> Iterator[tuple[datetime, IncidentEvent]]:
    """(arrival instant, event) in arrival order; a paced feed sleeps until each arrival."""
    profile = DEMO if demo else REALISTIC
    rng = random.Random(seed)
    picker = _ContractPicker(contracts, demo)
    rate = rate_per_hour or profile.rate_per_hour
    pending: list[tuple[datetime, int, IncidentEvent]] = []
    seq = 0
    opened_at = start
    for index in range(incidents):
        opened_at += timedelta(seconds=round(rng.expovariate(rate / 3600.0)))  # to the second
        while pending and pending[0][0] <= opened_at:
            arrival, _, event = heapq.heappop(pending)
            yield arrival, event
        contract_id = picker.pick(rng, opened_at)
        for arrival, event in _incident(
            rng, profile, f"INC-{seed}-{index + 1:07d}", contract_id, opened_at
        ):
            seq += 1
            heapq.heappush(pending, (arrival, seq, event))
    while pending:
        arrival, _, event = heapq.heappop(pending)
        yield arrival, event


def iter_events(
    incidents: int,
    seed: int,
    start: datetime = DEFAULT_START,
    rate_per_hour: float | None = None,
    contracts: dict[str, ContractRecord] | None = None,
    demo: bool = False,
) -> Iterator[IncidentEvent]:
    """The events of `iter_timed_events`, without their arrival instants."""
    for _, event in iter_timed_events(incidents, seed, start, rate_per_hour, contracts, demo):
        yield event


class _ContractPicker:
    def __init__(self, contracts: dict[str, ContractRecord] | None, demo: bool) -> None:
        self.contracts = contracts or {}
        if demo:
            self.ids: tuple[str, ...] = (DEMO_CONTRACT,)
        elif self.contracts:
            self.ids = tuple(sorted(c for c in self.contracts if c != DEMO_CONTRACT))
        else:
            self.ids = FALLBACK_CONTRACT_IDS

    def pick(self, rng: random.Random, at: datetime) -> str:
        in_force = [
            c
            for c in self.ids
            if c not in self.contracts or self.contracts[c].for_incident_opened_at(at) is not None
        ]
        return rng.choice(in_force or list(self.ids))


def _incident(
    rng: random.Random, p: Profile, incident_id: str, contract_id: str, t0: datetime
) -> list[tuple[datetime, IncidentEvent]]:
    """One incident's life as (arrival, event), arrival = occurred_at unless late or repeated."""
    severity = rng.choices(SEVERITIES, weights=p.severity_weights)[0]
    team_name = rng.choice(sorted(p.teams))
    team = p.teams[team_name]
    speed = p.severity_speed[SEVERITIES.index(severity)]
    life: list[tuple[float, str, dict[str, Any]]] = [
        (0.0, "opened", {"contract_id": contract_id, "severity": severity, "status": "new"})
    ]
    respond_s = _lognormal(rng, team.respond_median_s * speed, p.sigma)
    resolve_s = respond_s + _lognormal(rng, team.resolve_median_s * speed, p.sigma)
    if rng.random() < p.p_cancel:
        cancel_s = _lognormal(rng, respond_s, 0.7)
        if respond_s < cancel_s:
            life.append((respond_s, "responded", {"status": "in_progress"}))
        life.append((cancel_s, "cancelled", {}))
        return _emit(rng, p, incident_id, team_name, team, t0, life)
    life.append((respond_s, "responded", {"status": "in_progress"}))
    if rng.random() < p.p_severity_change:
        index = SEVERITIES.index(severity)
        step = -1 if rng.random() < 0.65 else 1  # raising is the commoner change
        new = SEVERITIES[min(max(index + step, 0), 3)]
        if new != severity:
            at = rng.uniform(0.05, 0.8) * resolve_s
            life.append((at, "severity_changed", {"severity": new}))
    if rng.random() < p.p_pause:
        paused_at = rng.uniform(respond_s, resolve_s)
        wait = _lognormal(rng, p.pause_median_s, 1.0)
        life.append((paused_at, "status_changed", {"status": "pending_customer"}))
        life.append((paused_at + wait, "status_changed", {"status": "in_progress"}))
        resolve_s += wait
    life.append((resolve_s, "resolved", {"status": "resolved"}))
    end = resolve_s
    if rng.random() < p.p_reopen:
        reopened = end + _lognormal(rng, p.reopen_after_median_s, 0.8)
        end = reopened + _lognormal(rng, team.resolve_median_s * speed * 0.3, p.sigma)
        life.append((reopened, "reopened", {"status": "in_progress"}))
        life.append((end, "resolved", {"status": "resolved"}))
    if rng.random() < p.p_close:
        life.append((end + _lognormal(rng, p.close_after_median_s, 0.5), "closed", {}))
    out = _emit(rng, p, incident_id, team_name, team, t0, life)
    if p.update_median_s is not None and severity in ("P1", "P2"):
        out += _updates(p.update_median_s, incident_id, team_name, team, t0, respond_s, resolve_s)
    return out


def _updates(
    median_s: float,
    incident_id: str,
    team_name: str,
    team: Team,
    t0: datetime,
    respond_s: float,
    resolve_s: float,
) -> list[tuple[datetime, IncidentEvent]]:
    """Customer updates between the response and the resolution, each on time. Their own random
    stream (seeded by the incident), so the rest of the stream is what it was without them."""
    rng = random.Random(f"{incident_id}/{respond_s!r}")
    out = []
    at_s = respond_s + _lognormal(rng, median_s, 0.5)
    while at_s < resolve_s and len(out) < 200:
        at = t0 + timedelta(seconds=round(at_s))
        event = IncidentEvent(
            event_id=f"{incident_id}-u{len(out) + 1}",
            incident_id=incident_id,
            type="updated",
            occurred_at=at,
            category=team.category,
            team=team_name,
            source="generator",
        )
        out.append((at, event))
        at_s += _lognormal(rng, median_s, 0.5)
    return out


def _emit(
    rng: random.Random,
    p: Profile,
    incident_id: str,
    team_name: str,
    team: Team,
    t0: datetime,
    life: list[tuple[float, str, dict[str, Any]]],
) -> list[tuple[datetime, IncidentEvent]]:
    out = []
    life.sort(key=lambda step: step[0])
    for number, (offset_s, kind, fields) in enumerate(life, start=1):
        at = t0 + timedelta(seconds=max(1, round(offset_s)) if offset_s else 0)
        event = IncidentEvent(
            event_id=f"{incident_id}-{number}",
            incident_id=incident_id,
            type=kind,  # type: ignore[arg-type]
            occurred_at=at,
            category=team.category,
            team=team_name,
            source="generator",
            **fields,
        )
        arrival = at
        if kind != "opened" and rng.random() < p.p_late:
            arrival = at + timedelta(seconds=_lognormal(rng, p.late_median_s, 1.0))
        out.append((arrival, event))
        if rng.random() < p.p_duplicate:
            out.append((arrival + timedelta(seconds=rng.uniform(1, 600)), event))
    return out


def _lognormal(rng: random.Random, median_s: float, sigma: float) -> float:
    return rng.lognormvariate(0.0, sigma) * median_s
