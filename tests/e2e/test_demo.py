"""`make run`'s command as a user runs it: alerts on screen within a minute, Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sla_stream.broker import _accepts, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_demo_shows_alerts_within_a_minute_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    broker_port, web_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLA_")},
        "SLA_EMBEDDED_PORT": str(broker_port),
        "SLA_WEB_PORT": str(web_port),
        "SLA_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    out = (tmp_path / "out.txt").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "sla_stream.cli", "demo"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    started = time.monotonic()
    text = ""
    try:
        while time.monotonic() - started < 60:
            text = (tmp_path / "out.txt").read_text(errors="replace")
            if any(word in text for word in (" WARNING ", " BREACH ", " MET ")):
                break
            assert demo.poll() is None, text
            time.sleep(0.5)
        else:
            raise AssertionError(f"no alert on screen within a minute:\n{text}")
        assert "[demo clause D-" in text  # every alert names its clause
        assert f"http://127.0.0.1:{web_port}/" in text
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(40)
        out.close()
    assert not _accepts("127.0.0.1", broker_port), "the embedded broker outlived Ctrl-C"
    assert not _accepts("127.0.0.1", web_port), "the worker outlived Ctrl-C"
