"""Adherence given staffing: a monotone gradient-boosted model of first response, fitted on history.

Each incident is one example: did it leave `new` within `within_s` of opening? Its features are
what a planner knows or chooses for the hour it arrived in: its team's usual rate (fitted on the
training window) , hour of day and weekday, severity, the agents active
in its team and on the whole desk that hour (and in the team over the next hour, the window a
response must fall in), the arrivals to its team and desk that hour, and the team's carry-over
backlog (incidents not yet answered) at the start of that hour, and the minute it arrived in.
A cell's predicted adherence is the mean of its incidents' probabilities.

Why not a queue: on the ServiceNow desk, first response within 1 h is 63 % in business hours and
58 % off hours although arrivals and active agents differ ~10x; the desk triages a backlog, and
Erlang C's best fit misses hour-of-week cells by ~38 points. The model learns that from data.

More agents never lower a prediction: scikit-learn's `monotonic_cst` holds the model
non-decreasing in both staffing features and non-increasing in both arrival features, and a
what-if adds an agent to the team's and the desk's count alike.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from sla_stream.analytics.capacity_history import History, IncidentRecord, hour_index, hour_start

FEATURES = (
    "team_rate",
    "hour_of_day",
    "weekday",
    "severity",
    "team_agents",
    "desk_agents",
    "team_arrivals",
    "desk_arrivals",
    "team_backlog",
    "team_agents_next_hour",
    "team_agents_within_2h",
    "minute_of_hour",
)
MONOTONE = (0, 0, 0, 0, 1, 1, -1, -1, -1, 1, 1, 0)
# Derived from the columns above inside the model, so a what-if changes them consistently.
DERIVED_MONOTONE = (-1,)
TEAM_AGENTS, DESK_AGENTS, TEAM_ARRIVALS, DESK_ARRIVALS, TEAM_BACKLOG = 4, 5, 6, 7, 8
NEXT_HOUR_AGENTS, WITHIN_2H_AGENTS = 9, 10
PRIOR_WEIGHT = 20.0  # pseudo-incidents pulling a small team's rate toward the desk's
SEVERITY_RANK = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}


def met(record: IncidentRecord, within_s: float) -> bool:
    return record.response_s is not None and record.response_s <= within_s


def iso_week(at: datetime) -> tuple[int, int]:
    year, week, _ = at.isocalendar()
    return year, week


def previous_week(week: tuple[int, int]) -> tuple[int, int]:
    year, number, _ = (date.fromisocalendar(week[0], week[1], 1) - timedelta(days=7)).isocalendar()
    return year, number


@dataclass
class Rates:
    """First-response rates known before a prediction: per team overall, and per team-week."""

    desk: float
    team: dict[str, float]
    team_week: dict[tuple[str, tuple[int, int]], tuple[int, int]]  # (met, all)

    def of_team(self, team: str) -> float:
        return self.team.get(team, self.desk)

    def last_week(self, team: str, week: tuple[int, int]) -> float:
        """The team's rate the week before, pulled toward its usual rate when there were few."""
        hit, total = self.team_week.get((team, previous_week(week)), (0, 0))
        prior = self.of_team(team)
        return (hit + PRIOR_WEIGHT * prior) / (total + PRIOR_WEIGHT)


def rates(
    records: list[IncidentRecord], all_records: list[IncidentRecord], within_s: float
) -> Rates:
    """Team rates from `records` (the training window); week rates from every record."""
    hits, totals = Counter(), Counter()
    for r in records:
        totals[r.team] += 1
        hits[r.team] += met(r, within_s)
    desk = sum(hits.values()) / max(1, sum(totals.values()))
    team = {t: (hits[t] + PRIOR_WEIGHT * desk) / (totals[t] + PRIOR_WEIGHT) for t in totals}
    week: dict[tuple[str, tuple[int, int]], list[int]] = defaultdict(lambda: [0, 0])
    for r in all_records:
        cell = week[(r.team, iso_week(r.opened_at))]
        cell[0] += met(r, within_s)
        cell[1] += 1
    return Rates(desk, team, {k: (v[0], v[1]) for k, v in week.items()})


class Load:
    """Arrivals, active agents and unanswered backlog per team and per desk, by clock hour."""

    def __init__(self, history: History):
        self.history = history
        self.desk_agents = history.desk_staffing()
        self.team_arrivals: Counter[tuple[str, int]] = Counter()
        self.desk_arrivals: Counter[int] = Counter()
        by_team: dict[str, list[IncidentRecord]] = defaultdict(list)
        for r in history.incidents:
            hour = hour_index(r.opened_at)
            self.team_arrivals[(r.team, hour)] += 1
            self.desk_arrivals[hour] += 1
            by_team[r.team].append(r)
        # Carry-over: a team's incidents opened and not yet answered, as sorted instants.
        self._opened = {
            t: np.sort([r.opened_at.timestamp() for r in rs]) for t, rs in by_team.items()
        }
        self._answered = {
            t: np.sort([(r.responded_at or r.opened_at).timestamp() for r in rs])
            for t, rs in by_team.items()
        }

    def backlog(self, team: str, at: datetime) -> int:
        """The team's incidents opened before `at` and not answered by then."""
        if team not in self._opened:
            return 0
        t = at.timestamp()
        begun = np.searchsorted(self._opened[team], t, "left")
        answered = np.searchsorted(self._answered[team], t, "right")
        return max(0, int(begun - answered))

    def agents_within(self, team: str, hour: int, hours: int) -> int:
        if self.history.roster is not None:
            return max(self.history.staffing(team, h) for h in range(hour, hour + hours))
        ids: set[str] = set()
        for h in range(hour, hour + hours):
            ids |= self.history.actors.get((team, h), set())
        return len(ids)


def feature_rows(records: list[IncidentRecord], load: Load, known: Rates) -> np.ndarray:
    """One row of `FEATURES` per record, from the hour it arrived in."""
    zone = load.history.zone
    rows = np.empty((len(records), len(FEATURES)), dtype=float)
    for i, r in enumerate(records):
        hour = hour_index(r.opened_at)
        local = r.opened_at.astimezone(zone)
        rows[i] = (
            known.of_team(r.team),
            local.hour,
            local.weekday(),
            SEVERITY_RANK.get(r.severity, 3),
            load.history.staffing(r.team, hour),
            load.desk_agents.get(hour, 0),
            load.team_arrivals[(r.team, hour)],
            load.desk_arrivals[hour],
            load.backlog(r.team, hour_start(hour)),
            load.history.staffing(r.team, hour + 1),
            load.agents_within(r.team, hour, 2),
            local.minute,
        )
    return rows


def with_agents(rows: np.ndarray, agents: np.ndarray | float) -> np.ndarray:
    """The same incidents had their team had `agents` in their arrival hour (what-if).

    Only that hour changes: the carry-over backlog at its start and the next hour's agents are
    what the hours around it left, as in the simulated truth (`capacity_sim.right_staffing`).
    Every changed column is non-decreasing in `agents`, so predictions are too.
    """
    changed = rows.copy()
    delta = agents - changed[:, TEAM_AGENTS]
    changed[:, TEAM_AGENTS] = agents
    changed[:, WITHIN_2H_AGENTS] = np.maximum.reduce(
        [changed[:, WITHIN_2H_AGENTS] + delta, changed[:, NEXT_HOUR_AGENTS], agents + 0 * delta]
    )
    changed[:, DESK_AGENTS] = np.maximum(changed[:, DESK_AGENTS] + delta, agents)
    return changed


def design(rows: np.ndarray) -> np.ndarray:
    """`rows` and the team's arrivals per agent in the hour, the load each agent faces.

    A busy agent answers like another whatever the hour: the ratio lets what the model learnt
    at one staffing and load carry to another with the same load per agent (without it, a
    simulated desk's recommendations fell to 1 agent where 3 were needed, docs/capacity.md).
    """
    per_agent = rows[:, TEAM_ARRIVALS] / np.maximum(rows[:, TEAM_AGENTS], 1.0)
    return np.column_stack([rows, per_agent])


def labels(records: list[IncidentRecord], within_s: float) -> np.ndarray:
    return np.array([met(r, within_s) for r in records], dtype=int)


class AdherenceModel:
    """P(first response within `within_s`) per incident; monotone in staffing and arrivals."""

    def __init__(self, within_s: float = 3600.0, seed: int = 0):
        self.within_s = within_s
        self.classifier = HistGradientBoostingClassifier(
            max_iter=200,
            learning_rate=0.05,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            monotonic_cst=list(MONOTONE + DERIVED_MONOTONE),
            random_state=seed,
        )

    def fit(self, rows: np.ndarray, y: np.ndarray) -> AdherenceModel:
        if len(set(y.tolist())) < 2:
            raise ValueError("the training window needs both met and missed first responses")
        self.classifier.fit(design(rows), y)
        return self

    def predict(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.empty(0)
        return self.classifier.predict_proba(design(rows))[:, 1]
