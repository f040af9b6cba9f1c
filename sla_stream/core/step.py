"""What one engine step returns: the new state, its effects, and why nothing changed if so."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from sla_stream.core.incident import IncidentState
from sla_stream.core.models import Alert, Outcome

# Why a step changed nothing; the engine decides when (rules 6, 10, 12).
Ignored = Literal["duplicate", "after_final", "parked", "nothing_due"]


class Result(NamedTuple):
    state: IncidentState
    alerts: tuple[Alert, ...]
    outcomes: tuple[Outcome, ...]
    next_due_at: datetime | None  # earliest instant at which advance() would emit something
    ignored: Ignored | None  # why the input changed nothing; None when it did something


def unchanged(state: IncidentState, why: Ignored) -> Result:
    return Result(state, (), (), state.next_due_at, why)


def waiting(state: IncidentState, updates: dict[str, object], why: Ignored | None) -> Result:
    """Recorded but not evaluated: no opened event yet, or no contract terms (parked)."""
    state = state.with_fields({**updates, "next_due_at": None})
    return Result(state, (), (), None, why)
