"""The live forecast on the embedded broker: at_risk for a clock the model scores high, none for
a paused clock or a low score, a clear when the clock settles, the API and the metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests.forecast_support import severity_model
from tests.integration.harness import System, TopicReader
from tests.integration.test_worker import event, fast_contract, opened


@pytest.mark.integration
async def test_at_risk_for_a_high_score_none_for_a_paused_clock(
    make_system: Callable[..., System], tmp_path: Path
) -> None:
    model_path = tmp_path / "model.json"
    version = severity_model(model_path).version
    system = make_system(extra_env={"SLA_FORECAST_MODEL": str(model_path)})
    await system.create_topics()
    await system.put_contracts([fast_contract(fr_s=3600, res_s=3600)])
    worker = system.worker("w1").start()
    worker.wait_ready()
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    try:
        t0 = datetime.now(UTC)
        await system.send(
            [
                opened("risky", t0),  # P1: the model says breach
                opened("calm", t0, severity="P4"),  # P4: met
                {**opened("waiting", t0), "status": "pending_customer"},  # P1 but paused
            ]
        )
        values = await alerts.wait_for(lambda v: any(a["kind"] == "at_risk" for a in v))
        at_risk = [a for a in values if a["kind"] == "at_risk"]
        assert [a["incident_id"] for a in at_risk] == ["risky"]
        alert = at_risk[0]
        assert alert["probability"] >= 0.7 and alert["threshold"] == 0.7
        assert alert["model_version"] == version and alert["metric"] == "resolution"
        assert 1 <= len(alert["reasons"]) <= 3 and all(isinstance(r, str) for r in alert["reasons"])

        await asyncio.sleep(3.0)  # a dozen ticks: re-scoring must not repeat or add alerts
        at_risk = [a for a in alerts.values if a["kind"] == "at_risk"]
        assert [a["incident_id"] for a in at_risk] == ["risky"]

        listing = orjson.loads(worker.get("/api/v1/incidents/at-risk"))
        assert listing["model_version"] == version
        assert listing["incidents"][0]["incident_id"] == "risky"
        assert listing["incidents"][0]["alert_id"] == alert["alert_id"]
        metrics = worker.get("/metrics").decode()
        assert "sla_at_risk_alerts_total 1.0" in metrics
        assert "sla_risk_score_count" in metrics

        await system.send([event("res", "risky", "resolved", datetime.now(UTC))])
        values = await alerts.wait_for(
            lambda v: any(a.get("retracts") == alert["alert_id"] for a in v)
        )
        cleared = [a for a in values if a.get("retracts") == alert["alert_id"]]
        assert len(cleared) == 1 and cleared[0]["kind"] == "retracted"
    finally:
        await alerts.stop()
