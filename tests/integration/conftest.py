"""Integration fixtures: a real embedded broker on a free loopback port. It never skips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sla_stream.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One Tansu broker for the session; fails (with its output) if it cannot start."""
    b = EmbeddedBroker()
    b.start()  # raises BrokerError with the broker's output: a failure, not a skip
    try:
        yield b
    finally:
        b.stop()
