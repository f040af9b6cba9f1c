"""What a worker's start hands to Faust: the session timeout, and a table manager that starts
at once (the group join waits for it)."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.tables.manager import TableManager

from sla_stream.settings import Settings
from sla_stream.stream.worker import start_tables_at_once
from sla_stream.worker_app import faust_settings


def test_the_session_timeout_setting_reaches_faust() -> None:
    assert faust_settings(Settings(session_timeout=7.5), "k:9092")["broker_session_timeout"] == 7.5
    # The default sits at Kafka's smallest allowed session, far below the old 10 s.
    assert faust_settings(Settings(), "k:9092")["broker_session_timeout"] == 6.0


class Manager:
    """What `TableManager.on_start` touches on its instance, recording the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.should_stop = False
        manager = self

        class Recovery:
            async def start(self) -> None:
                manager.calls.append("recovery")

        self.recovery = Recovery()

    async def sleep(self, seconds: float) -> None:
        self.calls.append(f"sleep {seconds}")

    async def _update_channels(self) -> None:
        self.calls.append("channels")


def test_the_table_manager_starts_recovery_without_pausing() -> None:
    start_tables_at_once()
    start_tables_at_once()  # idempotent
    manager: Any = Manager()
    asyncio.run(TableManager.on_start(manager))
    assert manager.calls == ["channels", "recovery"]

    stopping: Any = Manager()
    stopping.should_stop = True
    asyncio.run(TableManager.on_start(stopping))
    assert stopping.calls == []
