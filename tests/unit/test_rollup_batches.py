"""The rollup agent's batches: one bucket write per batch, markers after it, and a bucket whose
markers a SIGKILL lost still counts each of its outcomes once.

The table is a dict with the one attribute the rollups read of a Faust table (`data._dbs`, here
empty: no partition's buckets to sum for the gauge); the events carry what the agent reads.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from sla_stream.analytics.adherence import Bucket, BucketKey
from sla_stream.core.models import Outcome
from sla_stream.stream.rollups import RECENT, SEEN_PREFIX, Rollups, encode_bucket
from tests.unit.test_adherence import outcome, utc, withdrawal


class DictTable(dict):  # type: ignore[type-arg]
    data = SimpleNamespace(_dbs={})


def rollups() -> Rollups:
    app = SimpleNamespace(
        assignor=SimpleNamespace(assigned_actives=lambda: set()),
        in_recovery=False,
        rebalancing=False,
    )
    gauge = Gauge("g", "g", ["contract", "metric"], registry=CollectorRegistry())
    return Rollups(app, "outcomes", lambda contract_id: None, gauge, DictTable())


def events(*outcomes: Outcome) -> list[Any]:
    return [
        SimpleNamespace(value=o.to_json(), message=SimpleNamespace(partition=0)) for o in outcomes
    ]


def take(r: Rollups, *outcomes: Outcome) -> int:
    return r.on_outcomes(events(*outcomes), make_current=lambda event: None)


def bucket(r: Rollups, o: Outcome) -> Bucket:
    return Bucket.from_bytes(r.table[BucketKey.of(o, "UTC").encode().encode()])


def lose_markers(r: Rollups) -> None:
    for key in [k for k in r.table if k.startswith(SEEN_PREFIX)]:
        del r.table[key]


A = outcome("a", utc(2026, 4, 1, 8, 10), met=True, elapsed_s=60)
B = outcome("b", utc(2026, 4, 1, 8, 20), met=False, elapsed_s=900)
C = outcome("c", utc(2026, 4, 1, 9, 5), met=True, elapsed_s=30)
D = outcome("d", utc(2026, 4, 1, 8, 40), met=True, elapsed_s=120)


def test_a_batch_writes_the_buckets_one_at_a_time_would() -> None:
    batched, single = rollups(), rollups()
    assert take(batched, A, B, C, A, D) == 4
    assert sum(take(single, o) for o in (A, B, C, A, D)) == 4
    for o in (A, C):
        assert bucket(batched, o) == bucket(single, o)
    assert (bucket(batched, A).met, bucket(batched, A).breached) == (2, 1)
    markers = {k: v for k, v in batched.table.items() if k.startswith(SEEN_PREFIX)}
    assert markers == {k: v for k, v in single.table.items() if k.startswith(SEEN_PREFIX)}


def test_a_bucket_kept_without_its_markers_counts_a_redelivered_batch_once() -> None:
    r = rollups()
    assert take(r, A, B, C) == 3
    lose_markers(r)  # a SIGKILL kept the bucket records and lost the markers sent after them
    assert take(r, A, B, C) == 0  # redelivered: the buckets' last writes name them
    assert (bucket(r, A).met, bucket(r, A).breached, bucket(r, C).met) == (1, 1, 1)
    assert SEEN_PREFIX + b"a" in r.table  # marked now, before a later write forgets them
    assert take(r, D) == 1  # the bucket's next write names only D
    assert take(r, A, B) == 0  # the markers answer
    assert (bucket(r, A).met, bucket(r, A).breached) == (2, 1)


def test_a_withdrawal_kept_without_its_marker_is_not_applied_twice() -> None:
    r = rollups()
    take(r, A)
    gone = withdrawal(A, "wa")
    assert take(r, gone) == 1
    assert bucket(r, A).met == 0
    lose_markers(r)
    assert take(r, gone) == 0
    assert bucket(r, A).met == 0
    assert take(r, A) == 0  # the withdrawn outcome, re-sent: its marker says withdrawn


def test_the_recent_list_is_a_field_bucket_readers_ignore() -> None:
    b = Bucket(BucketKey.of(A, "UTC"), met=3, breached=1, elapsed_us=5, hist={2: 4})
    raw = encode_bucket(b, ["a", "-b"])
    assert Bucket.from_bytes(raw) == b
    assert RECENT in raw.decode()
