"""Service levels and service credits: the contract fields, the judging, the credit, the alerts."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla_stream.analytics.service_levels import ReplayLevels, counts_from
from sla_stream.core import service_levels as sl
from sla_stream.core.contracts import parse_contracts
from sla_stream.core.errors import InvalidContract
from sla_stream.core.models import Outcome
from sla_stream.core.terms import ContractRecord, ServiceCredit
from sla_stream.notify.alertmanager import AlertBook
from tests.unit.test_contracts import FILE, base

Counts = sl.Counts


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def with_levels(**contract: Any) -> dict[str, Any]:
    data = base()
    c = data["contracts"][0]
    c["clauses"].append({"id": "9.1", "title": "Service levels"})
    c["clauses"].append({"id": "9.2", "title": "Service credits"})
    c["service_levels"] = [
        {
            "id": "p1-response",
            "metric": "first_response",
            "severity": "P1",
            "objective": "95%",
            "clause": "9.1",
        },
        {
            "id": "restore",
            "metric": "resolution",
            "objective": 90,
            "period": "quarter",
            "clause": "9.1",
        },
    ]
    c["service_credit"] = {
        "clause": "9.2",
        "steps": [{"misses": 1, "percent": 5}, {"misses": 2, "percent": "12.5%"}],
        "cap": 10,
    }
    c.update(contract)
    return data


def record_of(data: dict[str, Any]) -> ContractRecord:
    return next(iter(parse_contracts(data, file=FILE).values()))


# -- the contracts file ---------------------------------------------------------------------------


def test_service_levels_and_credit_resolve_with_their_clauses() -> None:
    terms = record_of(with_levels()).versions[0]
    first, second = terms.service_levels
    assert (first.id, first.metric, first.severities, first.objective_percent, first.period) == (
        "p1-response",
        "first_response",
        ("P1",),
        95.0,
        "month",
    )
    assert (first.clause_id, first.clause_title) == ("9.1", "Service levels")
    assert (second.severities, second.objective_percent, second.period) == ((), 90.0, "quarter")
    credit = terms.service_credit
    assert credit is not None and credit.clause_title == "Service credits"
    assert credit.monthly_fee == pytest.approx(250000 / 12)  # the value is a year's fee
    assert [(s.misses, s.percent) for s in credit.steps] == [(1, 5.0), (2, 12.5)]


def test_a_tier_service_level_is_inherited_and_a_contract_one_replaces_it_by_id() -> None:
    data = with_levels()
    tier_level = {"id": "restore", "metric": "resolution", "objective": 80, "clause": "9.1"}
    data["tiers"]["gold"]["service_levels"] = [
        tier_level,
        {"id": "any-response", "metric": "first_response", "objective": 70, "clause": "9.1"},
    ]
    levels = {lv.id: lv for lv in record_of(data).versions[0].service_levels}
    assert set(levels) == {"restore", "any-response", "p1-response"}
    assert levels["restore"].objective_percent == 90.0  # the contract's
    assert levels["any-response"].objective_percent == 70.0  # the tier's


def test_a_service_level_without_a_clause_takes_the_clause_of_its_targets() -> None:
    data = with_levels()
    del data["contracts"][0]["service_levels"][0]["clause"]
    level = record_of(data).versions[0].service_levels[0]
    assert (level.clause_id, level.clause_title) == ("4.1", "Response")
    data["contracts"][0]["clauses"][0]["covers"] = [{"metric": "first_response", "severity": "P1"}]
    data["contracts"][0]["clauses"][2]["covers"] = [{"metric": "first_response", "severity": "P3"}]
    data["contracts"][0]["service_levels"][0]["severity"] = ["P1", "P3"]
    with pytest.raises(InvalidContract) as caught:
        parse_contracts(data, file=FILE)
    assert caught.value.path == "contracts[0].service_levels[0].clause"
    assert "4.1, 9.1" in str(caught.value)


REFUSALS = [
    # (change to the contract, path, value)
    (
        lambda c: c["service_levels"][0].update(objective=120),
        "contracts[0].service_levels[0].objective",
        120,
    ),
    (
        lambda c: c["service_levels"][0].update(objective="ninety"),
        "contracts[0].service_levels[0].objective",
        "ninety",
    ),
    (
        lambda c: c["service_levels"][1].update(period="week"),
        "contracts[0].service_levels[1].period",
        "week",
    ),
    (
        lambda c: c["service_levels"][0].update(clause="9.9"),
        "contracts[0].service_levels[0].clause",
        "9.9",
    ),
    (
        lambda c: c["service_levels"][0].update(severity="P2"),  # gold has no P2 target
        "contracts[0].service_levels[0].metric",
        "first_response",
    ),
    (
        lambda c: c["service_levels"].append(dict(c["service_levels"][0])),
        "contracts[0].service_levels[2].id",
        "p1-response",
    ),
    (
        lambda c: c["service_credit"].update(percent_per_miss=5),
        "contracts[0].service_credit",
        None,
    ),
    (
        lambda c: c["service_credit"].update(
            steps=[{"misses": 2, "percent": 5}, {"misses": 1, "percent": 9}]
        ),
        "contracts[0].service_credit",
        None,
    ),
    (
        lambda c: c["service_credit"].update(clause="none"),
        "contracts[0].service_credit.clause",
        "none",
    ),
    (
        lambda c: (c.pop("value"), c.pop("currency")),
        "contracts[0].service_credit.monthly_fee",
        None,
    ),
]


@pytest.mark.parametrize(("change", "path", "value"), REFUSALS)
def test_an_invalid_service_level_or_credit_is_refused_naming_field_and_value(
    change: Any, path: str, value: Any
) -> None:
    data = with_levels()
    change(data["contracts"][0])
    with pytest.raises(InvalidContract) as caught:
        parse_contracts(data, file=FILE)
    assert caught.value.path == path
    if value is not None:
        assert caught.value.value == value
    assert str(caught.value).startswith(f"{FILE}:{path}: ")


# -- the arithmetic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objective", "met", "breached", "headroom", "meets"),
    [
        (95, 0, 0, 0, True),  # nothing settled: the next breach misses it
        (95, 19, 0, 1, True),  # 19/20 = 95 % exactly still meets
        (95, 19, 1, 0, True),
        (95, 19, 2, -1, False),
        (95, 38, 0, 2, True),  # "2 more breaches and ..." is a headroom of 1; this is 3 more
        (95, 40, 0, 2, True),  # 40/42 = 95.2 % meets, 40/43 = 93.0 % does not
        (75, 3, 0, 1, True),
        (75, 3, 1, 0, True),
        (75, 3, 2, -1, False),
        (99.9, 999, 0, 1, True),  # decimals are exact: 999/1000 = 99.9 %
        (99.9, 998, 1, -1, False),  # 998/999 = 99.8999 %
        (100, 5, 0, 0, True),
        (50, 0, 1, -1, False),
    ],
)
def test_headroom_and_meets(
    objective: float, met: int, breached: int, headroom: int, meets: bool
) -> None:
    assert sl.headroom(objective, Counts(met, breached)) == headroom
    assert sl.meets(objective, Counts(met, breached)) is meets


@given(
    objective=st.integers(min_value=1, max_value=1000).map(lambda n: n / 10),  # 0.1 .. 100.0
    met=st.integers(min_value=0, max_value=5000),
    breached=st.integers(min_value=0, max_value=500),
)
def test_headroom_is_exactly_the_breaches_the_period_can_take(
    objective: float, met: int, breached: int
) -> None:
    """headroom_is_exact: that many more breaches still meet the objective, one more does not;
    a negative headroom means the figure is already below it."""
    h = sl.headroom(objective, Counts(met, breached))
    if h >= 0:
        assert sl.meets(objective, Counts(met, breached + h))
        assert not sl.meets(objective, Counts(met, breached + h + 1))
    else:
        assert not sl.meets(objective, Counts(met, breached))


@pytest.mark.parametrize(
    ("credit", "misses", "percent"),
    [
        (ServiceCredit(clause_id="c", clause_title="t", percent_per_miss=5, monthly_fee=1), 0, 0),
        (ServiceCredit(clause_id="c", clause_title="t", percent_per_miss=5, monthly_fee=1), 3, 15),
        (
            ServiceCredit(
                clause_id="c", clause_title="t", percent_per_miss=5, cap_percent=12, monthly_fee=1
            ),
            3,
            12,
        ),
        (
            ServiceCredit(
                clause_id="c",
                clause_title="t",
                steps=({"misses": 1, "percent": 5}, {"misses": 3, "percent": 20}),
                monthly_fee=1,
            ),
            2,
            5,
        ),
        (
            ServiceCredit(
                clause_id="c",
                clause_title="t",
                steps=({"misses": 2, "percent": 5}, {"misses": 3, "percent": 20}),
                cap_percent=15,
                monthly_fee=1,
            ),
            4,
            15,
        ),
        (
            ServiceCredit(
                clause_id="c", clause_title="t", steps=({"misses": 2, "percent": 5},), monthly_fee=1
            ),
            1,
            0,
        ),
    ],
)
def test_credit_percent(credit: ServiceCredit, misses: int, percent: float) -> None:
    assert sl.credit_percent(credit, misses) == percent


@pytest.mark.parametrize(
    ("objective", "before", "after", "crossed"),
    [
        (75, Counts(3, 0), Counts(3, 1), 0),  # 1 -> 0
        (95, Counts(40, 0), Counts(40, 1), 1),  # 2 -> 1
        (95, Counts(40, 1), Counts(40, 2), 0),  # 1 -> 0
        (95, Counts(40, 2), Counts(40, 3), None),  # 0 -> -1: below target so far, no alert
        (95, Counts(39, 2), Counts(40, 2), None),  # a met clock never lowers it
        (95, Counts(20, 0), Counts(21, 0), None),  # 1 -> 1
        (95, Counts(0, 0), Counts(0, 1), None),  # 0 -> -1
    ],
)
def test_headroom_crossed(objective: float, before: Counts, after: Counts, crossed: int | None):
    assert sl.headroom_crossed(objective, before, after) == crossed


def test_judge_is_in_progress_until_the_period_ends_in_the_contract_zone() -> None:
    level = record_of(with_levels()).versions[0].service_levels[0]
    march = at("2026-03-01T00:00:00+01:00")  # Berlin: 2026-02-28T23:00Z
    counts = Counts(19, 2)
    running = sl.judge(level, march, "Europe/Berlin", counts, at("2026-03-31T23:59:00+02:00"))
    assert (running.status, running.label, running.headroom) == ("in_progress", "2026-03", -1)
    assert running.end == at("2026-04-01T00:00:00+02:00")  # DST inside the month
    ended = sl.judge(level, march, "Europe/Berlin", counts, at("2026-04-01T00:00:00+02:00"))
    assert ended.status == "missed"
    assert sl.judge(level, march, "Europe/Berlin", Counts(19, 1), ended.end).status == "met"
    assert sl.judge(level, march, "Europe/Berlin", Counts(0, 0), ended.end).status == "met"
    assert "below target so far" in sl.describe(running)
    two_more = sl.judge(level, march, "Europe/Berlin", Counts(20, 0), march)  # headroom 1
    assert sl.describe(two_more).endswith("2 more breaches and the target is missed")


def test_evaluate_a_hand_computed_quarter() -> None:
    """Q1 2026 in Berlin: January missed (P1 17/20 = 85 %), February met (19/20), March missed
    (18/20); the quarter's restoration level 270/300 = 90 % met. Steps: 1 miss 5 %, 2 misses
    12.5 %, capped at 10 %; the month's fee 250000 / 12."""
    record = record_of(with_levels())
    counts = {
        ("first_response", "2026-01"): Counts(17, 3),
        ("first_response", "2026-02"): Counts(19, 1),
        ("first_response", "2026-03"): Counts(18, 2),
        ("resolution", "2026-Q1"): Counts(270, 30),
    }

    def counts_of(metric: str, severities: tuple[str, ...], start: datetime, end: datetime):
        label = sl.period_label(
            start, "Europe/Berlin", "quarter" if metric == "resolution" else "month"
        )
        return counts.get((metric, label), Counts(0, 0))

    judgement = sl.evaluate(
        record,
        "Europe/Berlin",
        at("2026-01-01T00:00:00+01:00"),
        at("2026-04-01T00:00:00+02:00"),
        at("2026-04-02T00:00:00+02:00"),
        counts_of,
    )
    statuses = [(j.level.id, j.label, j.status, j.counts) for j in judgement.levels]
    assert statuses == [
        ("p1-response", "2026-01", "missed", Counts(17, 3)),
        ("restore", "2026-Q1", "met", Counts(270, 30)),
        ("p1-response", "2026-02", "met", Counts(19, 1)),
        ("p1-response", "2026-03", "missed", Counts(18, 2)),
    ]
    fee = 250000 / 12
    assert [(c.label, c.misses, c.percent, c.amount) for c in judgement.credits] == [
        ("2026-01", 1, 5.0, round(fee * 0.05, 2)),
        ("2026-Q1", 0, 0.0, 0.0),
        ("2026-02", 0, 0.0, 0.0),
        ("2026-03", 1, 5.0, round(fee * 0.05, 2)),
    ]
    assert sl.quarter_credits(judgement, "Europe/Berlin") == {"2026-Q1": 2 * 1041.67}


def test_a_period_is_judged_under_the_version_in_force_at_its_start() -> None:
    data = with_levels()
    v2 = copy.deepcopy(data["contracts"][0])
    v2.update(version=2, effective_from="2026-03-15")
    v2["service_levels"][0]["objective"] = 80
    data["contracts"][0]["effective_to"] = "2026-03-15"
    data["contracts"].append(v2)
    record = record_of(data)
    march = sl.terms_for_period(
        record, at("2026-03-01T00:00:00+01:00"), at("2026-04-01T00:00:00+02:00")
    )
    april = sl.terms_for_period(
        record, at("2026-04-01T00:00:00+02:00"), at("2026-05-01T00:00:00+02:00")
    )
    assert (march.version, april.version) == (1, 2)  # type: ignore[union-attr]
    before = data["contracts"][0]
    before["effective_from"] = "2026-03-10"
    del before["effective_to"]
    data["contracts"] = [before]
    late = sl.terms_for_period(
        record_of(data), at("2026-03-01T00:00:00+01:00"), at("2026-04-01T00:00:00+02:00")
    )
    assert late is not None and late.version == 1  # came into force during March


def test_alerts_have_deterministic_ids_and_the_period_in_the_clock_fields() -> None:
    terms = record_of(with_levels()).versions[0]
    level = terms.service_levels[0]
    start = at("2026-03-01T00:00:00+01:00")
    judged = sl.judge(level, start, "Europe/Berlin", Counts(20, 0), start)
    emitted = at("2026-03-11T00:00:00+01:00")
    alert = sl.level_alert(terms, judged, "target_headroom", emitted)
    again = sl.level_alert(terms, judged, "target_headroom", at("2026-03-12T00:00:00+01:00"))
    assert alert.alert_id == again.alert_id
    missed = sl.level_alert(terms, judged, "target_missed", emitted)
    assert missed.alert_id != alert.alert_id
    assert (alert.incident_id, alert.severity, alert.severities, alert.threshold) == (
        "",
        "P1",
        ("P1",),
        0.95,
    )
    assert alert.allowance_s == (judged.end - start).total_seconds()  # 31 days less an hour
    assert alert.allowance_s == 31 * 86400 - 3600
    assert alert.elapsed_s == 10 * 86400
    assert (alert.period, alert.numerator, alert.denominator, alert.headroom) == (
        "2026-03",
        20,
        20,
        1,
    )


def outcome(n: int, met: bool, settled: str, severity: str = "P1", **extra: Any) -> Outcome:
    return Outcome(
        outcome_id=f"o{n}",
        incident_id=f"I{n}",
        contract_id="c-1",
        customer_id="acme",
        tier="gold",
        severity=severity,  # type: ignore[arg-type]
        metric="first_response",
        allowance_s=900,
        elapsed_s=100,
        met=met,
        opened_at=at(settled),
        settled_at=at(settled),
        **extra,
    )


def test_the_watch_alerts_once_per_level_and_closes_a_month_at_the_next_one() -> None:
    """95 % of P1 responses: 40 met, then breaches take the headroom 2 -> 1 -> 0 -> -1; a
    withdrawal and a re-count repeat an id (sent once); a P3 breach counts nowhere; April's
    first clock closes March, missed with 40/43, 5 % credit."""
    record = record_of(with_levels())
    twin = ReplayLevels()
    sent = []
    for n in range(40):
        sent += twin.after_outcome(outcome(n, True, "2026-03-02T10:00:00+01:00"), record)
    assert sent == []
    sent += twin.after_outcome(outcome(100, False, "2026-03-03T10:00:00+01:00"), record)
    sent += twin.after_outcome(outcome(101, False, "2026-03-03T11:00:00+01:00", "P3"), record)
    sent += twin.after_outcome(outcome(102, False, "2026-03-04T10:00:00+01:00"), record)
    withdrawal = outcome(103, False, "2026-03-04T10:00:00+01:00", withdraws="o102")
    sent += twin.after_outcome(withdrawal, record)
    sent += twin.after_outcome(outcome(104, False, "2026-03-04T10:00:00+01:00"), record)
    sent += twin.after_outcome(outcome(105, False, "2026-03-05T10:00:00+01:00"), record)
    assert [(a.kind, a.headroom, a.numerator, a.denominator) for a in sent] == [
        ("target_headroom", 1, 40, 41),
        ("target_headroom", 0, 40, 42),
    ]
    sent.clear()
    sent += twin.after_outcome(outcome(200, True, "2026-04-01T09:00:00+02:00"), record)
    assert [(a.kind, a.period, a.numerator, a.denominator, a.credit_percent) for a in sent] == [
        ("target_missed", "2026-03", 40, 43, 5.0)
    ]
    assert sent[0].emitted_at == at("2026-04-01T00:00:00+02:00")
    # Counted from the buckets instead, the same month gives the same figures.
    assert twin.counts.of("c-1")(
        "first_response", ("P1",), at("2026-03-01T00:00:00+01:00"), at("2026-04-01T00:00:00+02:00")
    ) == Counts(40, 3)
    assert counts_from([])(
        "first_response", (), at("2026-03-01T00:00:00Z"), at("2026-04-01T00:00:00Z")
    ) == Counts(0, 0)


def test_time_closes_a_quiet_contract_and_a_late_count_judges_a_closed_period_again() -> None:
    """March ends with 19/20 (met). The contract goes quiet; another contract's clocks move the
    rollup's time on, and an hour after March's end (the close grace) it is closed, with no
    alert. A breach settled in March counted later makes it 19/21: missed, alerted then, with
    the period's end as its instant; a repeat of the closing sends nothing."""
    record = record_of(with_levels())
    other = record_of(base())  # no service levels
    twin = ReplayLevels()
    for n in range(19):
        twin.after_outcome(outcome(n, True, "2026-03-10T10:00:00+01:00"), record)
    twin.after_outcome(outcome(50, False, "2026-03-11T10:00:00+01:00"), record)
    assert twin.after_outcome(outcome(60, True, "2026-04-01T00:59:00+02:00"), other) == []
    assert twin.watch.latest[("c-1", "month")] == at("2026-03-01T00:00:00+01:00")  # still open
    assert twin.after_outcome(outcome(61, True, "2026-04-01T01:00:00+02:00"), other) == []
    assert twin.watch.latest[("c-1", "month")] == at("2026-04-01T00:00:00+02:00")  # closed, met
    late = twin.after_outcome(outcome(51, False, "2026-03-31T23:00:00+02:00"), record)
    assert [(a.kind, a.period, a.numerator, a.denominator) for a in late] == [
        ("target_missed", "2026-03", 19, 21)
    ]  # and no headroom alert for a closed period
    assert late[0].emitted_at == at("2026-04-01T00:00:00+02:00")
    assert twin.after_outcome(outcome(62, True, "2026-04-02T00:00:00+02:00"), other) == []


def test_the_alertmanager_bridge_does_not_route_service_level_alerts() -> None:
    terms = record_of(with_levels()).versions[0]
    start = at("2026-03-01T00:00:00+01:00")
    judged = sl.judge(terms.service_levels[0], start, "Europe/Berlin", Counts(1, 5), start)
    book = AlertBook()
    for kind in ("target_missed", "target_headroom"):
        assert not book.apply(sl.level_alert(terms, judged, kind, start), 0, start.timestamp())
    assert len(book) == 0


def test_the_report_from_a_replay_shows_the_scenario_month_and_its_credit(tmp_path: Any) -> None:
    """The scenario's April by hand: P1/P2 first responses 3 met of 5 settled (60 % < 75 %),
    missed; resolutions 6/6 met; one missed level, 10 % of 1000 EUR: 100.00 EUR in 2026-Q2.
    May, in progress on 2026-05-10: 1/1, headroom 0: the next breach (1/2 = 50 %) misses it."""
    from sla_stream.analytics.report import render, reports_from_replay
    from sla_stream.replay import replay_events
    from tests.scenario_support import SCENARIOS, load_scenario

    scenario = load_scenario(SCENARIOS / "service-level-missed-with-credit.yaml")
    _, outcomes, _ = replay_events(scenario.events(), scenario.contracts, scenario.until)
    (tmp_path / "outcomes.jsonl").write_bytes(b"".join(o.to_json() + b"\n" for o in outcomes))
    reports = reports_from_replay(
        tmp_path,
        scenario.contracts,
        "2026-04-01",
        "2026-06-01",
        "quarter",
        now=at("2026-05-10T00:00:00Z"),
    )
    levels = reports[0]["service_levels"]
    april = [p for p in levels["periods"] if p["label"] == "2026-04"]
    assert [(p["service_level"], p["numerator"], p["denominator"], p["status"]) for p in april] == [
        ("p1p2-response", 3, 5, "missed"),
        ("resolution", 6, 6, "met"),
    ]
    may = next(
        p for p in levels["periods"] if p["label"] == "2026-05" and p["metric"] == "first_response"
    )
    assert (may["status"], may["headroom"], may["numerator"], may["denominator"]) == (
        "in_progress",
        0,
        1,
        1,
    )
    assert levels["credits_per_quarter"] == {"2026-Q2": 100.0}
    table = render(reports, "table")
    assert "2026-04  p1p2-response  P1/P2     first_response  75 %       60.00 % (3/5)" in table
    assert "in progress: 1 more breach and it is missed" in table
    assert "2026-Q2  100.00 EUR  2026-04 (1 missed, 10 %)" in table
    csv_rows = render(reports, "csv").splitlines()
    assert any(r.startswith("targets,UTC,credit,") and ",1,10.0,100.0,EUR" in r for r in csv_rows)
