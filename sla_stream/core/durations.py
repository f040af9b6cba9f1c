"""Durations as account managers write them (`15m`, `4h`, `90s`, `1h30m`, `PT4H`), in seconds."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

# Units in descending order, each at most once: `4h`, `90s`, `1h30m`, `1.5h`.
_COMPACT = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}
# Allowances count business time, where "a day" could mean 24 hours or one business day (and
# ISO 8601 months and years have no fixed length at all), so only hours and smaller are taken.
_DAYS = re.compile(r"^(?:\d+(?:\.\d+)?d|P[^T]+)", re.IGNORECASE)
_TIMEDELTA = TypeAdapter(timedelta)

DURATION_HELP = "a duration with a unit, like 90s, 15m, 4h, 1h30m or ISO 8601 PT4H"
DAYS_HELP = (
    "days are ambiguous in business time (24 hours or one business day?); write hours, like 48h"
)


def parse_duration_seconds(text: object) -> float:
    """Seconds of a positive duration; raises ValueError naming the accepted forms.

    A bare number is refused: `allowance: 4` is as likely to mean four hours as four seconds.
    """
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"expected {DURATION_HELP}")
    raw = text.strip()
    if _DAYS.match(raw):
        raise ValueError(DAYS_HELP)
    if raw.upper().startswith("P"):
        seconds = _iso_seconds(raw.upper())
    else:
        seconds = _compact_seconds(raw.lower())
    if seconds <= 0:
        raise ValueError("a duration must be longer than zero")
    return seconds


def _iso_seconds(raw: str) -> float:
    try:
        return _TIMEDELTA.validate_python(raw).total_seconds()
    except ValidationError:
        raise ValueError(f"expected {DURATION_HELP}") from None


def _compact_seconds(raw: str) -> float:
    match = _COMPACT.match(raw) if raw else None
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"expected {DURATION_HELP}")
    return sum(float(v) * _UNIT_SECONDS[u] for u, v in match.groupdict().items() if v)


def describe_seconds(seconds: float) -> str:
    """Plain words for an allowance: 900 -> '15 minutes', 5400 -> '1 hour 30 minutes'."""
    if seconds < 1:
        return f"{seconds:g} seconds"
    parts = []
    rest = round(seconds)
    for name, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return " ".join(parts)
