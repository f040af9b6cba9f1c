"""Deterministic ids for alerts and outcomes: the same history always yields the same ids."""

from __future__ import annotations

import hashlib


def _digest(*parts: object) -> str:
    text = "\x1f".join(["-" if p is None else str(p) for p in parts])
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def threshold_key(threshold: float | None) -> str:
    """A threshold as it enters an id: `0.75`, `1.0`, or `-` for kinds without one."""
    return "-" if threshold is None else repr(float(threshold))


def alert_id(
    incident_id: str,
    metric: str,
    kind: str,
    threshold: float | None,
    revision: int,
    life: str | None = None,
) -> str:
    """Id of an alert in a slot (incident, metric, kind, threshold) at a revision.

    The revision counts earlier retractions of that slot, so a correction gets a new id (a
    notifier de-duplicating by id does not drop it) and a replay of the same history repeats it.
    `life` tells a reused incident id's later lives apart (None for the first life).
    """
    parts = ("alert", incident_id, metric, kind, threshold_key(threshold), revision)
    return _digest(*parts) if life is None else _digest(*parts, life)


def retraction_id(retracted_alert_id: str) -> str:
    """Id of the `retracted` alert that names `retracted_alert_id`: one per retracted alert."""
    return _digest("retracted", retracted_alert_id)


def outcome_id(incident_id: str, metric: str, revision: int, life: str | None = None) -> str:
    """Id of a clock's outcome; the revision counts the outcomes published before for it, and
    `life` tells a reused incident id's later lives apart (None for the first life)."""
    parts = ("outcome", incident_id, metric, revision)
    return _digest(*parts) if life is None else _digest(*parts, life)


def withdrawal_id(withdrawn_outcome_id: str) -> str:
    """Id of the record that withdraws `withdrawn_outcome_id`."""
    return _digest("withdrawal", withdrawn_outcome_id)
