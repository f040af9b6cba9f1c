"""The incident model reads only what is known at an incident's open instant, and learns from it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from sla_stream.analytics.capacity_history import (
    OPENING_FACTS,
    History,
    IncidentRecord,
    history_from_events,
)
from sla_stream.analytics.capacity_model import Load, feature_rows, labels, rates
from sla_stream.analytics.capacity_open import (
    CODED_FACTS,
    HISTORY_FACTS,
    LIVE_FEATURES,
    MIN_CODED,
    FactCodes,
    IncidentModel,
    OpenState,
)
from sla_stream.core.models import IncidentEvent

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ZONE = UTC
LIVE = {name: i for i, name in enumerate(LIVE_FEATURES)}  # the team's columns come first


def record(n: int, opened_min: float, responded_min: float | None, **facts: str) -> IncidentRecord:
    opened = T0 + timedelta(minutes=opened_min)
    responded = None if responded_min is None else T0 + timedelta(minutes=responded_min)
    return IncidentRecord(f"i{n}", "A", "P3", "c", opened, responded, None, facts)


def history(records: list[IncidentRecord]) -> History:
    return History(zone=ZONE, incidents=sorted(records, key=lambda r: r.opened_at))


def team_live(records: list[IncidentRecord], target: str) -> dict[str, float]:
    h = history(records)
    row = OpenState(h).rows([r for r in h.incidents if r.incident_id == target])[0]
    return {name: float(row[i]) for name, i in LIVE.items()}


def test_an_incident_answered_in_its_opening_minute_does_not_count_its_own_response() -> None:
    # i2 is saved past `new` in the minute it opened: its response is dated at its open instant.
    base = [record(1, 0, 30), record(2, 90, 90)]
    live = team_live(base, "i2")
    assert live["responses_15m"] == 0 and live["responses_1h"] == 1
    assert live["since_response_h"] == pytest.approx(1.0)
    assert live["new_backlog"] == 0 and live["arrivals_1h"] == 0


def test_outcomes_not_settled_at_the_open_instant_are_not_read() -> None:
    # i1 opened 30 min before i3: whether it is answered within the hour is not known yet.
    slow = team_live([record(1, 0, 200), record(3, 30, None)], "i3")
    fast = team_live([record(1, 0, 45), record(3, 30, None)], "i3")
    assert slow["rate_7d"] == fast["rate_7d"] and slow["settled_7d"] == 0
    # 70 minutes after i1 opened its outcome is settled, and it is read.
    slow = team_live([record(1, 0, 200), record(3, 70, None)], "i3")
    fast = team_live([record(1, 0, 45), record(3, 70, None)], "i3")
    assert slow["settled_7d"] == fast["settled_7d"] == 1
    assert fast["rate_7d"] > slow["rate_7d"]
    # ...but a response after i3 opened is not: i1 still counts as waiting in `new`.
    assert slow["new_backlog"] == 1 and fast["new_backlog"] == 0


def test_later_incidents_never_change_an_earlier_incidents_features() -> None:
    draw = random.Random(4)
    delays = [draw.choice([0, 20, 90, None]) for _ in range(40)]
    records = [
        record(n, 7 * n, None if d is None else 7 * n + d, opened_by=f"o{n % 3}")
        for n, d in enumerate(delays)
    ]
    early = history(records[:25])
    later = history(records)
    first_25 = early.incidents
    assert np.array_equal(OpenState(early).rows(first_25), OpenState(later).rows(first_25))


def test_only_whitelisted_opening_facts_reach_a_record() -> None:
    opened = IncidentEvent(
        event_id="e1",
        incident_id="i1",
        type="opened",
        occurred_at=T0,
        contract_id="c",
        severity="P3",
        category="Category 7",
        team="A",
        attributes={
            "contact_type": "Phone",
            "opened_by": "Opened by 8",
            "incident_state": "Active",  # the opening row's state is the response itself
            "assigned_to": "Resolver 1",
            "sys_mod_count": 0,
            "closed_code": "code 5",
        },
    )
    facts = history_from_events([opened], ZONE).incidents[0].facts
    assert facts == {"category": "Category 7", "contact_type": "Phone", "opened_by": "Opened by 8"}
    assert set(HISTORY_FACTS) <= set(OPENING_FACTS) and set(CODED_FACTS) <= set(OPENING_FACTS)


def test_rare_and_unseen_fact_values_share_one_code() -> None:
    common = [record(n, n, n, contact_type="Phone") for n in range(MIN_CODED)]
    rare = [record(100 + n, n, n, contact_type="Email") for n in range(MIN_CODED - 1)]
    codes = FactCodes(common + rare)
    column = CODED_FACTS.index("contact_type")
    rows = codes.rows([common[0], rare[0], record(999, 0, 0, contact_type="Fax"), record(9, 0, 0)])
    assert rows[:, column].tolist() == [0.0, 1.0, 1.0, 1.0]


def opened_event(n: int, at: datetime, channel: str) -> IncidentEvent:
    return IncidentEvent(
        event_id=f"{n}:o",
        incident_id=f"i{n}",
        type="opened",
        occurred_at=at,
        contract_id="c",
        severity="P3",
        team="A",
        actor="agent",
        attributes={"contact_type": channel},
    )


def channel_desk(seed: int) -> History:
    """Phone incidents are answered in minutes, self-service ones after hours; staffing alike."""
    draw = random.Random(seed)
    events = []
    for n in range(1200):
        at = T0 + timedelta(minutes=37 * n)
        channel = draw.choice(["Phone", "Self service"])
        delay = draw.uniform(1, 50) if channel == "Phone" else draw.uniform(70, 600)
        if draw.random() < 0.1:  # and one in ten the other way round
            delay = 130 - delay if delay < 60 else draw.uniform(1, 50)
        events.append(opened_event(n, at, channel))
        events.append(
            IncidentEvent(
                event_id=f"{n}:r",
                incident_id=f"i{n}",
                type="responded",
                occurred_at=at + timedelta(minutes=delay),
                actor="agent",
            )
        )
    return history_from_events(events, ZONE)


def test_the_incident_model_learns_what_its_opening_facts_say() -> None:
    h = channel_desk(seed=1)
    train, test = h.incidents[:800], h.incidents[800:]
    load, known = Load(h), rates(train, h.incidents, 3600.0)
    model = IncidentModel(OpenState(h)).fit(
        train, feature_rows(train, load, known), labels(train, 3600.0)
    )
    p = model.predict(test, feature_rows(test, load, known))
    y = labels(test, 3600.0)
    assert roc_auc_score(y, p) > 0.85
    phone = np.array([r.facts["contact_type"] == "Phone" for r in test])
    assert p[phone].mean() > 0.75 > 0.25 > p[~phone].mean()


def test_the_incident_model_needs_both_outcomes() -> None:
    h = channel_desk(seed=2)
    train = [r for r in h.incidents if r.facts["contact_type"] == "Phone"][:50]
    rows = feature_rows(train, Load(h), rates(train, h.incidents, 3600.0))
    with pytest.raises(ValueError, match="both met and missed"):
        IncidentModel(OpenState(h)).fit(train, rows, np.ones(len(train), dtype=int))
