"""Scratch space of one engine step: clocks, and the alerts and outcomes that should be live.

`engine.py` decides what happens on each event and what each clock announces; a `Fold` only
carries the consequences (clocks, alert and outcome bodies, what was taken back and when) and,
at the end of the step, `settle`s them into the new state and its effects through
`ledger.reconcile`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sla_stream.core import clock as clk
from sla_stream.core.clock import Clock, split_key
from sla_stream.core.incident import IncidentState
from sla_stream.core.ledger import (
    AlertBody,
    AlertSlot,
    Ident,
    KindOrder,
    Ledger,
    OutcomeBody,
    Reconciled,
    reconcile,
    reconcile_changes,
)  # fmt: skip
from sla_stream.core.step import Result
from sla_stream.core.terms import ContractTerms, Target


class Fold:
    """Scratch space of one step: the incident's clocks and the alerts and outcomes that should
    be live, as the events (and the dues between them) are folded in time order."""

    def __init__(self, terms: ContractTerms) -> None:
        self.terms = terms
        self.severity: str | None = None
        self.status: str | None = None
        self.category: str | None = None
        self.team: str | None = None
        self.final: str | None = None
        self.opened = False
        self.clocks: dict[str, Clock] = {}
        # The live alerts and outcomes (`alerts`, `outcomes`): a resumed fold reads them from
        # `_ledger` when first asked (a step that announces nothing never does).
        self._alerts: dict[AlertSlot, AlertBody] | None = {}
        self._outcomes: dict[str, OutcomeBody] | None = {}
        self._ledger: Ledger | None = None
        self.removed_at: dict[AlertSlot, datetime] = {}
        self.ended: set[str] = set()  # metrics without a clock whose stop has passed
        self.answered = False  # a first response was folded
        # Resumed from a state whose ledger is the live set, and nothing announced since:
        # the ledger stands as it is.
        self.unchanged = False
        # Resumed: what each slot and metric changed since held before and holds now (None:
        # nothing), so `settle` compares only those with the ledger. None: a fold from scratch.
        self.alerts_before: dict[AlertSlot, AlertBody | None] | None = None
        self.outcomes_before: dict[str, OutcomeBody | None] | None = None
        self.alerts_after: dict[AlertSlot, AlertBody | None] = {}
        self.outcomes_after: dict[str, OutcomeBody | None] = {}

    @classmethod
    def resume(cls, state: IncidentState, terms: ContractTerms) -> Fold:
        """Continue from an evaluated state: its clocks, and its ledger as the live set."""
        fold = cls(terms)
        fold.severity, fold.status, fold.final = state.severity, state.status, state.final
        fold.category, fold.team, fold.opened = state.category, state.team, True
        fold.clocks = {c.metric: c for c in state.clocks}
        fold.ended, fold.answered = set(state.ended), state.answered
        fold._alerts = fold._outcomes = None
        fold._ledger = state.ledger
        fold.unchanged = True
        fold.alerts_before, fold.outcomes_before = {}, {}
        return fold

    @property
    def alerts(self) -> dict[AlertSlot, AlertBody]:
        """The alerts that should be live, by slot."""
        if self._alerts is None:
            assert self._ledger is not None
            self._alerts = _overlaid(self._ledger.live_alerts(), self.alerts_after)
        return self._alerts

    @property
    def outcomes(self) -> dict[str, OutcomeBody]:
        """The outcomes that should stand, by clock key."""
        if self._outcomes is None:
            assert self._ledger is not None
            self._outcomes = _overlaid(self._ledger.live_outcomes(), self.outcomes_after)
        return self._outcomes

    def target(self, metric: str, severity: str | None) -> Target | None:
        return None if severity is None else self.terms.target(metric, severity)

    def calendar(self, target: Target) -> clk.Calendar:
        return self.terms.calendar_of(target)

    def target_of(self, c: Clock) -> Target:
        target = self.terms.target(c.metric, c.severity)
        assert target is not None, "a clock always counts against a target of its contract"
        return target

    def pauses(self, target: Target) -> bool:
        """Engine rule 3: whether a clock on `target` stands still under the incident's status
        (the target pauses and the status is one of the contract's pause statuses)."""
        return target.pauses and self.status in self.terms.pause_statuses

    def follow_status(self, metric: str, at: datetime) -> None:
        """Engine rule 3: pause or resume `metric`'s clock to match the incident's status."""
        c = self.clocks[metric]
        if c.phase not in clk.OPEN_PHASES:
            return
        target = self.target_of(c)
        self.clocks[metric] = clk.follow(c, self.pauses(target), at, target, self.calendar(target))

    def put(self, body: AlertBody, outcome: OutcomeBody | None) -> None:
        """Make `body` the live alert of its slot and, if given, `outcome` its metric's."""
        self.unchanged = False
        self.set_alert(body)
        # Announced again (met after a reopen): a later retraction of this slot is a correction,
        # dated by its cause, not by the earlier removal.
        self.removed_at.pop(body.slot, None)
        if outcome is None:
            return
        key, before = outcome.metric, self.outcomes_before
        if before is None:  # from scratch: no ledger to compare with
            self.outcomes[key] = outcome
            return
        if key not in before:  # what it held: the ledger's, unless the dict is out already
            if self._outcomes is not None:
                before[key] = self._outcomes.get(key)
            elif self._ledger is not None:
                before[key] = next((b for _, b in self._ledger.outcomes if b[0] == key), None)
        self.outcomes_after[key] = outcome
        if self._outcomes is not None:
            self._outcomes[key] = outcome

    def set_alert(self, body: AlertBody) -> None:
        """Make `body` the live alert of its slot, noting what the slot held before (a resumed
        fold asks its ledger, without building the whole live set)."""
        slot, before = body.slot, self.alerts_before
        if before is None:
            self.alerts[slot] = body
            return
        if slot not in before:
            if self._alerts is not None:
                before[slot] = self._alerts.get(slot)
            elif self._ledger is not None:
                before[slot] = next((b for _, b in self._ledger.alerts if b[:3] == slot), None)
        self.alerts_after[slot] = body
        if self._alerts is not None:
            self._alerts[slot] = body

    def take_back(self, metric: str, kinds: tuple[str, ...], at: datetime) -> None:
        """Remove a metric's alerts of `kinds` and its outcome, of every cycle if it cycles (a
        reopen, a cancel)."""
        self.unchanged = False
        for slot in [s for s in self.alerts if split_key(s[0])[0] == metric and s[1] in kinds]:
            if self.alerts_before is not None:
                self.alerts_before.setdefault(slot, self.alerts[slot])
                self.alerts_after[slot] = None
            del self.alerts[slot]
            self.removed_at[slot] = at
        for key in [k for k in self.outcomes if split_key(k)[0] == metric]:
            if self.outcomes_before is not None:
                self.outcomes_before.setdefault(key, self.outcomes[key])
                self.outcomes_after[key] = None
            del self.outcomes[key]

    def settle(
        self,
        state: IncidentState,
        updates: dict[str, object],
        *,
        cause_at: datetime,
        kind_order: KindOrder,
        in_place: bool = False,
    ) -> Result:
        """The new state (one copy of `state`, with `updates` and the fold; `state` itself,
        updated, when `in_place`) and its effects; a retraction not dated by a removal is dated
        `cause_at`."""
        if self.unchanged:
            ledger, alerts, outcomes = state.ledger, (), ()
        else:
            ledger, alerts, outcomes = self._reconciled(state, updates, cause_at, kind_order)
        next_due = None
        for c in self.clocks.values():
            if c.next_due_at is not None and (next_due is None or c.next_due_at < next_due):
                next_due = c.next_due_at
        new = state.with_fields(
            {
                **updates,
                "contract_version": self.terms.version,
                "parked": False,
                "evaluated": True,
                "pending_since": None,
                "next_due_at": next_due,
                "severity": self.severity,
                "status": self.status,
                "category": self.category,
                "team": self.team,
                "final": self.final,
                "clocks": tuple(self.clocks.values()),
                "ended": tuple(sorted(self.ended)) if self.ended else (),
                "answered": self.answered,
                "ledger": ledger,
            },
            in_place=in_place,
        )
        return Result(new, alerts, outcomes, next_due, None)

    def _reconciled(
        self,
        state: IncidentState,
        updates: dict[str, object],
        cause_at: datetime,
        kind_order: KindOrder,
    ) -> Reconciled:
        """The effects that take `state`'s ledger to this fold's live alerts and outcomes: only
        what changed is compared when the fold was resumed from that ledger."""
        opened_at = updates.get("opened_at", state.opened_at)
        contract_id = updates.get("contract_id", state.contract_id)
        assert isinstance(opened_at, datetime) and isinstance(contract_id, str)
        terms = self.terms
        ident = Ident(
            state.incident_id, contract_id, terms.customer_id, terms.tier, opened_at,
            state.retired_lives > 0,
        )  # fmt: skip
        if self.alerts_before is not None and self.outcomes_before is not None:
            return reconcile_changes(
                state.ledger, self.alerts_after, self.outcomes_after, self.alerts_before,
                self.outcomes_before, self.removed_at, cause_at, ident, kind_order,
            )  # fmt: skip
        return reconcile(
            state.ledger, self.alerts, self.outcomes, self.removed_at, cause_at, ident, kind_order
        )


def _overlaid(live: dict[Any, Any], changes: dict[Any, Any]) -> dict[Any, Any]:
    """`live` with `changes` made (None: removed)."""
    for key, value in changes.items():
        if value is None:
            live.pop(key, None)
        else:
            live[key] = value
    return live


def alert_body(
    kind: str,
    c: Clock,
    target: Target,
    threshold: float | None,
    at: datetime,
    elapsed_s: float,
    deadline_at: datetime | None,
) -> AlertBody:
    """What clock `c` on `target` announces at `at`; the engine decides the figures."""
    return AlertBody(
        c.key, kind, threshold, c.severity, target.allowance_s, elapsed_s, deadline_at, at,
        target.clause_id, target.clause_title,
    )  # fmt: skip
