"""Run Debian's Prometheus and Alertmanager on free loopback ports; fail with their output."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from sla_stream.broker import free_port
from tests.system_programs import require

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def program(name: str) -> str:
    """The path of a Debian program; a missing one skips the test, or fails it in CI
    (`tests/system_programs.py` decides)."""
    return require(name)


def run_tool(*args: str) -> str:
    """Run a checker (promtool, amtool); fail with its output unless it exits 0."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{output}"
    return output


class LoggedProcess:
    """Read and stop a subprocess started in its own session with its output in `log_path`;
    the class that mixes it in provides `log_path` and `proc`."""

    log_path: Path
    proc: subprocess.Popen[bytes] | None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Program(LoggedProcess):
    """A long-running server program with a generated config, its storage in `root`."""

    name: str
    root: Path
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def start(self, timeout_s: float = 60.0) -> Program:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [program(self.name), *self.args, f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready after {timeout_s}s:\n{self.output()}")

    def get_json(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as r:
                return orjson.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{path}: {exc.code} {exc.read()!r}") from exc

    def post_json(self, path: str, payload: Any) -> int:
        request = urllib.request.Request(
            self.base + path,
            data=orjson.dumps(payload),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status


def prometheus(root: Path, config: dict[str, Any]) -> Program:
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    (root / "tsdb").mkdir(exist_ok=True)
    return Program(
        "prometheus",
        root,
        [
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'tsdb'}",
        ],
    )


def alertmanager(root: Path, config: dict[str, Any], port: int | None = None) -> Program:
    (root / "alertmanager.yml").write_text(yaml.safe_dump(config))
    (root / "am-data").mkdir(exist_ok=True)
    args = [
        f"--config.file={root / 'alertmanager.yml'}",
        f"--storage.path={root / 'am-data'}",
        "--cluster.listen-address=",  # no gossip port: tests run side by side
    ]
    if port is None:
        return Program("prometheus-alertmanager", root, args)
    return Program("prometheus-alertmanager", root, args, port=port)
