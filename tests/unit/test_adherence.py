"""Adherence rollups: hand-computed rates, quarters in Berlin, withdrawals, repeats, quantiles."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla_stream.analytics import histogram
from sla_stream.analytics.adherence import (
    Bucket,
    BucketKey,
    Query,
    Rollup,
    contract_zone,
    decode_seen,
    encode_seen,
    key_prefix,
    report,
    totals,
)
from sla_stream.core.models import Outcome
from sla_stream.core.terms import ContractRecord, ContractTerms, Target

BERLIN = "Europe/Berlin"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def outcome(
    oid: str,
    settled_at: datetime,
    *,
    met: bool,
    elapsed_s: float,
    metric: str = "first_response",
    severity: str = "P1",
    category: str | None = "network",
    contract_id: str = "acme",
    withdraws: str | None = None,
) -> Outcome:
    return Outcome(
        outcome_id=oid,
        incident_id=f"inc-{oid}",
        contract_id=contract_id,
        customer_id="cust",
        tier="gold",
        severity=severity,  # type: ignore[arg-type]
        category=category,
        metric=metric,  # type: ignore[arg-type]
        allowance_s=1000.0,
        elapsed_s=elapsed_s,
        met=met,
        opened_at=settled_at - timedelta(seconds=elapsed_s),
        settled_at=settled_at,
        withdraws=withdraws,
    )


def withdrawal(of: Outcome, wid: str) -> Outcome:
    return of.model_copy(update={"outcome_id": wid, "withdraws": of.outcome_id})


O1 = outcome("o1", utc(2026, 3, 31, 21, 30), met=True, elapsed_s=600)  # 23:30 CEST, Q1
O2 = outcome("o2", utc(2026, 3, 31, 22, 10), met=False, elapsed_s=900)  # 00:10 CEST 1 Apr, Q2
O3 = outcome("o3", utc(2026, 4, 1, 8), met=True, elapsed_s=300, severity="P2", category="db")
O4 = outcome("o4", utc(2026, 4, 1, 12), met=False, elapsed_s=14400, metric="resolution")
O5 = outcome("o5", utc(2026, 3, 15, 10), met=True, elapsed_s=7200, metric="resolution")
O6 = outcome("o6", utc(2026, 4, 1, 9), met=True, elapsed_s=1200)
STREAM = [O1, O2, O3, O4, O5, O2, withdrawal(O3, "w3"), O6]


def rolled(stream: list[Outcome], tz: str = BERLIN) -> Rollup:
    r = Rollup()
    for o in stream:
        r.apply(o, tz)
    return r


def day_report(r: Rollup, tz: str = BERLIN, **kw: Any) -> dict[str, Any]:
    q = Query("acme", tz, utc(2026, 3, 30, 22), utc(2026, 4, 1, 22), "day", **kw)
    return report(r.buckets.values(), q)


def rates(rep: dict[str, Any], metric: str) -> list[tuple[str, float | None, int, int]]:
    return [
        (p["period"], p["rate"], p["numerator"], p["denominator"])
        for p in rep["metrics"][metric]["periods"]
    ]


def test_daily_rates_in_berlin_are_hand_computed() -> None:
    rep = day_report(rolled(STREAM))
    # 31 Mar: o1 met. 1 Apr: o2 breached (00:10 local), o3 withdrawn, o6 met.
    assert rates(rep, "first_response") == [("2026-03-31", 1.0, 1, 1), ("2026-04-01", 0.5, 1, 2)]
    assert rates(rep, "resolution") == [("2026-03-31", None, 0, 0), ("2026-04-01", 0.0, 0, 1)]
    assert rep["metrics"]["first_response"]["total"] == {
        "rate": 2 / 3,
        "numerator": 2,
        "denominator": 3,
    }
    assert rep["from"] == "2026-03-31T00:00:00+02:00" and rep["to"] == "2026-04-02T00:00:00+02:00"


NONE = {"first_response": 0, "resolution": 0, "update": 0}


def test_breaches_per_quarter_use_the_contract_zone() -> None:
    berlin = day_report(rolled(STREAM))["breaches_per_quarter"]
    assert berlin == [
        {"quarter": "2026-Q1", "breaches": 0, "by_metric": {**NONE, "first_response": 0}},
        {
            "quarter": "2026-Q2",
            "breaches": 2,
            "by_metric": {**NONE, "first_response": 1, "resolution": 1},
        },
    ]
    # In UTC, o2 (22:10Z on 31 Mar) is a Q1 breach.
    in_utc = day_report(rolled(STREAM, "UTC"), "UTC")["breaches_per_quarter"]
    assert [(q["quarter"], q["breaches"]) for q in in_utc] == [("2026-Q1", 1), ("2026-Q2", 1)]


def test_update_adherence_counts_cycles() -> None:
    """Each update cycle is an outcome of its own (engine rule 14): a day with three cycles of
    one incident, one breached, is 2 met / 3 settled, and a withdrawn cycle leaves the count."""
    cycles = [
        outcome(f"u{n}", utc(2026, 4, 1, 8 + n), met=n != 2, elapsed_s=1800, metric="update")
        for n in (1, 2, 3)
    ]
    cycles = [c.model_copy(update={"cycle": n}) for n, c in enumerate(cycles, start=1)]
    rep = day_report(rolled([*cycles, cycles[0]]), metric="update")
    assert rates(rep, "update") == [("2026-03-31", None, 0, 0), ("2026-04-01", 2 / 3, 2, 3)]
    assert rep["breaches_per_quarter"][-1]["by_metric"] == {"update": 1}
    rep = day_report(rolled([*cycles, withdrawal(cycles[2], "w-u3")]), metric="update")
    assert rates(rep, "update")[-1] == ("2026-04-01", 0.5, 1, 2)


def test_quarter_step_and_metric_filter() -> None:
    q = Query("acme", BERLIN, utc(2026, 1, 1), utc(2026, 6, 1), "quarter", metric="resolution")
    rep = report(rolled(STREAM).buckets.values(), q)
    assert list(rep["metrics"]) == ["resolution"]
    assert rates(rep, "resolution") == [("2026-Q1", 1.0, 1, 1), ("2026-Q2", 0.0, 0, 1)]
    assert [q["breaches"] for q in rep["breaches_per_quarter"]] == [0, 1]


def test_trends_per_category_from_the_histogram() -> None:
    trends = day_report(rolled(STREAM))["trends"]["first_response"]
    assert set(trends) == {"network"}  # the only db clock was withdrawn
    first, second = trends["network"]
    # 600 s is in bin [10^(44/16), 10^(45/16)); the median is the bin's geometric middle.
    assert first == {
        "period": "2026-03-31",
        "count": 1,
        "median_s": round(10 ** (44.5 / 16), 3),
        "p90_s": round(10 ** (44.9 / 16), 3),
        "mean_s": 600.0,
    }
    # 900 s in bin 48 [10^(47/16), 1000), 1200 s in bin 50 [10^(49/16), 10^(50/16)).
    # Median rank 1.0 ends bin 48 -> 1000 s; p90 rank 1.8 is 0.8 into bin 50.
    assert second["count"] == 2 and second["mean_s"] == 1050.0
    assert second["median_s"] == pytest.approx(1000.0)
    assert second["p90_s"] == pytest.approx(10 ** (49.8 / 16), abs=1e-3)


def test_repeated_outcome_changes_nothing() -> None:
    r = Rollup()
    assert r.apply(O2, BERLIN) is not None
    assert r.apply(O2, BERLIN) is None
    (bucket,) = r.buckets.values()
    assert (bucket.met, bucket.breached, bucket.elapsed_us) == (0, 1, 900_000_000)


def test_withdrawal_undoes_exactly_once_and_tombstones_a_late_outcome() -> None:
    r = rolled([O1, O6])
    w = withdrawal(O6, "w6")
    assert r.apply(w, BERLIN) is not None
    assert r.apply(w, BERLIN) is None
    assert r.apply(O6, BERLIN) is None  # a re-sent outcome after its withdrawal stays out
    assert totals(r.buckets.values()) == {("acme", "first_response"): (1, 0)}
    early = Rollup()
    early.apply(w, BERLIN)
    assert early.apply(O6, BERLIN) is None
    assert totals(early.buckets.values()) == {("acme", "first_response"): (0, 0)}


def test_bucket_round_trips_through_bytes() -> None:
    r = rolled(STREAM)
    for b in r.buckets.values():
        assert Bucket.from_bytes(b.to_bytes()) == b
        assert BucketKey.decode(b.key.encode()) == b.key
        assert b.key.encode().startswith(key_prefix("acme", b.key.metric))


def test_key_of_half_hour_zone_keeps_minutes() -> None:
    key = BucketKey.of(O6, "Asia/Kolkata")
    assert key.hour_start == utc(2026, 4, 1, 8, 30)
    assert "2026-04-01T08:30Z" in key.encode()


def test_contract_zone_pins_the_version_in_force() -> None:
    def terms(version: int, tz: str, start: datetime) -> ContractTerms:
        return ContractTerms(
            contract_id="acme",
            version=version,
            customer_id="cust",
            tier="gold",
            timezone=tz,
            effective_from=start,
            calendars={"24x7": {"timezone": tz, "hours": "24x7"}},
            targets=(
                Target(
                    metric="first_response",
                    severity="P1",
                    allowance_s=60,
                    calendar="24x7",
                    clause_id="c",
                    clause_title="t",
                ),
            ),
        )

    record = ContractRecord(
        contract_id="acme",
        versions=(terms(1, BERLIN, utc(2025, 1, 1)), terms(2, "UTC", utc(2026, 6, 1))),
    )
    assert contract_zone(record, utc(2026, 3, 1)) == BERLIN
    assert contract_zone(record, utc(2026, 7, 1)) == "UTC"
    assert contract_zone(record) == "UTC"
    assert contract_zone(None) == "UTC"


def test_quantile_edges_and_interpolation() -> None:
    assert histogram.quantile({}, 0.5) is None
    assert histogram.bin_of(0.5) == 0 and histogram.bin_of(1.0) == 1
    assert histogram.bin_of(1e8) == histogram.TOP_BIN
    assert histogram.quantile({0: 2}, 0.5) == pytest.approx(0.5)
    assert histogram.quantile({histogram.TOP_BIN: 1}, 0.9) == histogram.EDGES_S[-1]
    counts = histogram.from_values([10, 100, 1000, 10000])
    assert histogram.quantile(counts, 0.5) == pytest.approx(10 ** (33 / 16))  # end of 100's bin
    with pytest.raises(ValueError):
        histogram.quantile(counts, 0)


@given(st.lists(st.floats(min_value=0, max_value=1e8), min_size=1, max_size=50))
def test_quantile_stays_in_the_bin_of_the_ranked_value(values: list[float]) -> None:
    counts = histogram.from_values(values)
    ordered = sorted(values)
    for q in (0.5, 0.9, 1.0):
        got = histogram.quantile(counts, q)
        assert got is not None
        rank_value = ordered[max(0, math.ceil(q * len(values)) - 1)]
        lo, hi = histogram.bin_bounds(histogram.bin_of(rank_value))
        assert lo <= got <= hi


@given(st.lists(st.sampled_from(range(8)), max_size=40), st.randoms(use_true_random=False))
def test_withdrawals_undo_counts_in_any_order_with_repeats(
    picks: list[int], rnd: random.Random
) -> None:
    base = [
        outcome(f"x{i}", utc(2026, 4, 1, 10, i), met=i % 3 != 0, elapsed_s=100.0 * (i + 1))
        for i in range(8)
    ]
    withdrawn = {i for i in picks if i % 2 == 0}
    stream = [base[i] for i in picks] + [withdrawal(base[i], f"w{i}") for i in withdrawn]
    stream += stream[: len(stream) // 2]  # at-least-once: repeats
    rnd.shuffle(stream)
    got = rolled(stream)
    want = rolled([base[i] for i in sorted(set(picks)) if i not in withdrawn])
    for key in set(got.buckets) | set(want.buckets):
        g, w = got.buckets.get(key), want.buckets.get(key)
        g_counts = (g.met, g.breached, g.elapsed_us, g.hist) if g else (0, 0, 0, {})
        w_counts = (w.met, w.breached, w.elapsed_us, w.hist) if w else (0, 0, 0, {})
        assert g_counts == w_counts


def test_a_bucket_record_does_not_grow_with_the_outcomes_it_counts() -> None:
    # Outcome ids live beside the buckets: 10k outcomes of one hour make one fixed-size record
    # (the benchmark's busy hour once made a 479 KB bucket, re-encoded on every outcome).
    r = Rollup()
    sizes = []
    for i in range(10_000):
        r.apply(O2.model_copy(update={"outcome_id": f"o{i}"}), BERLIN)
        if i in (9, 9_999):
            (bucket,) = r.buckets.values()
            sizes.append(len(bucket.to_bytes()))
    (bucket,) = r.buckets.values()
    assert bucket.count == 10_000 and len(r.seen) == 10_000
    assert sizes[1] <= sizes[0] + 16  # at most a few more digits in the counters


def test_seen_markers_round_trip() -> None:
    for value in (None, (True, 0), (False, 12_345_678)):
        assert decode_seen(encode_seen(value)) == value
