"""Argument parsing shared by the commands."""

from __future__ import annotations

from datetime import datetime

import click


def aware_instant(value: str | None, example: str = "2026-01-05T08:00:00Z") -> datetime | None:
    """An ISO 8601 instant with an offset, or None; a naive time is refused, not guessed."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 instant") from None
    if at.tzinfo is None:
        raise click.BadParameter(f"{value!r} needs an offset, like {example}")
    return at
