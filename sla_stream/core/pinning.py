"""Which contract terms an incident counts on (engine rule 12), or None while it is parked.

An incident pins the version of its contract in force when it opened; until it is evaluated
the version is looked up by the opening instant, afterwards by the number it pinned. A record
for another contract, or one with no such version, leaves the incident parked.
"""

from __future__ import annotations

from datetime import datetime

from sla_stream.core.incident import IncidentState
from sla_stream.core.terms import ContractRecord, ContractTerms


def pinned_terms(
    contract_id: str | None,
    version: int | None,
    opened_at: datetime,
    contract: ContractRecord | None,
) -> ContractTerms | None:
    """The terms of the version in force when the incident opened (or the pinned `version`)."""
    ours = contract is not None and contract.contract_id == contract_id
    return contract.pinned(version, opened_at) if ours and contract else None


def terms_for(state: IncidentState, contract: ContractRecord | None) -> ContractTerms | None:
    """The terms `state` counts on under `contract`; None while it waits (parked)."""
    if state.opened_at is None:
        return None
    return pinned_terms(state.contract_id, state.contract_version, state.opened_at, contract)
