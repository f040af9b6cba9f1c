"""Integration fixtures: a real embedded broker on a free loopback port. It never skips."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sla_stream.broker import EmbeddedBroker
from tests.integration.harness import System


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One Tansu broker for the session; fails (with its output) if it cannot start."""
    b = EmbeddedBroker()
    b.start()  # raises BrokerError with the broker's output: a failure, not a skip
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def make_system(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Callable[..., System]]:
    """Build a namespaced `System` on the session broker; its workers stop after the test."""
    made: list[System] = []

    def make(**options: Any) -> System:
        s = System(broker.bootstrap, tmp_path, **options)
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.stop_all()


@pytest.fixture
def system(make_system: Callable[..., System]) -> System:
    """A namespaced `System` with default options."""
    return make_system()
