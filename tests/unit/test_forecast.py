"""Breach forecast: metrics against scikit-learn, no leakage at the first event, a trained model."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from sla_stream.analytics import forecast_metrics as fm
from sla_stream.analytics.forecast import RiskModel, describe, train
from sla_stream.analytics.forecast_data import (
    FIRST_EVENT,
    decision_rows,
    group_incidents,
    rows_and_verdicts,
)
from sla_stream.core.contracts import load_contracts
from sla_stream.core.risk_features import CLOSURE_FIELDS, FEATURES, OPENED_FACTS
from sla_stream.generate import iter_events
from sla_stream.importers.servicenow import convert, open_log
from sla_stream.importers.servicenow_mapping import load_mapping

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / "examples" / "servicenow" / "data" / "incident_event_log.csv.gz"
MAPPING = REPO / "examples" / "servicenow" / "mapping.yaml"
SN_CONTRACTS = REPO / "examples" / "servicenow" / "contracts.yaml"
CONTRACTS = REPO / "examples" / "contracts.yaml"


# -- metrics ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.3
    scores = np.round(np.clip(0.3 * y + rng.random(400) * 0.8, 0, 1), 2)  # ties on purpose
    return y, scores


def test_auc_equals_sklearn_with_ties(scored) -> None:
    y, s = scored
    assert fm.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_auc_of_one_class_is_nan() -> None:
    assert np.isnan(fm.auc(np.ones(5, dtype=bool), np.arange(5.0)))


def test_bootstrap_interval_is_the_percentiles_of_sklearn_aucs_on_the_same_resamples(
    scored,
) -> None:
    y, s = scored
    picks = np.random.default_rng(11).integers(0, len(y), size=(200, len(y)))
    aucs = [roc_auc_score(y[p], s[p]) for p in picks]
    low, high = fm.auc_interval(y, s, resamples=200, seed=11)
    assert (low, high) == pytest.approx(tuple(np.percentile(aucs, [2.5, 97.5])), abs=1e-12)
    assert low < fm.auc(y, s) < high


def test_ece_equals_the_sklearn_calibration_curve_weighted_by_bin_counts(scored) -> None:
    y, s = scored
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], s), minlength=10)
    counts = counts[counts > 0]
    expected = float(np.sum(counts * np.abs(prob_true - prob_pred)) / len(y))
    assert fm.ece(y, s) == pytest.approx(expected, abs=1e-12)
    assert fm.brier(y, s) == pytest.approx(float(np.mean((s - y) ** 2)))


# -- features: whitelist and no leakage ---------------------------------------------------------


def test_no_closure_field_is_a_feature() -> None:
    assert not set(CLOSURE_FIELDS) & set(FEATURES)
    assert not set(CLOSURE_FIELDS) & set(OPENED_FACTS)


@pytest.fixture(scope="module")
def log_slice() -> list:
    """The first 80 incidents of the shipped log, with every update as an event."""
    with open_log(LOG) as source:
        lines = list(itertools.islice(source, 600))
    numbers = list(dict.fromkeys(r["number"] for r in csv.DictReader(io.StringIO("".join(lines)))))
    keep = set(numbers[:80])
    rows = [lines[0]] + [line for line in lines[1:] if line.split(",", 1)[0] in keep]
    return list(convert(rows, load_mapping(MAPPING), every_update=True))


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(cut_hours=st.floats(min_value=0.0, max_value=24 * 20))
def test_features_at_the_first_event_do_not_depend_on_anything_after_it(
    log_slice, cut_hours: float
) -> None:
    """Drop every event (of every incident) dated after a cut: the first-event rows dated at or
    before the cut keep exactly the same features, the desk's state included."""
    contracts = load_contracts(SN_CONTRACTS)
    points = {FIRST_EVENT: None}
    full = decision_rows(group_incidents(log_slice), contracts, points)
    cut = min(r.at for r in full) + timedelta(hours=cut_hours)
    kept = [e for e in log_slice if e.occurred_at <= cut]
    truncated = {r.incident_id: r for r in decision_rows(group_incidents(kept), contracts, points)}
    reached = [r for r in full if r.at <= cut]
    assert reached, "the cut keeps at least one first event"
    for row in reached:
        assert truncated[row.incident_id].features == row.features


def test_features_see_updates_handovers_and_waits(log_slice) -> None:
    rows = decision_rows(group_incidents(log_slice), load_contracts(SN_CONTRACTS))
    late = [r.features for r in rows if r.point == "48h"]
    assert late and all(f["updates"] >= 1 for f in late)
    assert any(f["team_changes"] and f["team_changes"] >= 1 for f in late)
    assert all((f["res_fraction"] or 0.0) >= 0.0 for f in late)


# -- a model trained on a generated history -----------------------------------------------------


@pytest.fixture(scope="module")
def model() -> RiskModel:
    contracts = load_contracts(CONTRACTS)
    events = list(iter_events(500, seed=5, contracts=contracts))
    rows, verdicts = rows_and_verdicts(group_incidents(events), contracts)
    rows = [r for r in rows if r.incident_id in verdicts]
    y = np.array([verdicts[r.incident_id] for r in rows])
    opened = np.array([r.opened_at.timestamp() for r in rows])
    return train([r.features for r in rows], y, opened >= np.quantile(opened, 0.8), rounds=60)


def test_model_file_round_trips_with_its_version_and_features(model, tmp_path) -> None:
    path = tmp_path / "model.json"
    model.save(path)
    loaded = RiskModel.load(path)
    assert loaded.version == model.version and loaded.version.startswith("risk-")
    assert loaded.features == model.features
    row = {name: None for name in FEATURES} | {"severity": "P1", "res_fraction": 0.9}
    assert loaded.predict([row])[0] == pytest.approx(model.predict([row])[0])
    assert 0.0 <= loaded.predict([row])[0] <= 1.0


def test_a_file_of_another_format_is_refused(tmp_path) -> None:
    path = tmp_path / "old.json"
    path.write_text('{"format": 0}')
    with pytest.raises(ValueError, match="format 0"):
        RiskModel.load(path)


def test_reasons_are_words_about_the_row() -> None:
    assert describe("team_changes", {"team_changes": 3.0}) == "reassigned 3 times"
    assert describe("team_backlog_ratio", {"team_backlog_ratio": 2.1}) == (
        "team backlog 2.1x its weekly throughput"
    )
    assert describe("responded", {"responded": 0.0}) == "no first response yet"
    assert describe("since_update_h", {"since_update_h": 26.5}) == "no update for 26.5 hours"
    assert describe("res_left_h", {"res_left_h": 0.25}) == (
        "15 minutes of business time left to resolve"
    )


def test_train_from_a_replay_directory_labels_with_its_outcomes(tmp_path) -> None:
    """`sla-stream forecast train` on generated events, labelled by a replay's outcomes.jsonl:
    the same verdicts as the engine's own, so the same model."""
    import orjson
    from click.testing import CliRunner

    from sla_stream.cli import main
    from sla_stream.cli.forecast import read_verdicts
    from sla_stream.replay import replay_file

    contracts = load_contracts(CONTRACTS)
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        b"".join(e.to_json() + b"\n" for e in iter_events(300, seed=2, contracts=contracts))
    )
    replay_file(contracts, events, tmp_path / "replay")
    _, own = rows_and_verdicts(
        group_incidents(iter_events(300, seed=2, contracts=contracts)), contracts
    )
    assert read_verdicts(tmp_path / "replay") == own and any(own.values())
    runner = CliRunner()
    args = ["forecast", "train", "--events", str(events), "--contracts", str(CONTRACTS)]
    by_replay = runner.invoke(main, [*args, "--outcomes", str(tmp_path / "replay"),
                                     "--out", str(tmp_path / "a.json")])  # fmt: skip
    by_engine = runner.invoke(main, [*args, "--out", str(tmp_path / "b.json")])
    assert by_replay.exit_code == 0 and by_engine.exit_code == 0, by_replay.output
    a, b = (
        orjson.loads((tmp_path / "a.json").read_bytes()),
        orjson.loads((tmp_path / "b.json").read_bytes()),
    )
    assert a["format"] == 1 and a["version"] == b["version"]
    assert "wrote" in by_replay.output and a["version"] in by_replay.output


def test_every_update_adds_only_events_the_engine_ignores() -> None:
    """Importing every update adds `status_changed` events to the current status (rows that
    change nothing the clocks see); a replay gives the same alerts and outcomes either way."""
    from sla_stream.replay import replay_events

    with open_log(LOG) as source:
        lines = list(itertools.islice(source, 3000))
    mapping = load_mapping(MAPPING)
    plain = list(convert(lines, mapping))
    every = list(convert(lines, mapping, every_update=True))
    added = {e.event_id for e in every} - {e.event_id for e in plain}
    assert len(every) == len(plain) + len(added) and len(added) > 500
    assert all(e.type == "status_changed" for e in every if e.event_id in added)
    contracts = load_contracts(SN_CONTRACTS)
    (alerts_plain, outcomes_plain, _), (alerts_every, outcomes_every, _) = (
        replay_events(plain, contracts),
        replay_events(every, contracts),
    )
    assert sorted(a.alert_id for a in alerts_plain) == sorted(a.alert_id for a in alerts_every)
    assert set(alerts_plain) == set(alerts_every)
    # More events make dues fire sooner in simulated time, so a breach may be published as a
    # provisional outcome and then replaced; what stands in the end is the same.
    assert _standing(outcomes_plain) == _standing(outcomes_every)


def _standing(outcomes: list) -> dict:
    withdrawn = {o.withdraws for o in outcomes if o.withdraws}
    return {
        (o.incident_id, o.metric): (o.met, o.elapsed_s, o.settled_at, o.completed_at)
        for o in outcomes
        if o.withdraws is None and o.outcome_id not in withdrawn
    }
