"""Portal scoping of a contract whose versions belong to different customers: adherence (counted
per contract, with no customer in it) is nobody's; commitments and incidents stay per version."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sla_stream.core import engine
from sla_stream.core.terms import ContractRecord
from sla_stream.web.cluster import Gathered
from sla_stream.web.open_incidents import IncidentFilter, view_of
from tests.unit.test_portal import NOW, RECORDS, Backend, bearer, ev, portal


def shared_contract() -> ContractRecord:
    """`shared-msa`: version 1, in force, is alpha's; version 2, signed to start in 10 days,
    beta's (the contracts file refuses this; the portal must not rely on it)."""
    base = RECORDS["alpha-msa"].versions[0]
    v1 = base.model_copy(
        update={"contract_id": "shared-msa", "effective_to": NOW + timedelta(days=10)}
    )
    v2 = base.model_copy(
        update={
            "contract_id": "shared-msa",
            "version": 2,
            "customer_id": "beta",
            "effective_from": NOW + timedelta(days=10),
        }
    )
    return ContractRecord(contract_id="shared-msa", versions=(v1, v2))


class SharedBackend(Backend):
    """The portal tests' backend plus `shared-msa`, with one open incident (alpha's, v1)."""

    def __init__(self) -> None:
        super().__init__({**RECORDS, "shared-msa": shared_contract()})

    async def incidents(self, flt: IncidentFilter, now: object) -> Gathered:
        self.filters.append(flt)
        record = self.records["shared-msa"]
        at = NOW - timedelta(days=20)
        opened = ev("S-A", "o", "opened", at, contract_id="shared-msa", severity="P4")
        view = view_of(
            engine.advance(engine.apply(None, opened, record).state, NOW, record).state, record
        )
        assert view is not None and view.customer_id == "alpha"
        return Gathered([view.to_json(NOW)] if flt.keeps(view, NOW) else [])


@pytest.mark.parametrize("customer", ["alpha", "beta"])
async def test_adherence_of_a_contract_with_a_version_of_another_customer_is_not_found(
    customer: str,
) -> None:
    backend = SharedBackend()
    reply = await portal(backend).adherence(bearer(customer), {"contract": "shared-msa"})
    assert (reply.status, reply.body) == (404, {"error": "not found"})
    assert backend.adherence_calls == []  # its figures were not even asked for


async def test_adherence_of_all_contracts_leaves_out_the_shared_one() -> None:
    backend = SharedBackend()
    alpha = await portal(backend).adherence(bearer("alpha"), {})
    assert alpha.status == 200
    assert [r["contract"] for r in alpha.body["contracts"]] == ["alpha-extra", "alpha-msa"]
    beta = await portal(backend).adherence(bearer("beta"), {})
    assert [r["contract"] for r in beta.body["contracts"]] == ["beta-msa"]
    assert "shared-msa" not in {c["contract"] for c in backend.adherence_calls}


async def test_commitments_and_incidents_of_the_shared_contract_stay_per_version() -> None:
    backend = SharedBackend()
    for customer, version, incidents_seen in (("alpha", 1, ["S-A"]), ("beta", 2, [])):
        commitments = await portal(backend).commitments(
            bearer(customer), {"contract": "shared-msa"}
        )
        assert commitments.status == 200
        (contract,) = commitments.body["contracts"]
        assert [v["version"] for v in contract["versions"]] == [version]
        incidents = await portal(backend).incidents(bearer(customer), {"contract": "shared-msa"})
        assert incidents.status == 200
        assert [i["incident_id"] for i in incidents.body["incidents"]] == incidents_seen
