"""The portal's explained deadlines: the token's customer's incidents only, with the portal's
usual answers (401 without a token, 404 for another customer's or an unknown incident alike,
400 for an unknown parameter, 503 when the incident was not found and partitions are missing)."""

from __future__ import annotations

from datetime import datetime

from sla_stream.core.explain import explain
from sla_stream.web.explain import Found
from tests.unit.test_portal import NOW, RECORDS, STATES, Backend, bearer, portal


class ExplainBackend(Backend):
    """The portal tests' backend, explaining their incidents with the core."""

    async def explain(self, incident_id: str, now: datetime) -> Found:
        for state in STATES:
            if state.incident_id == incident_id:
                record = self.records.get(state.contract_id or "")
                return Found(explain(state, record, now).to_json(), [])
        return Found(None, self.missing)


def owner_of(incident_id: str) -> str:
    state = next(s for s in STATES if s.incident_id == incident_id)
    return RECORDS[state.contract_id or ""].versions[0].customer_id


async def test_a_customer_gets_its_own_incidents_explained_and_nobody_elses() -> None:
    served = portal(ExplainBackend(RECORDS))
    ids = [s.incident_id for s in STATES if s.contract_id in RECORDS]
    assert {owner_of(i) for i in ids} == {"alpha", "beta"}
    for incident_id in ids:
        owner = owner_of(incident_id)
        other = "beta" if owner == "alpha" else "alpha"
        mine = await served.explain(bearer(owner), incident_id, {})
        assert mine.status == 200 and mine.body["incident_id"] == incident_id
        assert mine.body["as_of"] == NOW.isoformat() and mine.body["customer_id"] == owner
        theirs = await served.explain(bearer(other), incident_id, {})
        unknown = await served.explain(bearer(other), "NO-SUCH", {})
        assert (
            (theirs.status, theirs.body)
            == (unknown.status, unknown.body)
            == (
                404,
                {"error": "not found"},
            )
        )
    assert (await served.explain(None, ids[0], {})).status == 401
    assert (await served.explain(bearer("alpha"), ids[0], {"incident": "x"})).status == 400


async def test_not_found_with_partitions_missing_is_a_retry_not_a_no() -> None:
    served = portal(ExplainBackend(RECORDS, missing=[2]))
    reply = await served.explain(bearer("alpha"), "NO-SUCH", {})
    assert reply.status == 503 and reply.body["missing"] == [2] and "Retry-After" in reply.headers
