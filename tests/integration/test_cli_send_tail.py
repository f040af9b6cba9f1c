"""`sla-stream send` and `sla-stream tail` as a user runs them, against a real worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from tests.integration.harness import System
from tests.integration.test_worker import fast_contract, opened


def cli_env(system: System) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLA_")},
        "SLA_BROKER": system.bootstrap,
        "SLA_TOPIC_PREFIX": system.prefix,
        "PYTHONUNBUFFERED": "1",
    }


async def test_send_validates_then_publishes_and_tail_prints_alerts(
    system: System, tmp_path: Path
) -> None:
    await system.create_topics()
    await system.put_contracts([fast_contract(fr_s=2, res_s=4)])
    system.worker().start().wait_ready()
    env = cli_env(system)

    bad = tmp_path / "bad.jsonl"
    t0 = datetime.now(UTC)
    bad.write_bytes(
        orjson.dumps(opened("INC-S0", t0)) + b"\n" + b'{"event_id": "x", "type": "opened"}\n'
    )
    refused = subprocess.run(
        [sys.executable, "-m", "sla_stream.cli", "send", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "line 2:" in refused.stderr and "nothing was sent" in refused.stderr

    good = tmp_path / "events.jsonl"
    good.write_bytes(b"\n".join(orjson.dumps(opened(f"INC-S{i}", t0)) for i in (1, 2)) + b"\n")
    sent = subprocess.run(
        [sys.executable, "-m", "sla_stream.cli", "send", str(good)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    assert "sent 2 events" in sent.stdout

    out = (tmp_path / "tail.txt").open("wb")
    tail = subprocess.Popen(
        [sys.executable, "-m", "sla_stream.cli", "tail", "alerts"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 40
        text = ""
        while time.monotonic() < deadline:
            text = (tmp_path / "tail.txt").read_text()
            if text.count(" BREACH ") >= 4:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"tail printed no breaches:\n{text}")
    finally:
        tail.terminate()
        tail.wait(10)
        out.close()
    lines = [line for line in text.splitlines() if " BREACH " in line]
    assert any("INC-S1 resolution P1 elapsed 4s of 4s" in line for line in lines), lines
    assert all("[fast clause 7.1: Critical incident handling]" in line for line in lines)
    assert "INC-S0" not in text  # the refused file sent nothing
