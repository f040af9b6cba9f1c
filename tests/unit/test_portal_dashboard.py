"""Dashboard figures from per-contract reports: portfolio sums, breaches, merged quantiles, filters.

Reports are made by the real `series` (and so `analytics.adherence.report`) from buckets fed
the real `Rollup.apply`, so the arithmetic under test is the one the worker runs.
"""

from __future__ import annotations

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
    portfolio,
    select_contracts,
    series,
    trends,
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


def test_rate_text_states_numerator_and_denominator() -> None:
    assert dashboard_html.rate_text({"rate": 0.5, "numerator": 1, "denominator": 2}) == (
        "50.0 % (1/2)"
    )
    assert dashboard_html.rate_text({"rate": None, "numerator": 0, "denominator": 0}) == (
        "n/a (0/0)"
    )
