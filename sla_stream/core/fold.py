"""Scratch space of one engine step: clocks, and the alerts and outcomes that should be live.

`engine.py` decides what happens on each event; a `Fold` carries the consequences: it fires
the dues of its clocks, turns what a clock announces into alert and outcome bodies, and takes
them back on a reopen or a cancel. `ledger.reconcile` then diffs them with what was published.
"""

from __future__ import annotations

from datetime import datetime

from sla_stream.core import clock as clk
from sla_stream.core.calendar import calendar_for
from sla_stream.core.clock import Clock, Mark
from sla_stream.core.incident import IncidentState
from sla_stream.core.ledger import AlertBody, OutcomeBody, Slot
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
        self.alerts: dict[Slot, AlertBody] = {}
        self.outcomes: dict[str, OutcomeBody] = {}
        self.removed_at: dict[Slot, datetime] = {}
        # Resumed from a state whose ledger is the live set, and nothing announced since:
        # the ledger stands as it is.
        self.unchanged = False

    @classmethod
    def resume(cls, state: IncidentState, terms: ContractTerms) -> Fold:
        """Continue from an evaluated state: its clocks, and its ledger as the live set."""
        fold = cls(terms)
        fold.severity, fold.status, fold.final = state.severity, state.status, state.final
        fold.category, fold.team, fold.opened = state.category, state.team, True
        fold.clocks = {c.metric: c for c in state.clocks}
        fold.alerts = state.ledger.live_alerts()
        fold.outcomes = state.ledger.live_outcomes()
        fold.unchanged = True
        return fold

    def target(self, metric: str, severity: str | None) -> Target | None:
        return None if severity is None else self.terms.target(metric, severity)

    def calendar(self, target: Target) -> clk.Calendar:
        return _calendar(self.terms, target.calendar)

    def target_of(self, c: Clock) -> Target:
        target = self.terms.target(c.metric, c.severity)
        assert target is not None, "a clock always counts against a target of its contract"
        return target

    def pauses(self, target: Target) -> bool:
        return target.pauses and self.status in self.terms.pause_statuses

    def fire_due(self, bound: datetime, *, inclusive: bool) -> None:
        """Fire each clock's dues before `bound` (and at it, when `inclusive`)."""
        for metric, c in self.clocks.items():
            while c.due_at is not None and (c.due_at < bound or (inclusive and c.due_at == bound)):
                target = self.target_of(c)
                c, mark = clk.fire(c, target, self.calendar(target))
                self.announce(mark, target)
            self.clocks[metric] = c

    def announce(self, mark: Mark, target: Target) -> None:
        """Record what a clock announced as alerts and outcomes that should be live."""
        body = AlertBody(
            mark.metric, mark.kind, mark.threshold, mark.severity, mark.allowance_s,
            mark.elapsed_s, mark.deadline_at, mark.at, target.clause_id, target.clause_title,
        )  # fmt: skip
        self.unchanged = False
        self.alerts[body.slot] = body
        # Announced again (met after a reopen): a later retraction of this slot is a correction,
        # dated by its cause, not by the earlier removal.
        self.removed_at.pop(body.slot, None)
        if mark.kind == "warning":
            return
        if mark.kind == "stopped":
            provisional = self.outcomes[mark.metric]
            self.outcomes[mark.metric] = provisional._replace(
                elapsed_s=mark.elapsed_s, completed_at=mark.at
            )
            return
        met = mark.kind == "met"
        self.outcomes[mark.metric] = OutcomeBody(
            mark.metric, mark.severity, mark.allowance_s, mark.elapsed_s, met,
            mark.at if met else None, mark.at, self.category, self.team,
        )  # fmt: skip

    def take_back(self, metric: str, kinds: tuple[str, ...], at: datetime) -> None:
        """Remove a clock's alerts of `kinds` and its outcome (a reopen, a cancel)."""
        self.unchanged = False
        for slot in [s for s in self.alerts if s[0] == metric and s[1] in kinds]:
            del self.alerts[slot]
            self.removed_at[slot] = at
        self.outcomes.pop(metric, None)


_CALENDARS: dict[tuple[str, int, str], tuple[object, clk.Calendar]] = {}


def _calendar(terms: ContractTerms, name: str) -> clk.Calendar:
    """The calendar a target names, via `calendar_for`, memoised per contract version."""
    block = terms.calendars.get(name, name)  # "24x7" needs no block
    key = (terms.contract_id, terms.version, name)
    hit = _CALENDARS.get(key)
    if hit is not None and (hit[0] is block or hit[0] == block):
        return hit[1]
    cal = calendar_for(block)
    _CALENDARS[key] = (block, cal)
    return cal
