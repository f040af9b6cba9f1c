"""`sla-stream demo` and `sla-stream broker` stop everything they started, whichever signal stops
them (Ctrl-C, a process manager's SIGTERM, a closed terminal's SIGHUP), and a child whose parent
is killed outright does not live on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sla_stream.broker import _accepts, free_port

ROOT = Path(__file__).resolve().parents[2]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, grandchildren...), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def wait_until(condition, timeout_s: float, what: str, output: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} after {timeout_s}s:\n{output.read_text(errors='replace')}")


def spawn(args: list[str], env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sla_stream.cli", *args],
            cwd=ROOT,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("SLA_")}, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def signal_and_check_gone(
    proc: subprocess.Popen[bytes],
    sig: signal.Signals,
    ports: list[int],
    children: set[int],
    out: Path,
    *,
    exit_s: float,
    gone_s: float,
) -> None:
    """Send `sig`, then check that `proc` exits and its ports and children are gone in time."""
    proc.send_signal(sig)
    proc.wait(exit_s)
    for port in ports:
        wait_until(lambda p=port: not _accepts("127.0.0.1", p), gone_s, f"{port} open", out)
    wait_until(lambda: not any(alive(p) for p in children), gone_s, "children alive", out)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_the_broker_command_leaves_no_broker_behind(tmp_path: Path, sig: signal.Signals) -> None:
    port, out = free_port(), tmp_path / "out.txt"
    command = spawn(["broker", "--port", str(port)], {}, out)
    try:
        wait_until(lambda: _accepts("127.0.0.1", port), 30, "broker not listening", out)
        children = descendants(command.pid)
        assert children, "the broker command started no broker process"
        # SIGKILL gives the command no chance: the broker dies of its parent's death.
        signal_and_check_gone(command, sig, [port], children, out, exit_s=20, gone_s=10)
    finally:
        if command.poll() is None:
            command.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_the_demo_leaves_no_process_behind(tmp_path: Path, sig: signal.Signals) -> None:
    broker_port, web_port, out = free_port(), free_port(), tmp_path / "out.txt"
    env = {
        "SLA_EMBEDDED_PORT": str(broker_port),
        "SLA_WEB_PORT": str(web_port),
        "SLA_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    demo = spawn(["demo"], env, out)
    try:
        wait_until(lambda: _accepts("127.0.0.1", web_port), 90, "worker not serving", out)
        children = descendants(demo.pid)
        assert len(children) >= 2, "expected the broker and the worker below the demo"
        ports = [broker_port, web_port]
        signal_and_check_gone(demo, sig, ports, children, out, exit_s=40, gone_s=30)
    finally:
        if demo.poll() is None:
            demo.kill()


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL])
def test_a_worker_with_its_embedded_broker_leaves_no_process_behind(
    tmp_path: Path, sig: signal.Signals
) -> None:
    broker_port, web_port, out = free_port(), free_port(), tmp_path / "out.txt"
    env = {
        "SLA_EMBEDDED_PORT": str(broker_port),
        "SLA_WEB_PORT": str(web_port),
        "SLA_DATA_DIR": str(tmp_path / "data"),
    }
    worker = spawn(["worker"], env, out)
    try:
        wait_until(lambda: _accepts("127.0.0.1", web_port), 90, "worker not serving", out)
        children = descendants(worker.pid)
        assert children, "the worker started no embedded broker"
        ports = [broker_port]
        signal_and_check_gone(worker, sig, ports, children, out, exit_s=40, gone_s=30)
    finally:
        if worker.poll() is None:
            worker.kill()
