"""Adherence on the real broker: a known stream through a worker, its API, the report and /metrics.

The contract's zone is Europe/Berlin. Incident B's first-response breach falls at
2026-03-31T22:05Z, which is 00:05 on 1 April in Berlin: a Q2 breach (it would be Q1 in UTC).

Hand-computed figures (allowances: first response P1 10 min, P2 30 min; resolution P1 1 h,
P2 2 h; a 24x7 calendar):

| inc | opened (UTC)   | first response                    | resolution                      |
|-----|----------------|-----------------------------------|---------------------------------|
| A   | 03-31 21:00 P1 | 21:05 met 300 s, 31 Mar, Q1       | 21:40 met 2400 s, 31 Mar, Q1    |
| B   | 03-31 21:55 P1 | breach 22:05 (final 1500 s), Q2   | 22:30 met 2100 s, 1 Apr, Q2     |
| C   | 04-01 08:00 P2 | 08:10 met 600 s, 1 Apr, Q2        | breach 10:00 (final 10800 s), Q2|
| D   | 04-01 09:00 P1 | met 09:02, withdrawn (cancelled)  | none (cancelled 09:30)          |
| E   | 02-10 10:00 P1 | breach 10:10 (final 1800 s), Q1   | 10:45 met 2700 s, Q1            |
| F   | now, P3        | running (30 days)                 | running (60 days)               |

C is in category "database", the others in "network".

first response: Q1 1/2, Q2 1/2; resolution: Q1 2/2, Q2 1/2; breaches: Q1 1, Q2 2.
By day (31 Mar, 1 Apr): first response 1/1, 1/2; resolution 1/1, 1/2.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from sla_stream.core.contracts import load_contracts
from tests.integration.harness import System, TopicReader, WorkerProcess

CONTRACTS_YAML = """
tiers:
  gold:
    targets:
      first_response: {P1: 10m, P2: 30m, P3: 720h, P4: 720h}
      resolution: {P1: 1h, P2: 2h, P3: 1440h, P4: 1440h}
contracts:
  - contract_id: acme
    customer_id: acme-corp
    tier: gold
    timezone: Europe/Berlin
    clauses:
      - {id: "4.1", title: Response, covers: [{metric: first_response}]}
      - {id: "4.2", title: Restoration, covers: [{metric: resolution}]}
"""


def ev(incident: str, n: str, type_: str, at: str | datetime, **extra: Any) -> dict[str, Any]:
    when = at if isinstance(at, str) else at.isoformat()
    return {
        "event_id": f"{incident}-{n}",
        "incident_id": incident,
        "type": type_,
        "occurred_at": when,
        **extra,
    }


def opened(incident: str, at: str | datetime, severity: str, category: str) -> dict[str, Any]:
    return ev(incident, "o", "opened", at, contract_id="acme", severity=severity, category=category)


def scripted_stream(now: datetime) -> list[dict[str, Any]]:
    return [
        opened("E", "2026-02-10T10:00:00Z", "P1", "network"),
        ev("E", "r", "responded", "2026-02-10T10:30:00Z"),
        ev("E", "s", "resolved", "2026-02-10T10:45:00Z"),
        opened("A", "2026-03-31T21:00:00Z", "P1", "network"),
        ev("A", "r", "responded", "2026-03-31T21:05:00Z"),
        ev("A", "s", "resolved", "2026-03-31T21:40:00Z"),
        opened("B", "2026-03-31T21:55:00Z", "P1", "network"),
        ev("B", "r", "responded", "2026-03-31T22:20:00Z"),
        ev("B", "s", "resolved", "2026-03-31T22:30:00Z"),
        opened("C", "2026-04-01T08:00:00Z", "P2", "database"),
        ev("C", "r", "responded", "2026-04-01T08:10:00Z"),
        ev("C", "s", "resolved", "2026-04-01T11:00:00Z"),
        opened("D", "2026-04-01T09:00:00Z", "P1", "network"),
        ev("D", "r", "responded", "2026-04-01T09:02:00Z"),
        ev("D", "c", "cancelled", "2026-04-01T09:30:00Z"),
        ev("D", "s", "resolved", "2026-04-01T09:45:00Z"),  # after a final state: ignored
        opened("F", now, "P3", "network"),
    ]


EXPECTED_QUARTERS = {
    "first_response": [("2026-Q1", 0.5, 1, 2), ("2026-Q2", 0.5, 1, 2)],
    "resolution": [("2026-Q1", 1.0, 2, 2), ("2026-Q2", 0.5, 1, 2)],
    "update": [("2026-Q1", None, 0, 0), ("2026-Q2", None, 0, 0)],  # none in this stream
}
EXPECTED_DAYS = {
    "first_response": [("2026-03-31", 1.0, 1, 1), ("2026-04-01", 0.5, 1, 2)],
    "resolution": [("2026-03-31", 1.0, 1, 1), ("2026-04-01", 0.5, 1, 2)],
    "update": [("2026-03-31", None, 0, 0), ("2026-04-01", None, 0, 0)],
}
EXPECTED_BREACHES = [
    ("2026-Q1", 1, {"first_response": 1, "resolution": 0, "update": 0}),
    ("2026-Q2", 2, {"first_response": 1, "resolution": 1, "update": 0}),
]
# (metric, category, period) -> (count, mean business seconds) by quarter
EXPECTED_TRENDS = {
    ("first_response", "network", "2026-Q1"): (2, 1050.0),
    ("first_response", "network", "2026-Q2"): (1, 1500.0),
    ("first_response", "database", "2026-Q2"): (1, 600.0),
    ("resolution", "network", "2026-Q1"): (2, 2550.0),
    ("resolution", "network", "2026-Q2"): (1, 2100.0),
    ("resolution", "database", "2026-Q2"): (1, 10800.0),
}


def rates(rep: dict[str, Any]) -> dict[str, list[tuple[str, float | None, int, int]]]:
    return {
        metric: [(p["period"], p["rate"], p["numerator"], p["denominator"]) for p in m["periods"]]
        for metric, m in rep["metrics"].items()
    }


def breaches(rep: dict[str, Any]) -> list[tuple[str, int, dict[str, int]]]:
    return [(q["quarter"], q["breaches"], q["by_metric"]) for q in rep["breaches_per_quarter"]]


def trends(rep: dict[str, Any]) -> dict[tuple[str, str, str], tuple[int, float]]:
    return {
        (metric, category, row["period"]): (row["count"], row["mean_s"])
        for metric, cats in rep["trends"].items()
        for category, rows in cats.items()
        for row in rows
    }


def assert_quarterly(rep: dict[str, Any]) -> None:
    assert rep["contract"] == "acme" and rep["timezone"] == "Europe/Berlin"
    assert rates(rep) == EXPECTED_QUARTERS
    assert breaches(rep) == EXPECTED_BREACHES
    assert trends(rep) == EXPECTED_TRENDS


def api(worker: WorkerProcess, **params: str) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in {"contract": "acme", **params}.items())
    return orjson.loads(worker.get(f"/api/v1/adherence?{query}", timeout=10))


QUARTERS = {"from": "2026-Q1", "to": "2026-Q3", "step": "quarter"}
DAYS = {"from": "2026-03-31", "to": "2026-04-02", "step": "day"}


async def wait_api(worker: WorkerProcess, timeout_s: float = 60) -> dict[str, Any]:
    """Poll until the rollups hold every settled clock (8 live, withdrawals undone)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = api(worker, **QUARTERS)
            totals = [m["total"]["denominator"] for m in last["metrics"].values()]
            if totals == [4, 4, 0] and rates(last) == EXPECTED_QUARTERS:
                return last
        except OSError as exc:
            last = exc
        await asyncio.sleep(0.5)
    raise AssertionError(f"adherence not as expected after {timeout_s}s: {last}\n{worker.output()}")


def cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "sla_stream.cli", *args], capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def start(system: System, tmp_path: Path, names: tuple[str, ...]) -> list[WorkerProcess]:
    contracts_file = tmp_path / "contracts.yaml"
    contracts_file.write_text(CONTRACTS_YAML)
    # The scripted incidents end months before today: with the default retention a tick that
    # fell between D's cancel and its late resolve would delete D, and the resolve would count
    # as an event of a new record instead of one after a final state.
    system.extra_env.setdefault("SLA_INCIDENT_RETENTION", "never")
    await system.create_topics()
    await system.put_contracts(list(load_contracts(contracts_file).values()))
    return [system.worker(n).start() for n in names]


async def test_known_stream_gives_hand_computed_rates_through_api_and_reports(
    system: System, tmp_path: Path
) -> None:
    (w,) = await start(system, tmp_path, ("w1",))
    w.wait_ready()
    stream = scripted_stream(datetime.now(UTC) - timedelta(seconds=5))
    await system.send(stream)
    assert_quarterly(await wait_api(w))
    by_day = api(w, **DAYS)
    assert rates(by_day) == EXPECTED_DAYS
    assert breaches(by_day) == EXPECTED_BREACHES  # whole quarters the range touches

    # The same figures from the report command, against the running worker ...
    url = f"http://127.0.0.1:{w.web_port}"
    (live,) = orjson.loads(cli("report", "--url", url, "--format", "json", *_flags(QUARTERS)))
    assert_quarterly(live)
    # ... and from the files `sla-stream replay` writes for the same events.
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in stream))
    out = tmp_path / "replay"
    contracts = str(tmp_path / "contracts.yaml")
    cli("replay", "--contracts", contracts, "--events", str(events), "--out", str(out))
    report_args = ("--replay-dir", str(out), "--contracts", contracts, *_flags(QUARTERS))
    (offline,) = orjson.loads(cli("report", "--format", "json", *report_args))
    assert_quarterly(offline)
    assert offline == live
    table = cli("report", "--format", "table", *report_args)
    assert "first response time adherence (first_response): 50.00 % (2 met / 4 settled)" in table
    assert "resolution within SLA window (resolution): 75.00 % (3 met / 4 settled)" in table


def _flags(params: dict[str, str]) -> list[str]:
    return [x for k, v in params.items() for x in (f"--{k}", v)]


async def test_api_answers_from_any_worker_routed_to_the_owner(
    system: System, tmp_path: Path
) -> None:
    w1, w2 = await start(system, tmp_path, ("w1", "w2"))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        p1, p2 = w1.partitions() or [], w2.partitions() or []
        if p1 and p2 and sorted(p1 + p2) == list(range(system.partitions)):
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError(f"partitions not split: {w1.partitions()} {w2.partitions()}")
    await system.send(scripted_stream(datetime.now(UTC) - timedelta(seconds=5)))
    first = await wait_api(w1)
    second = await wait_api(w2)
    assert first == second
    assert_quarterly(first)
    # Exactly one worker owns the contract, so exactly one exports its adherence gauge.
    ratios = [_samples(w, "sla_adherence_ratio") for w in (w1, w2)]
    owners = [r for r in ratios if r]
    assert len(owners) == 1, ratios
    assert owners[0] == {
        (("contract", "acme"), ("metric", "first_response")): 0.5,
        (("contract", "acme"), ("metric", "resolution")): 0.75,
    }


def _families(worker: WorkerProcess) -> dict[str, Any]:
    text = worker.get("/metrics").decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _samples(worker: WorkerProcess, family: str, suffix: str = "") -> dict[tuple, float]:
    fam = _families(worker)[family]
    return {
        tuple(sorted(s.labels.items())): s.value for s in fam.samples if s.name == family + suffix
    }


async def test_metrics_expose_every_family_with_the_expected_values(
    system: System, tmp_path: Path
) -> None:
    (w,) = await start(system, tmp_path, ("w1",))
    w.wait_ready()
    alerts = await TopicReader(system.bootstrap, system.topic("alerts")).start()
    outcomes = await TopicReader(system.bootstrap, system.topic("outcomes")).start()
    try:
        await system.send(scripted_stream(datetime.now(UTC) - timedelta(seconds=5)))
        await system.send([b"this is not json"], key=b"X")
        await wait_api(w)
        # Counters must equal what reached the topics; wait until both sides agree.
        deadline = time.monotonic() + 30
        while True:
            want_alerts = Counter((a["kind"], a["metric"], a["severity"]) for a in alerts.values)
            want_outcomes = Counter(
                (o["metric"], o["severity"], _result(o)) for o in outcomes.values
            )
            got_alerts = _samples(w, "sla_alerts", "_total")
            got_outcomes = _samples(w, "sla_outcomes", "_total")
            if _as_counter(got_alerts, ("kind", "metric", "severity")) == want_alerts and (
                _as_counter(got_outcomes, ("metric", "severity", "result")) == want_outcomes
            ):
                break
            if time.monotonic() > deadline:
                raise AssertionError((got_alerts, want_alerts, got_outcomes, want_outcomes))
            await asyncio.sleep(0.5)
        fams = _families(w)
        for name in (
            "sla_events",
            "sla_events_rejected",
            "sla_alerts",
            "sla_open_clocks",
            "sla_outcomes",
            "sla_event_processing_seconds",
            "sla_alert_lateness_seconds",
            "sla_adherence_ratio",
        ):
            assert name in fams, sorted(fams)
        assert fams["sla_event_processing_seconds"].type == "histogram"
        assert fams["sla_alert_lateness_seconds"].type == "histogram"
        assert _by(w, "sla_events", "_total", "type") == {
            "opened": 6,
            "responded": 5,
            "resolved": 4,
            "cancelled": 1,
        }
        assert _by(w, "sla_events_rejected", "_total", "reason") == {
            "after_final": 1,
            "not_json": 1,
        }
        # Every event that reached the engine (16 applied, 1 ignored) was timed.
        assert _samples(w, "sla_event_processing_seconds", "_count") == {(): 17.0}
        # Every warning and breach was published late by a measurable amount (past-dated).
        late = sum(1 for a in alerts.values if a["kind"] in ("warning", "breach"))
        assert late > 0
        assert _samples(w, "sla_alert_lateness_seconds", "_count") == {(): float(late)}
        # Only F is still open: one running clock per metric at P3.
        open_clocks = {k: v for k, v in _samples(w, "sla_open_clocks").items() if v}
        assert open_clocks == {
            (("metric", "first_response"), ("severity", "P3")): 1.0,
            (("metric", "resolution"), ("severity", "P3")): 1.0,
        }
        assert _samples(w, "sla_adherence_ratio") == {
            (("contract", "acme"), ("metric", "first_response")): 0.5,
            (("contract", "acme"), ("metric", "resolution")): 0.75,
        }
        assert want_outcomes[("first_response", "P1", "withdrawn")] >= 1  # D's, and provisional
    finally:
        await alerts.stop()
        await outcomes.stop()


def _result(o: dict[str, Any]) -> str:
    return "withdrawn" if o.get("withdraws") else ("met" if o["met"] else "breached")


def _as_counter(samples: dict[tuple, float], names: tuple[str, ...]) -> Counter:
    return Counter({tuple(dict(k)[n] for n in names): int(v) for k, v in samples.items() if v})


def _by(worker: WorkerProcess, family: str, suffix: str, label: str) -> dict[str, int]:
    return {dict(k)[label]: int(v) for k, v in _samples(worker, family, suffix).items() if v}


async def test_sigkill_restart_and_resent_events_keep_the_figures_exact(
    system: System, tmp_path: Path
) -> None:
    (w,) = await start(system, tmp_path, ("w1",))
    w.wait_ready()
    stream = scripted_stream(datetime.now(UTC) - timedelta(seconds=5))
    await system.send(stream)
    before = await wait_api(w)
    w.kill()  # RocksDB intact; the outbox re-sends recent outcomes on assignment
    w.start()
    w.wait_ready()
    await system.send(stream)  # at-least-once upstream: every event again
    await asyncio.sleep(3.0)  # let repeats and re-sent outcomes reach the rollups
    after = await wait_api(w)
    assert after == before
    assert_quarterly(after)
    assert _samples(w, "sla_adherence_ratio") == {
        (("contract", "acme"), ("metric", "first_response")): 0.5,
        (("contract", "acme"), ("metric", "resolution")): 0.75,
    }
