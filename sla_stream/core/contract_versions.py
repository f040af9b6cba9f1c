"""Published contract versions are immutable: what a new file would change of them.

An incident pins the contract version in force when it opened, so rewriting a published
version would change the terms of incidents already counted under it. A change of terms is a
new version (a higher number, with a later `effective_from`); `sla-stream contracts apply`
refuses a file that changes or drops a published version.
"""

from __future__ import annotations

from collections.abc import Mapping

from sla_stream.core.terms import ContractRecord, ContractTerms


def published_conflicts(
    published: Mapping[str, ContractRecord], new: Mapping[str, ContractRecord]
) -> list[str]:
    """One sentence per published version that `new` changes or drops (empty: none)."""
    problems: list[str] = []
    for contract_id, record in sorted(new.items()):
        before = published.get(contract_id)
        if before is None:
            continue
        after = {v.version: v for v in record.versions}
        for old in before.versions:
            fresh = after.get(old.version)
            if fresh is None:
                problems.append(
                    f"{contract_id} version {old.version} is published and missing from the "
                    "file: keep it as it is"
                )
            elif fresh != old:
                problems.append(
                    f"{contract_id} version {old.version} is already published and would "
                    f"change ({', '.join(_changed_fields(old, fresh))}): publish the new terms "
                    f"as version {max(after) + 1} with a later effective_from instead"
                )
    return problems


def _changed_fields(old: ContractTerms, new: ContractTerms) -> list[str]:
    a, b = old.model_dump(), new.model_dump()
    return [name for name in a if a[name] != b.get(name)]
