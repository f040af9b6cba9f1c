"""`Schedule`: the due index's sorted arrays and heap give what a plain list of entries gives."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla_stream.stream import due_index
from sla_stream.stream.due_index import MAX_ARRAY_ID_BYTES, DueIndex, Schedule

# Ids as people type them, and the odd ones the arrays cannot hold (long, or ending in NUL).
ids = st.one_of(
    st.text(min_size=1, max_size=20),
    st.text(min_size=MAX_ARRAY_ID_BYTES, max_size=MAX_ARRAY_ID_BYTES + 8),
    st.text(min_size=1, max_size=5).map(lambda s: s + "\0"),
)
entries = st.lists(st.tuples(st.integers(0, 50).map(float), ids), max_size=40)


def build(built: list[tuple[float, str]], pushed: list[tuple[float, str]]) -> Schedule:
    schedule = Schedule.of(array("d", [t for t, _ in built]), [i.encode() for _, i in built])
    for t, i in pushed:
        schedule.push(t, i)
    return schedule


@pytest.mark.parametrize("compact_at", [due_index.COMPACT_AT, 1])
@given(built=entries, pushed=entries, untils=st.lists(st.integers(0, 50).map(float), max_size=4))
def test_takes_give_each_id_due_once_at_its_earliest_and_keep_the_rest(
    compact_at: int,
    built: list[tuple[float, str]],
    pushed: list[tuple[float, str]],
    untils: list[float],
) -> None:
    schedule = build(built, pushed)
    schedule.compact_at = compact_at  # 1: merged whenever the heap is as long as the arrays
    left = sorted(built + pushed)
    assert schedule.entries() == left and len(schedule) == len(left)
    for until in sorted(untils):
        took = schedule.take(until)
        due = [(t, i) for t, i in left if t <= until]
        earliest = {i: min(t for t, j in due if j == i) for _, i in due}
        assert sorted(took) == sorted((t, i) for i, t in earliest.items())
        left = [(t, i) for t, i in left if t > until]
        assert schedule.entries() == left


@given(entries, entries, st.integers(0, 50).map(float))
def test_the_arrays_of_a_schedule_build_the_same_schedule(
    built: list[tuple[float, str]], pushed: list[tuple[float, str]], until: float
) -> None:
    schedule = build(built, pushed)
    schedule.take(until)
    at, keys, rest = schedule.arrays()
    assert list(at) == sorted(at)
    again = Schedule(at, keys)
    for t, i in rest:
        again.push(t, i)
    assert again.entries() == schedule.entries()


def test_a_limit_leaves_the_rest_for_the_next_take() -> None:
    schedule = build([(1.0, "a"), (2.0, "b"), (3.0, "c")], [(0.5, "d")])
    assert [i for _, i in schedule.take(10.0, limit=2)] == ["a", "b"]
    assert [i for _, i in schedule.take(10.0, limit=2)] == ["c", "d"]
    assert schedule.take(10.0) == []


def test_what_a_tick_took_is_put_back_for_a_save_at_its_own_instant() -> None:
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    index = DueIndex()
    index.schedule(0, "due-early", t0)
    index.schedule(0, "due-later", t0 + timedelta(hours=1))
    index.schedule_expiry(0, "expired", t0)
    index.park(0, "c1", "parked")
    assert index.pop_due(0, t0 + timedelta(minutes=1)) == ["due-early"]
    assert index.pop_expired(0, t0 + timedelta(minutes=1), 10) == ["expired"]
    assert index.unpark(0, "c1") == {"parked"}
    due, expiries, parked = index.with_taken(0)  # the tick stopped before handling them
    assert due.entries() == [
        (t0.timestamp(), "due-early"),
        ((t0 + timedelta(hours=1)).timestamp(), "due-later"),
    ]
    assert expiries.entries() == [(t0.timestamp(), "expired")]
    assert parked == {"c1": {"parked"}}
    index.pop_due(0, t0)  # the next tick starts afresh: nothing of the last one is kept
    assert index.with_taken(0)[2] == {}
