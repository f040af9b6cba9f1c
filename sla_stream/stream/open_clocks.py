"""`sla_open_clocks{metric,severity}`: clocks running or paused on this worker's partitions.

Kept by difference: each committed step reports the incident's state before and after, so the
cost is per step, not per scrape. Counts are kept per partition and recounted from the table when
partitions are assigned, so a partition that moves to another worker leaves this one's gauge.
A breached clock that has not stopped is still open; parked incidents have no clocks yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sla_stream.core.engine import IncidentState
from sla_stream.stream.state import OPEN_PHASES

ClockSlot = tuple[str, str]  # (metric, severity)


def open_slots(state: IncidentState | None) -> Counter[ClockSlot]:
    """The incident's open clocks by (metric, severity)."""
    if state is None or state.parked:
        return Counter()
    return Counter((c.metric, c.severity) for c in state.clocks if c.phase in OPEN_PHASES)


class OpenClocks:
    """Counts behind the gauge; every slot ever seen stays exported (0 when none are open)."""

    def __init__(self, gauge: Any) -> None:
        self.gauge = gauge
        self.by_partition: dict[int, Counter[ClockSlot]] = {}

    def change(self, partition: int, before: IncidentState | None, after: IncidentState) -> None:
        """Apply one committed step of an incident on `partition`."""
        old, new = open_slots(before), open_slots(after)
        if old == new:
            return
        counts = self.by_partition.setdefault(partition, Counter())
        for slot in old.keys() | new.keys():
            counts[slot] += new[slot] - old[slot]
            self._show(slot)

    def recount(self, states: Iterable[tuple[int, IncidentState]]) -> None:
        """Start over from every incident of the assigned partitions (after a rebalance)."""
        before = self.total()
        self.by_partition = {}
        for partition, state in states:
            self.by_partition.setdefault(partition, Counter()).update(open_slots(state))
        for slot in before.keys() | self.total().keys():
            self._show(slot)

    def recount_counts(self, by_partition: dict[int, Counter[ClockSlot]]) -> None:
        """`recount` from counts already made (`IncidentStore.rebuild` makes them in its pass)."""
        before = self.total()
        self.by_partition = {p: Counter(c) for p, c in by_partition.items()}
        for slot in before.keys() | self.total().keys():
            self._show(slot)

    def total(self) -> Counter[ClockSlot]:
        out: Counter[ClockSlot] = Counter()
        for counts in self.by_partition.values():
            out.update(counts)
        return out

    def _show(self, slot: ClockSlot) -> None:
        value = sum(c.get(slot, 0) for c in self.by_partition.values())
        self.gauge.labels(*slot).set(value)
