"""What is known about an incident at the instant it opens, and its first response from that.

The staffing model (`capacity_model.AdherenceModel`) sees only a cell's arrivals and agents, so
its chances are blunt (AUC about 0.74) and a cell's forecast cannot beat the noise of a rate.
`IncidentModel` adds, for each incident at its open instant t:

- **its opening facts** (`capacity_history.OPENING_FACTS`, coded when the fit window has at
  least `MIN_CODED` incidents with the value): what was logged about the request (channel,
  category, subcategory, symptom, location, impact, urgency, who opened the form);
- **the live state of its team and of the desk at t**, from other incidents' events dated
  strictly before t: incidents still `new`, arrivals and first responses in the last hour (and
  15 minutes), hours since the last first response, and the first-response rate of the
  incidents opened in the 7 days before t whose outcome was settled at t (opened at least
  `within_s` before t);
- **the record of earlier incidents sharing a fact** (same opener, caller, location, category,
  subcategory, symptom, channel): their first-response rate and how many, settled at t alike.

Never read: the opening row's state, assignee or saver (the response itself for the third of
the log's incidents saved past `new`), nor anything known only later (reassignments, update
counts, closure fields). Responses are counted strictly before t because an incident saved past
`new` in its opening minute has its own response dated t.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import lightgbm as lgb
import numpy as np

from sla_stream.analytics.capacity_history import History, IncidentRecord
from sla_stream.analytics.capacity_model import design

HOUR_S = 3600.0
WEEK_S = 7 * 86400.0
LIVE_FEATURES = (
    "new_backlog",
    "arrivals_1h",
    "responses_1h",
    "responses_15m",
    "since_response_h",
    "rate_7d",
    "settled_7d",
)
HISTORY_FACTS = (
    "opened_by",
    "caller_id",
    "location",
    "category",
    "subcategory",
    "u_symptom",
    "contact_type",
)
CODED_FACTS = (
    "contact_type",
    "category",
    "subcategory",
    "u_symptom",
    "location",
    "opened_by",
    "impact",
    "urgency",
)
MIN_CODED = 30  # incidents in the fit window for a fact's value to get its own code
RATE_PRIOR, RATE_WEIGHT = 0.5, 10.0  # a 7-day rate with few settled incidents leans to 50 %
FACT_WEIGHT = 5.0  # pseudo-incidents for a fact's rate
SINCE_CAP_H = 72.0
MISSING = "?"


def _live(opened: np.ndarray, responded: np.ndarray, met: np.ndarray, within_s: float):
    """`LIVE_FEATURES` of a group of incidents at each one's open instant."""
    t = opened
    starts = np.sort(opened)
    answers = np.sort(responded[np.isfinite(responded)])
    begun = np.searchsorted(starts, t, "left")
    answered = np.searchsorted(answers, t, "left")  # strictly before t: never its own response
    last = answers[np.maximum(answered - 1, 0)]
    since = np.where(answered > 0, (t - last) / HOUR_S, SINCE_CAP_H)
    order = np.argsort(opened, kind="stable")
    hits = np.concatenate([[0], np.cumsum(met[order])])
    settled = np.searchsorted(starts, t - within_s, "right")
    week_ago = np.searchsorted(starts, t - WEEK_S, "left")
    count = np.maximum(settled - week_ago, 0)
    rate = (hits[settled] - hits[np.minimum(week_ago, settled)] + RATE_PRIOR * RATE_WEIGHT) / (
        count + RATE_WEIGHT
    )
    return np.column_stack(
        [
            np.maximum(begun - answered, 0),
            begun - np.searchsorted(starts, t - HOUR_S, "left"),
            answered - np.searchsorted(answers, t - HOUR_S, "left"),
            answered - np.searchsorted(answers, t - 900.0, "left"),
            np.minimum(since, SINCE_CAP_H),
            rate,
            count,
        ]
    )


def _fact_record(opened: np.ndarray, met: np.ndarray, within_s: float) -> np.ndarray:
    """Rate and log count of the group's incidents settled at each one's open instant."""
    order = np.argsort(opened, kind="stable")
    starts = opened[order]
    hits = np.concatenate([[0], np.cumsum(met[order])])
    settled = np.searchsorted(starts, opened - within_s, "right")
    rate = (hits[settled] + RATE_PRIOR * FACT_WEIGHT) / (settled + FACT_WEIGHT)
    return np.column_stack([rate, np.log1p(settled)])


class OpenState:
    """The live and fact-record columns of every incident of a history, at its open instant."""

    def __init__(self, history: History, within_s: float = 3600.0):
        records = history.incidents
        self.position = {r.incident_id: i for i, r in enumerate(records)}
        opened = np.array([r.opened_at.timestamp() for r in records], dtype=float)
        responded = np.array(
            [r.responded_at.timestamp() if r.responded_at else np.inf for r in records]
        )
        met = (responded - opened <= within_s).astype(float)
        width = 2 * len(LIVE_FEATURES) + 2 * len(HISTORY_FACTS)
        self.columns = np.zeros((len(records), width))
        groups: dict[Any, list[int]] = defaultdict(list)
        for i, r in enumerate(records):
            groups[("team", r.team)].append(i)
            for k in HISTORY_FACTS:
                groups[(k, r.facts.get(k, MISSING))].append(i)
        live = len(LIVE_FEATURES)
        for (kind, _), members in groups.items():
            index = np.array(members)
            if kind == "team":
                self.columns[index, :live] = _live(
                    opened[index], responded[index], met[index], within_s
                )
            else:
                at = 2 * live + 2 * HISTORY_FACTS.index(kind)
                self.columns[index, at : at + 2] = _fact_record(opened[index], met[index], within_s)
        if len(records):
            self.columns[:, live : 2 * live] = _live(opened, responded, met, within_s)

    def rows(self, records: list[IncidentRecord]) -> np.ndarray:
        return self.columns[[self.position[r.incident_id] for r in records]]


class FactCodes:
    """Integer codes of `CODED_FACTS` values seen at least `MIN_CODED` times in the fit window."""

    def __init__(self, records: list[IncidentRecord]):
        self.codes: list[dict[str, int]] = []
        for k in CODED_FACTS:
            counts: dict[str, int] = defaultdict(int)
            for r in records:
                counts[r.facts.get(k, MISSING)] += 1
            common = sorted(v for v, n in counts.items() if n >= MIN_CODED)
            self.codes.append({v: i for i, v in enumerate(common)})

    def rows(self, records: list[IncidentRecord]) -> np.ndarray:
        """One code per fact; every rare or unseen value shares the last code."""
        return np.array(
            [
                [
                    codes.get(r.facts.get(k, MISSING), len(codes))
                    for k, codes in zip(CODED_FACTS, self.codes, strict=True)
                ]
                for r in records
            ],
            dtype=float,
        ).reshape(len(records), len(CODED_FACTS))


class IncidentModel:
    """P(first response within `within_s`) from the staffing features and what is known at open.

    LightGBM (a categorical split per coded fact). It forecasts cells it is given; what-ifs on
    staffing stay with the monotone staffing model (monotone constraints here cost validation
    accuracy: 7.87 / 10.55 against 7.54 / 10.56, docs/capacity.md).
    """

    def __init__(self, state: OpenState, seed: int = 0):
        self.state = state
        self.facts: FactCodes | None = None
        self.classifier: lgb.LGBMClassifier | None = None
        self.seed = seed

    def _design(self, records: list[IncidentRecord], staffing_rows: np.ndarray) -> np.ndarray:
        assert self.facts is not None
        return np.hstack(
            [design(staffing_rows), self.state.rows(records), self.facts.rows(records)]
        )

    def fit(
        self, records: list[IncidentRecord], staffing_rows: np.ndarray, y: np.ndarray
    ) -> IncidentModel:
        if len(set(y.tolist())) < 2:
            raise ValueError("the training window needs both met and missed first responses")
        self.facts = FactCodes(records)
        x = self._design(records, staffing_rows)
        coded = list(range(x.shape[1] - len(CODED_FACTS), x.shape[1]))
        self.classifier = lgb.LGBMClassifier(
            objective="binary",
            n_estimators=400,
            learning_rate=0.03,
            num_leaves=15,
            min_child_samples=40,
            reg_lambda=1.0,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            cat_smooth=20,
            min_data_per_group=MIN_CODED,
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
        )
        self.classifier.fit(x, y, categorical_feature=coded)
        return self

    def predict(self, records: list[IncidentRecord], staffing_rows: np.ndarray) -> np.ndarray:
        if self.classifier is None:
            raise RuntimeError("fit the model first")
        if not records:
            return np.empty(0)
        return self.classifier.predict_proba(self._design(records, staffing_rows))[:, 1]
