"""`ledger.reconcile_changes` (what a resumed step uses) gives what the full `reconcile` gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sla_stream.core.engine import ALERT_ORDER
from sla_stream.core.ledger import (
    AlertBody,
    AlertSlot,
    Ident,
    Ledger,
    OutcomeBody,
    reconcile,
    reconcile_changes,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
IDENT = Ident("INC-1", "acme", "cust", "gold", T0)
KEYS = ["first_response", "resolution", "update#1", "update#2"]
SLOTS: list[AlertSlot] = [
    (key, kind, threshold)
    for key in KEYS
    for kind, threshold in [
        ("warning", 0.5),
        ("warning", 0.75),
        ("breach", 1.0),
        ("met", None),
        ("stopped", None),
    ]
]
MINUTES = st.sampled_from([0, 0, 10, 30, 90])


@st.composite
def alert_bodies(draw: st.DrawFn) -> dict[AlertSlot, AlertBody]:
    slots = draw(st.lists(st.sampled_from(SLOTS), unique=True, max_size=8))
    return {s: _alert(s, draw(MINUTES), draw(st.sampled_from([60.0, 120.0]))) for s in slots}


@st.composite
def outcome_bodies(draw: st.DrawFn) -> dict[str, OutcomeBody]:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=4))
    return {k: _outcome(k, draw(MINUTES), draw(st.booleans())) for k in keys}


def _alert(slot: AlertSlot, minute: int, elapsed_s: float) -> AlertBody:
    at = T0 + timedelta(minutes=minute)
    return AlertBody(*slot, "P2", 3600.0, elapsed_s, at, at, "C-1", "Response")


def _outcome(key: str, minute: int, met: bool) -> OutcomeBody:
    at = T0 + timedelta(minutes=minute)
    return OutcomeBody(key, "P2", 3600.0, 60.0 * minute, met, at if met else None, at, None, None)


@settings(max_examples=300, deadline=None)
@given(
    first_alerts=alert_bodies(),
    first_outcomes=outcome_bodies(),
    mid_alerts=alert_bodies(),
    later_alerts=alert_bodies(),
    later_outcomes=outcome_bodies(),
    removed=st.lists(st.sampled_from(SLOTS), unique=True, max_size=4),
    data=st.data(),
)
def test_changes_only_reconcile_equals_the_full_diff(
    first_alerts: dict[AlertSlot, AlertBody],
    first_outcomes: dict[str, OutcomeBody],
    mid_alerts: dict[AlertSlot, AlertBody],
    later_alerts: dict[AlertSlot, AlertBody],
    later_outcomes: dict[str, OutcomeBody],
    removed: list[AlertSlot],
    data: st.DataObject,
) -> None:
    """A published ledger (revised once, so slots have revisions), then a step that puts and
    removes alerts and outcomes, noting what each held before as a resumed fold does: both
    diffs give the same ledger and effects."""
    cause_at = T0 + timedelta(minutes=45)
    ledger = Ledger()
    for alerts, outcomes in [(first_alerts, first_outcomes), (mid_alerts, first_outcomes)]:
        ledger = reconcile(ledger, alerts, outcomes, {}, T0, IDENT, ALERT_ORDER).ledger
    alerts, outcomes = ledger.live_alerts(), ledger.live_outcomes()
    alerts_before: dict[AlertSlot, AlertBody | None] = {}
    outcomes_before: dict[str, OutcomeBody | None] = {}
    removed_at = {}
    for slot in removed:
        alerts_before.setdefault(slot, alerts.get(slot))
        if alerts.pop(slot, None) is not None:
            removed_at[slot] = T0 + timedelta(minutes=data.draw(MINUTES))
    for slot, body in later_alerts.items():
        alerts_before.setdefault(slot, alerts.get(slot))
        alerts[slot] = body
        removed_at.pop(slot, None)
    for key, outcome in later_outcomes.items():
        outcomes_before.setdefault(key, outcomes.get(key))
        if data.draw(st.booleans()):
            outcomes[key] = outcome
        else:
            outcomes.pop(key, None)
    full = reconcile(ledger, alerts, outcomes, removed_at, cause_at, IDENT, ALERT_ORDER)
    changed = reconcile_changes(
        ledger, alerts, outcomes, alerts_before, outcomes_before, removed_at, cause_at, IDENT,
        ALERT_ORDER,
    )  # fmt: skip
    assert changed.ledger == full.ledger
    assert [a.to_json() for a in changed.alerts] == [a.to_json() for a in full.alerts]
    assert [o.to_json() for o in changed.outcomes] == [o.to_json() for o in full.outcomes]
