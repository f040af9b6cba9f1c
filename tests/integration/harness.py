"""Drive real workers and a real broker from tests: processes, producers and consumers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sla_stream.broker import free_port
from sla_stream.core.terms import ContractRecord
from sla_stream.settings import Settings
from sla_stream.stream.admin import ensure_topics
from sla_stream.stream.topics import topic_specs
from tests.integration.programs import LoggedProcess


class CliProcess(LoggedProcess):
    """Start one `sla-stream` subprocess in its own session; needs `log_path` and `proc` on the
    class that mixes it in."""

    def spawn(self, args: list[str], env: dict[str, str]) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sla_stream.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()


@dataclass
class WorkerProcess(CliProcess):
    """One `sla-stream worker` subprocess with its own data dir and web port."""

    env: dict[str, str]
    data_dir: Path
    web_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.spawn(["worker"], self.env)
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def get(self, path: str, timeout: float = 2.0) -> bytes:
        with urllib.request.urlopen(self.url(path), timeout=timeout) as response:
            return response.read()

    def partitions(self) -> list[int] | None:
        try:
            return orjson.loads(self.get("/healthz"))["partitions"]
        except OSError:
            return None

    def wait_ready(self, timeout_s: float = 60.0, partitions: int | None = None) -> None:
        """Wait until the worker's due index covers some (or `partitions`) partitions."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.output()}")
            got = self.partitions()
            if got and (partitions is None or len(got) == partitions):
                return
            time.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout_s}s:\n{self.output()}")


@dataclass
class System:
    """A namespaced slice of the shared broker: its own topic prefix and app id."""

    bootstrap: str
    root: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}.")
    partitions: int = 4
    workers: list[WorkerProcess] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return Settings(
            broker=self.bootstrap,
            topic_prefix=self.prefix,
            partitions=self.partitions,
            app_id=f"{self.prefix}app",
        )

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    async def create_topics(self) -> None:
        await ensure_topics(self.bootstrap, topic_specs(self.settings))

    def worker(self, name: str = "w1") -> WorkerProcess:
        data_dir = self.root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLA_")},
            "SLA_BROKER": self.bootstrap,
            "SLA_TOPIC_PREFIX": self.prefix,
            "SLA_PARTITIONS": str(self.partitions),
            "SLA_APP_ID": f"{self.prefix}app",
            "SLA_DATA_DIR": str(data_dir),
            "SLA_WEB_PORT": str(free_port()),
            "SLA_TICK_INTERVAL": "0.25",
            # The fixture's broker is the embedded one: its end offsets need the check off.
            "SLA_RECOVERY_CONSISTENCY_CHECK": "false",
            **self.extra_env,
        }
        w = WorkerProcess(env, data_dir, int(env["SLA_WEB_PORT"]), self.root / f"{name}.log")
        self.workers.append(w)
        return w

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()

    async def put_contracts(self, records: list[ContractRecord]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            for r in records:
                await producer.send_and_wait(
                    self.topic("contracts"),
                    r.model_dump_json().encode(),
                    key=r.contract_id.encode(),
                )
        finally:
            await producer.stop()

    async def send(
        self, events: list[dict[str, Any]] | list[bytes], key: bytes | None = None
    ) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=2)
        await producer.start()
        try:
            for e in events:
                if isinstance(e, bytes):
                    await producer.send_and_wait(self.topic("incident-events"), e, key=key)
                else:
                    await producer.send_and_wait(
                        self.topic("incident-events"),
                        orjson.dumps(e),
                        key=e["incident_id"].encode(),
                    )
        finally:
            await producer.stop()


class TopicReader:
    """Collects a topic's messages in the background; tests wait for what they expect."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.messages: list[tuple[float, dict[str, Any]]] = []  # (wall receive time, value)
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            metadata_max_age_ms=1000,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            self.messages.append((time.time(), orjson.loads(record.value)))

    @property
    def values(self) -> list[dict[str, Any]]:
        return [m for _, m in self.messages]

    async def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 30.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.values):
                return self.values
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"timed out on {self.topic}; have {len(self.messages)}: {self.values[-10:]}"
        )

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer:
            await self._consumer.stop()
