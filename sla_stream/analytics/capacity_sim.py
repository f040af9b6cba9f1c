"""A simulated desk (ciw): known arrivals, staffing and handle time, so the right staffing is known.

One team, time in minutes from a Monday 00:00. Arrivals are Poisson with a rate per hour of the
day; agents per hour follow a schedule (ciw `Schedule`; an agent leaving mid-incident finishes
it); an incident's first response is when an agent picks it up (first come, first served), so
incidents waiting at a shift change carry over to the next hour. `desk_events` turns a run into
incident events with the responding agent as actor; `adherence_by_hour` is the truth.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

import ciw

from sla_stream.core.models import IncidentEvent

MINUTES_PER_HOUR = 60.0


def simulate(
    rates_per_hour: Sequence[float],
    agents_per_hour: Sequence[int],
    handle_min: float,
    seed: int,
) -> list[tuple[float, float]]:
    """(arrival minute, pick-up minute) of each incident; `agents_per_hour` sets the horizon.

    `rates_per_hour` repeats daily (24 values); agents are given for every simulated hour.
    """
    hours = len(agents_per_hour)
    horizon = hours * MINUTES_PER_HOUR
    rates = [rates_per_hour[h % 24] / MINUTES_PER_HOUR for h in range(hours)]
    ends = [(h + 1) * MINUTES_PER_HOUR for h in range(hours)]
    # ciw draws PoissonIntervals' arrival dates when the network is built: seed before that.
    ciw.seed(seed)
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.PoissonIntervals(rates, ends, max_sample_date=horizon)],
        service_distributions=[ciw.dists.Exponential(rate=1.0 / handle_min)],
        number_of_servers=[
            ciw.Schedule(numbers_of_servers=list(agents_per_hour), shift_end_dates=ends)
        ],
    )
    run = ciw.Simulation(network)
    run.simulate_until_max_time(horizon + 24 * MINUTES_PER_HOUR)
    return [
        (r.arrival_date, r.service_start_date)
        for r in run.get_all_records()
        if r.arrival_date < horizon
    ]


def adherence_by_hour(
    picked: list[tuple[float, float]], within_min: float, period_hours: int = 24
) -> dict[int, float]:
    """Share picked up within `within_min`, by hour of the period of arrival."""
    hits: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for arrived, started in picked:
        cell = hits[int(arrived // MINUTES_PER_HOUR) % period_hours]
        cell[0] += started - arrived <= within_min
        cell[1] += 1
    return {h: met / total for h, (met, total) in hits.items()}


def desk_events(
    picked: list[tuple[float, float]], start: datetime, team: str = "desk", contract: str = "sim"
) -> list[IncidentEvent]:
    """Opened and responded events of a simulated run, starting at `start` (a Monday 00:00)."""
    events = []
    for i, (arrived, started) in enumerate(picked):
        incident = f"SIM{i:06d}"
        for kind, minute in (("opened", arrived), ("responded", started)):
            events.append(
                IncidentEvent(
                    event_id=f"{incident}:{kind}",
                    incident_id=incident,
                    type=kind,
                    occurred_at=start + timedelta(minutes=minute),
                    contract_id=contract,
                    severity="P3",
                    team=team,
                    source="simulation",
                )
            )
    return events


def right_staffing(
    rates_per_hour: Sequence[float],
    schedule: Sequence[int],
    handle_min: float,
    *,
    within_min: float,
    target: float,
    days: int,
    seed: int,
    max_agents: int = 20,
) -> dict[int, int]:
    """The truth: per hour of the day, the fewest agents whose simulated adherence meets `target`.

    The desk keeps its daily `schedule` (24 values) except that hour, which gets n agents on every
    one of `days` simulated days (each day one replication); the hours before it, and so its
    carry-over, are unchanged. Every run uses the same seed (common random numbers), so a
    difference between two staffings is the staffing's, not the draw's; `max_agents + 1` means
    even `max_agents` misses the target. An hour with no arrival counts as met.
    """

    def run(day: Sequence[int]) -> dict[int, float]:
        picked = simulate(rates_per_hour, list(day) * days, handle_min, seed)
        return adherence_by_hour(picked, within_min)

    base = run(schedule)
    cache = {(h, schedule[h]): base.get(h, 1.0) for h in range(24)}

    def adherence(hour: int, agents: int) -> float:
        if (hour, agents) not in cache:
            day = list(schedule)
            day[hour] = agents
            cache[(hour, agents)] = run(day).get(hour, 1.0)
        return cache[(hour, agents)]

    truth = {}
    for hour in range(24):
        n = schedule[hour]
        if adherence(hour, n) >= target:
            while n > 0 and adherence(hour, n - 1) >= target:
                n -= 1
        else:
            while n <= max_agents and adherence(hour, n) < target:
                n += 1
        truth[hour] = n
    return truth
