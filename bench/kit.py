"""Shared by the streaming sections: broker, worker subprocesses, metrics, fast produce and read.

Not a section itself (no `TITLE`). Everything here bounds its waits with deadlines and cleans
up the processes it starts, so `make bench` can run unattended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from sla_stream.broker import EmbeddedBroker, free_port
from sla_stream.core.terms import ContractRecord
from sla_stream.settings import Settings
from sla_stream.stream.admin import TopicSpec, ensure_topics
from sla_stream.stream.contracts_topic import contracts_topic, publish_contracts
from sla_stream.stream.topics import topic_specs

T = TypeVar("T")


def loadavg() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


class LoadNote:
    """The machine's load average when a section starts and ends (other work shares the cores)."""

    def __init__(self) -> None:
        self.start = loadavg()

    def line(self) -> str:
        return f"Load average at start: {self.start}; at end: {loadavg()}."


@contextlib.contextmanager
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh embedded broker on a free loopback port, stopped on exit."""
    b = EmbeddedBroker()
    b.start()
    try:
        yield b
    finally:
        b.stop()


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary directory, removed on exit unless `BENCH_KEEP` is set (to read worker logs)."""
    root = Path(tempfile.mkdtemp(prefix=f"sla-bench-{prefix}-"))
    try:
        yield root
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


def wait_for(
    probe: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.1
) -> T:
    """Poll `probe` until it returns something truthy; raise with `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(interval_s)
    raise TimeoutError(f"{what}: not after {timeout_s:.0f} s")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {sample name: value summed over labels} (e.g. `sla_events_total`)."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


def buckets(text: str, name: str) -> list[tuple[float, float]]:
    """A histogram's cumulative (upper bound, count) pairs, summed over its other labels."""
    counts: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                bound = float(sample.labels["le"])
                counts[bound] = counts.get(bound, 0.0) + sample.value
    return sorted(counts.items())


def processed(metrics: dict[str, float]) -> int:
    """Events a worker has finished: each one counts once as applied or as refused/ignored."""
    return int(metrics.get("sla_events_total", 0) + metrics.get("sla_events_rejected_total", 0))


@dataclass
class System:
    """One namespaced system on the broker: a topic prefix, and the settings its workers share."""

    bootstrap: str
    root: Path
    prefix: str = "bench."
    partitions: int = 4

    def settings(self, app_id: str, **extra: Any) -> Settings:
        return Settings(
            broker=self.bootstrap,
            topic_prefix=self.prefix,
            partitions=self.partitions,
            app_id=app_id,
            data_dir=self.root / app_id,
            web_port=free_port(),
            recovery_consistency_check=False,  # the embedded broker's end offsets need it off
            **extra,
        )

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def create_topics(self, extra: Iterable[TopicSpec] = ()) -> None:
        specs = [*topic_specs(self.settings("admin")), *extra]
        asyncio.run(ensure_topics(self.bootstrap, specs))

    def put_contracts(self, records: dict[str, ContractRecord]) -> None:
        spec = contracts_topic(self.settings("admin"))
        asyncio.run(publish_contracts(self.bootstrap, spec, records))

    def worker(self, app_id: str, **env: str) -> Worker:
        s = self.settings(app_id)
        s.data_dir.mkdir(parents=True, exist_ok=True)
        variables = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLA_")},
            "SLA_BROKER": self.bootstrap,
            "SLA_TOPIC_PREFIX": self.prefix,
            "SLA_PARTITIONS": str(self.partitions),
            "SLA_APP_ID": app_id,
            "SLA_DATA_DIR": str(s.data_dir),
            "SLA_WEB_PORT": str(s.web_port),
            "SLA_RECOVERY_CONSISTENCY_CHECK": "false",
            "SLA_LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "warning"),
            **env,
        }
        return Worker(variables, s.data_dir, s.web_port, self.root / f"{app_id}.log")


@dataclass
class Worker:
    """An `sla-stream worker` subprocess in its own session, with its own data dir and port."""

    env: dict[str, str]
    data_dir: Path
    web_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # perf_counter at spawn
    started_wall: float = 0.0  # wall clock at spawn (the worker's log lines carry wall time)
    log_from: int = 0  # where this start's lines begin in the (appended) log
    extra_args: list[str] = field(default_factory=list)

    def start(self) -> Worker:
        with self.log_path.open("ab") as log:
            self.log_from = log.tell()
            self.started_wall = time.time()
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sla_stream.cli", "worker", *self.extra_args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str, timeout: float = 2.0) -> bytes:
        url = f"http://127.0.0.1:{self.web_port}{path}"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bytes(response.read())

    def metrics(self) -> dict[str, float] | None:
        """The worker's metrics, or None while its web server is not up yet."""
        self.check()
        try:
            return parse_metrics(self.get("/metrics").decode())
        except OSError:
            return None

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"worker exited {self.proc.returncode}:\n{self.output()}")

    def wait_ticking(self, timeout_s: float) -> dict[str, float]:
        """Until the first tick ran: its partitions are assigned and its due index is built."""

        def ticked() -> dict[str, float] | None:
            m = self.metrics()
            return m if m and m.get("sla_tick_seconds_count", 0) > 0 else None

        return wait_for(ticked, timeout_s, f"worker {self.log_path.stem} ticking")

    def wait_processed(self, count: int, timeout_s: float) -> dict[str, float]:
        def done() -> dict[str, float] | None:
            m = self.metrics()
            return m if m and processed(m) >= count else None

        return wait_for(done, timeout_s, f"worker {self.log_path.stem} at {count} events", 0.5)

    def rss_bytes(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def log_lines(self) -> list[str]:
        """This start's log lines."""
        with self.log_path.open("rb") as log:
            log.seek(self.log_from)
            return log.read().decode(errors="replace").splitlines()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@contextlib.contextmanager
def running(*workers: Worker) -> Iterator[None]:
    """Stop every worker on exit, whatever happened."""
    try:
        yield
    finally:
        for w in workers:
            w.stop()


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Send (key, value) records as fast as the broker takes them; wait for every ack."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value=value, key=key))
            sent += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


class Collector:
    """Reads a topic from the start in the background: (wall receive time, JSON value) pairs."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.values: list[tuple[float, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Collector:
        self.consumer = AIOKafkaConsumer(  # inside the loop: aiokafka binds to it
            self.topic,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=50,  # a fetch returns soon after data arrives: receive time is fair
            metadata_max_age_ms=1000,
        )
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            now = time.time()
            for messages in batch.values():
                self.values.extend((now, orjson.loads(m.value)) for m in messages)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.consumer.stop()


async def read_until(
    bootstrap: str,
    topic: str,
    enough: Callable[[list[tuple[float, bytes | None, bytes]]], bool],
    timeout_s: float,
    group: str | None = None,
) -> list[tuple[float, bytes | None, bytes]]:
    """(wall receive time, key, value) of a topic's records from the start until `enough`.

    Reads until it has what it expects, never to the reported end offset (wrong on this broker).
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        metadata_max_age_ms=1000,
    )
    got: list[tuple[float, bytes | None, bytes]] = []
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not enough(got):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: have {len(got)} records after {timeout_s:.0f} s")
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for messages in batch.values():
                got.extend((now, m.key, m.value) for m in messages)
    finally:
        await consumer.stop()
    return got
