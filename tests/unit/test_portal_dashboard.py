"""Dashboard figures from per-contract reports: portfolio sums, breaches, merged quantiles, filters.

Reports are made by the real `series` (and so `analytics.adherence.report`) from buckets fed
the real `Rollup.apply`, so the arithmetic under test is the one the worker runs.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from sla_stream.analytics import histogram
from sla_stream.analytics.adherence import Query, Rollup, report
from sla_stream.core.models import Outcome
from sla_stream.web import charts, dashboard_html
from sla_stream.web.dashboard_data import (
    BadFilter,
    Filters,
    breaches_by_quarter,
    category_table,
    portfolio,
    select_contracts,
    series,
    trends,
)
from sla_stream.web.page_budget import (
    MAX_SERIES,
    OTHERS,
    TOP_CATEGORIES,
    default_range,
    default_range_text,
)
from tests.unit.test_portal import RECORDS

_n = 0


def outcome(
    contract: str,
    settled: str,
    met: bool,
    elapsed_s: float,
    severity: str = "P1",
    category: str = "network",
    metric: str = "first_response",
) -> Outcome:
    global _n
    _n += 1
    at = datetime.fromisoformat(settled)
    return Outcome(
        outcome_id=f"o{_n}",
        incident_id=f"i{_n}",
        contract_id=contract,
        customer_id="c",
        tier="gold",
        severity=severity,
        category=category,
        metric=metric,
        allowance_s=600,
        elapsed_s=elapsed_s,
        met=met,
        opened_at=at - timedelta(seconds=elapsed_s),
        settled_at=at,
    )


def report_of(
    outcomes: list[Outcome], contract: str, tz: str, step: str = "quarter", **kw: Any
) -> dict[str, Any]:
    rollup = Rollup()
    for o in outcomes:
        rollup.apply(o, tz)
    query = Query(
        contract,
        tz,
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 6, 30, 12, tzinfo=UTC),  # Q1 and Q2 in Berlin and in UTC
        step,  # type: ignore[arg-type]
    )
    buckets = list(rollup.of_contract(contract))
    if kw.get("plain"):  # the adherence API's report, without the dashboard's histograms
        return report(buckets, query)
    return series(buckets, query, kw.get("severity"))


A = [
    outcome("a", "2026-02-01T10:00:00+00:00", True, 100),
    outcome("a", "2026-02-02T10:00:00+00:00", False, 900),
    outcome("a", "2026-05-01T10:00:00+00:00", True, 200, severity="P2", category="db"),
    outcome("a", "2026-05-01T11:00:00+00:00", True, 3000, metric="resolution"),
]
B = [
    outcome("b", "2026-02-10T10:00:00+00:00", True, 300),
    outcome("b", "2026-04-10T10:00:00+00:00", False, 1200),
    outcome("b", "2026-04-11T10:00:00+00:00", False, 1500, severity="P2"),
]


def test_portfolio_sums_numerators_and_denominators_per_period() -> None:
    reports = [report_of(A, "a", "Europe/Berlin"), report_of(B, "b", "UTC")]
    got = portfolio(reports, "quarter")
    assert got["periods"] == ["2026-Q1", "2026-Q2"]
    fr = got["metrics"]["first_response"]
    assert [(p["period"], p["numerator"], p["denominator"]) for p in fr["periods"]] == [
        ("2026-Q1", 2, 3),
        ("2026-Q2", 1, 3),
    ]
    assert fr["total"] == {"rate": 0.5, "numerator": 3, "denominator": 6}
    res = got["metrics"]["resolution"]
    assert [(p["numerator"], p["denominator"], p["rate"]) for p in res["periods"]] == [
        (0, 0, None),
        (1, 1, 1.0),
    ]


def test_a_severity_filter_counts_only_that_severity() -> None:
    rep = report_of(A, "a", "Europe/Berlin", severity="P2")
    fr = rep["metrics"]["first_response"]
    assert [(p["numerator"], p["denominator"]) for p in fr["periods"]] == [(0, 0), (1, 1)]
    assert rep["breaches_per_quarter"][0]["breaches"] == 0  # the Q1 breach was a P1


def test_breaches_per_quarter_per_contract() -> None:
    reports = [report_of(A, "a", "Europe/Berlin"), report_of(B, "b", "UTC")]
    assert breaches_by_quarter(reports) == {
        "quarters": ["2026-Q1", "2026-Q2"],
        "contracts": {"a": [1, 0], "b": [0, 2]},
        "totals": [1, 2],
    }


def test_trends_are_quantiles_of_the_merged_histograms_not_averages_of_medians() -> None:
    reports = [report_of(A, "a", "Europe/Berlin"), report_of(B, "b", "UTC")]
    got = trends(reports, ["2026-Q1", "2026-Q2"])
    network_q1 = got["first_response"]["network"][0]
    assert network_q1["period"] == "2026-Q1" and network_q1["count"] == 3
    merged = histogram.from_values([100, 900, 300])
    assert network_q1["median_s"] == round(histogram.quantile(merged, 0.5), 3)
    assert network_q1["p90_s"] == round(histogram.quantile(merged, 0.9), 3)
    # One contract alone gives exactly its own report's trend figures.
    (own,) = report_of(A, "a", "Europe/Berlin", plain=True)["trends"]["first_response"]["db"]
    assert trends([report_of(A, "a", "Europe/Berlin")], ["2026-Q2"])["first_response"]["db"] == [
        {"period": "2026-Q2", "count": 1, "median_s": own["median_s"], "p90_s": own["p90_s"]}
    ]


def test_days_of_contracts_in_different_zones_share_their_local_labels() -> None:
    # 23:30 UTC on 1 Feb is 2 Feb in Berlin: each contract's day is its own local day.
    a = [outcome("a", "2026-02-01T23:30:00+00:00", True, 60)]
    b = [outcome("b", "2026-02-02T12:00:00+00:00", False, 60)]
    reports = [report_of(a, "a", "Europe/Berlin", "day"), report_of(b, "b", "UTC", "day")]
    fr = portfolio(reports, "day")["metrics"]["first_response"]
    (feb2,) = [p for p in fr["periods"] if p["period"] == "2026-02-02"]
    assert (feb2["numerator"], feb2["denominator"]) == (1, 2)


def test_filters_parse_defaults_and_refuse_bad_values() -> None:
    f = Filters.parse({})
    assert (f.from_, f.to, f.step, f.categories, f.sort) == ("", "", "day", (), "-count")
    assert (f.with_range(date(2026, 11, 26)).from_, f.with_range(date(2026, 11, 26)).to) == (
        "2026-08-29",
        "2026-11-27",
    )
    assert Filters.parse({"severity": "P2", "step": "quarter"}).with_range(date(2026, 1, 1)).params(
        contract="x"
    ) == {
        "contract": "x",
        "severity": "P2",
        "step": "quarter",
        "from": "2025-10-04",
        "to": "2026-01-02",
    }
    with pytest.raises(BadFilter, match="severity"):
        Filters.parse({"severity": "P9"})
    with pytest.raises(BadFilter, match="step"):
        Filters.parse({"step": "week"})
    with pytest.raises(BadFilter, match="sort"):
        Filters.parse({"sort": "-colour"})


def test_contracts_are_selected_by_id_and_by_tier_in_force() -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    everything = select_contracts(RECORDS.values(), Filters(), now)
    assert [r.contract_id for r in everything] == ["alpha-extra", "alpha-msa", "beta-msa"]
    assert [
        r.contract_id for r in select_contracts(RECORDS.values(), Filters("beta-msa"), now)
    ] == ["beta-msa"]
    assert select_contracts(RECORDS.values(), Filters(tier="silver"), now) == []
    assert len(select_contracts(RECORDS.values(), Filters(tier="gold"), now)) == 3


def test_charts_are_svg_with_no_script_and_point_labels_of_met_over_settled() -> None:
    reports = [report_of(A, "a", "Europe/Berlin"), report_of(B, "b", "UTC")]
    port = portfolio(reports, "quarter")
    svg = charts.adherence_chart(port, 0.95)
    assert svg.startswith("<svg") and "<script" not in svg
    assert ">2/3<" in svg and ">1/3<" in svg and ">target 95 %<" in svg
    assert "http" not in svg.replace("http://www.w3.org", "")  # only XML namespaces
    bars = charts.breaches_chart(breaches_by_quarter(reports))
    assert "<script" not in bars and ">b<" in bars


def test_the_chart_draws_update_cycles_only_where_some_settled() -> None:
    reports = [report_of(A, "a", "Europe/Berlin"), report_of(B, "b", "UTC")]
    port = portfolio(reports, "quarter")
    assert ">update<" not in charts.adherence_chart(port, 0.95)  # none settled here
    cycles = port["metrics"]["update"]["periods"]
    cycles[0] = {**cycles[0], "rate": 0.75, "numerator": 3, "denominator": 4}
    svg = charts.adherence_chart(port, {"first_response": 0.9, "resolution": 0.95, "update": 0.95})
    assert ">update<" in svg and ">3/4<" in svg and ">resolution and update target 95 %<" in svg


def test_rate_text_states_numerator_and_denominator() -> None:
    assert dashboard_html.rate_text({"rate": 0.5, "numerator": 1, "denominator": 2}) == (
        "50.0 % (1/2)"
    )
    assert dashboard_html.rate_text({"rate": None, "numerator": 0, "denominator": 0}) == (
        "n/a (0/0)"
    )


# -- density: top categories, the page budget, defaults at the latest data ------------------------


def _many_categories(n: int) -> list[Outcome]:
    """Category `c{i}` with i + 1 clocks on 2026-02-01 (so c{n-1} is the largest)."""
    return [
        outcome(
            "a", f"2026-02-01T{10 + j % 10:02d}:00:00+00:00", True, 60 * (i + 1), category=f"c{i}"
        )
        for i in range(n)
        for j in range(i + 1)
    ]


def test_charts_show_the_largest_categories_and_all_others_pooled() -> None:
    reports = [report_of(_many_categories(12), "a", "UTC")]
    got = trends(reports, ["2026-Q1"], top=3)["first_response"]
    assert list(got) == ["c11", "c10", "c9", OTHERS]
    pooled = histogram.from_values([60.0 * (i + 1) for i in range(9) for _ in range(i + 1)])
    (others,) = got[OTHERS]
    assert others["count"] == sum(range(1, 10))
    assert others["median_s"] == round(histogram.quantile(pooled, 0.5), 3)
    # Picked categories replace the largest; the rest is still pooled.
    picked = trends(reports, ["2026-Q1"], picked=["c0", "nope"])["first_response"]
    assert list(picked) == ["c0", OTHERS] and picked[OTHERS][0]["count"] == sum(range(2, 13))


def test_the_category_table_lists_every_category_sorted_on_the_server() -> None:
    reports = [report_of(_many_categories(12), "a", "UTC")]
    by_count = category_table(reports, "-count")["first_response"]
    assert [r["category"] for r in by_count] == [f"c{i}" for i in range(11, -1, -1)]
    by_name = category_table(reports, "category")["first_response"]
    assert [r["category"] for r in by_name] == sorted(f"c{i}" for i in range(12))
    by_p90 = [r["p90_s"] for r in category_table(reports, "p90")["first_response"]]
    assert by_p90 == sorted(by_p90)


def test_no_chart_draws_more_than_a_dozen_series() -> None:
    reports = [report_of(_many_categories(30), "a", "UTC")]
    per_category = trends(reports, ["2026-Q1"])["first_response"]
    svg = charts.trend_chart(per_category, ["2026-Q1"], "p90_s")
    assert len(set(re.findall(r'class="series (serie-\d+)', svg))) == TOP_CATEGORIES + 1
    many = {"quarters": ["2026-Q1"], "contracts": {f"k{i:02d}": [i] for i in range(20)}}
    bars = charts.breaches_chart(many)
    assert len(set(re.findall(r'class="series (serie-\d+)', bars))) == MAX_SERIES
    assert f">{OTHERS}<" in bars and ">k19<" in bars and ">k00<" not in bars
    # Nothing settled: still a chart, not an error.
    assert charts.trend_chart({}, ["2026-Q1"]).startswith("<svg")


def test_dense_charts_thin_their_labels_and_leave_gaps_for_empty_periods() -> None:
    periods = [f"2026-01-{d:02d}" for d in range(1, 32)] + [
        f"2026-02-{d:02d}" for d in range(1, 29)
    ]
    rows = [{"period": p, "count": 1, "median_s": 600.0, "p90_s": 900.0} for p in periods[::2]]
    svg = charts.trend_chart({"net": rows}, periods)
    shown = [t for t in re.findall(r">(2026-\d\d-\d\d)<", svg)]
    assert 6 <= len(set(shown)) <= charts.MAX_X_LABELS
    assert "rotate(30" in svg
    # Every other day is empty: each settled day is a dot of its own, no line bridges a gap.
    assert svg.count("<circle") == len(rows)
    assert not re.search(r'<path d="M[^"]* L[^"]*" class="line nofill"', svg)
    assert "<desc" not in svg and "<script" not in svg


def test_a_long_range_at_a_fine_step_is_coarsened_and_says_so() -> None:
    record = RECORDS["alpha-msa"]
    hourly = Filters.parse({"from": "2026-Q2", "to": "2026-Q3", "step": "hour"})
    fitted, notice = hourly.check_for([record])
    assert fitted.step == "day" and notice is not None and "shown by day (91 periods)" in notice
    six_months = Filters.parse({"from": "2026-01-01", "to": "2026-07-01"})
    assert six_months.check_for([record]) == (six_months, None)
    with pytest.raises(BadFilter, match="even by quarter"):
        Filters.parse({"from": "1900-Q1", "to": "2100-Q1", "step": "quarter"}).check_for([record])


def test_the_default_range_ends_with_the_latest_settled_clock() -> None:
    latest = datetime(2017, 2, 17, 20, 30, tzinfo=UTC)  # 17:30 in Sao Paulo
    assert default_range(latest, "America/Sao_Paulo", "day") == ("2016-11-20", "2017-02-18")
    assert default_range(latest, "Asia/Tokyo", "day") == ("2016-11-21", "2017-02-19")
    assert default_range(latest, "UTC", "hour") == ("2017-02-11", "2017-02-18")
    assert default_range(latest, "UTC", "quarter") == ("2015-Q2", "2017-Q2")
    text = default_range_text("day", latest, "America/Sao_Paulo")
    assert "up to 2017-02-17, the latest with settled clocks" in text


def test_links_keep_the_categories_and_sort_and_leave_out_a_found_range() -> None:
    f = Filters.parse(
        {"category": ["db", "net"], "sort": "p90", "from": "2026-Q1", "to": "2026-Q2"}
    )  # type: ignore[dict-item]
    assert f.categories == ("db", "net")
    assert f.link(contract="x") == [
        ("contract", "x"),
        ("step", "day"),
        ("from", "2026-Q1"),
        ("to", "2026-Q2"),
        ("category", "db"),
        ("category", "net"),
        ("sort", "p90"),
    ]
    found = replace(f, found=True)
    assert [k for k, _ in found.link(contract="x")] == [
        "contract",
        "step",
        "category",
        "category",
        "sort",
    ]
    assert found.params()["from"] == "2026-Q1"  # owners are still asked for the range
