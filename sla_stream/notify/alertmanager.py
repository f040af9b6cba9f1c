"""What the Alertmanager bridge posts: alerts as Alertmanager sees them, and which ones fire.

No I/O and no clock here: `AlertBook.apply(alert, partition, now_s)` takes one record of
`sla.alerts` and returns what to post; the bridge (`bridge.py`) does the consuming and posting.

Mapping (Alertmanager identifies an alert by its label set, so labels hold only what names the
alert and never changes for it; everything else is an annotation):

- `warning` -> `SlaWarning`, `breach` -> `SlaBreach`, firing from `startsAt` = `emitted_at`.
  Labels: alertname, contract, customer, incident, metric, severity, clause, threshold for
  warnings, and cycle for update cycles (each cycle is a clock of its own). The `alert_id` is
  an annotation. A re-post of the same alert has the same labels, so Alertmanager updates the
  alert it has instead of adding one.
- `met` resolves its clock's warnings; `stopped` resolves its clock's breach (and the warnings
  the breach superseded: a stopped clock has nothing left to warn about); `retracted` resolves
  the alert it names. Resolving = posting the same labels with `endsAt` = now.
- A repeat of an alert the book already holds, or of one it already cleared, changes nothing.
- `at_risk` (forecasts) is not routed: nothing in the alert stream clears it; nor are
  `target_missed` and `target_headroom` (a contract's service level over a period, no incident).

Alertmanager drops a firing alert at its `endsAt`, so the bridge re-posts what fires every
resend interval with `endsAt` = now + `VALID_FOR_RESENDS` intervals (Prometheus's own rule: a
bridge that stops re-posting lets its alerts resolve within four intervals, never hangs them
forever, and a restarted Alertmanager, which keeps no alerts, gets them back at the next re-post).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sla_stream.core.durations import describe_seconds
from sla_stream.core.models import Alert

ALERTNAMES = {"warning": "SlaWarning", "breach": "SlaBreach"}
FIRING_KINDS = frozenset(ALERTNAMES)
VALID_FOR_RESENDS = 4
CLEARED_MEMORY = 100_000  # ids of cleared alerts kept, so a late repeat cannot re-fire them

Clock = tuple[str, str, int | None]  # (incident_id, metric, update cycle)


def labels(alert: Alert) -> dict[str, str]:
    """The label set that identifies the alert in Alertmanager (stable across repeats)."""
    out = {
        "alertname": ALERTNAMES[alert.kind],
        "contract": alert.contract_id,
        "customer": alert.customer_id,
        "incident": alert.incident_id,
        "metric": alert.metric,
        "severity": alert.severity,
        "clause": alert.clause_id,
    }
    if alert.kind == "warning" and alert.threshold is not None:
        out["threshold"] = f"{alert.threshold:g}"
    if alert.cycle is not None:
        out["cycle"] = str(alert.cycle)
    return out


def annotations(alert: Alert) -> dict[str, str]:
    """What a person reads: the alert id, a summary, and the clock's figures."""
    metric = alert.metric.replace("_", " ")
    if alert.kind == "warning":
        what = f"{metric} at {alert.threshold or 0:.0%} of its allowance"
    else:
        what = f"{metric} breached its allowance"
    out = {
        "alert_id": alert.alert_id,
        "summary": f"{alert.incident_id}: {what} ({alert.contract_id}, clause {alert.clause_id})",
        "description": (
            f"Clause {alert.clause_id} ({alert.clause_title}) of contract {alert.contract_id} "
            f"allows {describe_seconds(alert.allowance_s)} of business time for {metric} at "
            f"{alert.severity}; {describe_seconds(alert.elapsed_s)} had elapsed."
        ),
        "clause_title": alert.clause_title,
        "allowance_seconds": f"{alert.allowance_s:g}",
        "elapsed_seconds": f"{alert.elapsed_s:g}",
    }
    if alert.deadline is not None:
        out["deadline"] = alert.deadline.isoformat()
    return out


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def to_alertmanager(alert: Alert, ends_at_s: float) -> dict[str, Any]:
    """One element of the body of `POST /api/v2/alerts`."""
    return {
        "labels": labels(alert),
        "annotations": annotations(alert),
        "startsAt": alert.emitted_at.isoformat(),
        "endsAt": _iso(ends_at_s),
    }


def body(fire: Iterable[Alert], resolve: Iterable[Alert], now_s: float, valid_for_s: float):
    """The post for a set of changes: one entry per label set, the last change winning."""
    by_labels: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for alert, ends in [(a, now_s) for a in resolve] + [(a, now_s + valid_for_s) for a in fire]:
        entry = to_alertmanager(alert, ends)
        by_labels[tuple(sorted(entry["labels"].items()))] = entry
    return list(by_labels.values())


@dataclass
class Change:
    """What one record asks of Alertmanager."""

    fire: list[Alert] = field(default_factory=list)
    resolve: list[Alert] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fire or self.resolve)

    def extend(self, other: Change) -> None:
        self.fire.extend(other.fire)
        self.resolve.extend(other.resolve)


@dataclass
class _Firing:
    alert: Alert
    partition: int


class AlertBook:
    """The alerts that fire, per partition of `sla.alerts`, rebuilt by replaying the topic.

    `max_age_s` keeps history out of pagers: a warning or breach whose `emitted_at` is older
    than that when it is read or re-posted is no longer posted (Alertmanager then lets it go at
    its `endsAt`). It also protects a bridge pointed at a topic full of replayed history.
    """

    def __init__(self, max_age_s: float | None = None) -> None:
        self.max_age_s = max_age_s
        self._firing: dict[str, _Firing] = {}
        self._by_clock: dict[Clock, set[str]] = {}
        self._cleared: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._firing)

    def apply(self, alert: Alert, partition: int, now_s: float) -> Change:
        """Take one record; return what to fire and what to resolve."""
        if alert.kind in FIRING_KINDS:
            return self._fire(alert, partition, now_s)
        clock = (alert.incident_id, alert.metric, alert.cycle)
        if alert.kind == "met":
            return self._resolve(self._of_clock(clock, ("warning",)))
        if alert.kind == "stopped":
            return self._resolve(self._of_clock(clock, ("warning", "breach")))
        if alert.kind == "retracted" and alert.retracts is not None:
            change = self._resolve([alert.retracts] if alert.retracts in self._firing else [])
            self._remember_cleared(alert.retracts)
            return change
        return Change()

    def firing(self, now_s: float) -> list[Alert]:
        """Everything to re-post; alerts past `max_age_s` are dropped from the book."""
        old = [i for i, f in self._firing.items() if self._too_old(f.alert, now_s)]
        for alert_id in old:
            self._forget(alert_id)
        return [f.alert for f in self._firing.values()]

    def drop_partitions(self, partitions: Iterable[int]) -> int:
        """Forget (without resolving) what came from partitions this bridge no longer owns."""
        gone = set(partitions)
        ids = [i for i, f in self._firing.items() if f.partition in gone]
        for alert_id in ids:
            self._forget(alert_id)
        return len(ids)

    def _fire(self, alert: Alert, partition: int, now_s: float) -> Change:
        if alert.alert_id in self._firing or alert.alert_id in self._cleared:
            return Change()  # a repeat (a worker's re-send, a redelivery) changes nothing
        if self._too_old(alert, now_s):
            return Change()
        self._firing[alert.alert_id] = _Firing(alert, partition)
        clock = (alert.incident_id, alert.metric, alert.cycle)
        self._by_clock.setdefault(clock, set()).add(alert.alert_id)
        return Change(fire=[alert])

    def _of_clock(self, clock: Clock, kinds: tuple[str, ...]) -> list[str]:
        ids = self._by_clock.get(clock, set())
        return sorted(i for i in ids if self._firing[i].alert.kind in kinds)

    def _resolve(self, alert_ids: list[str]) -> Change:
        resolved = [self._firing[i].alert for i in alert_ids]
        for alert_id in alert_ids:
            self._forget(alert_id)
            self._remember_cleared(alert_id)
        return Change(resolve=resolved)

    def _forget(self, alert_id: str) -> None:
        f = self._firing.pop(alert_id)
        clock = (f.alert.incident_id, f.alert.metric, f.alert.cycle)
        ids = self._by_clock[clock]
        ids.discard(alert_id)
        if not ids:
            del self._by_clock[clock]

    def _remember_cleared(self, alert_id: str) -> None:
        self._cleared[alert_id] = None
        self._cleared.move_to_end(alert_id)
        while len(self._cleared) > CLEARED_MEMORY:
            self._cleared.popitem(last=False)

    def _too_old(self, alert: Alert, now_s: float) -> bool:
        return self.max_age_s is not None and now_s - alert.emitted_at.timestamp() > self.max_age_s
