"""The breach-risk model: gradient boosting on `features_at` rows, calibrated, versioned on disk.

`train(features, labels, calibration_mask)` fits LightGBM (fixed seed, deterministic) on the
rows outside the calibration slice and isotonic maps from its raw scores to probabilities on
the rows inside it, one per band of the incident's age (0-4 h, 4-24 h, 24-48 h, 48-96 h,
96 h on): the same score means another risk for a fresh incident than for a two-day-old one.
`RiskModel.save` writes one JSON file: a format number, the model version (a digest of its
content), the feature list, the category vocabularies, the booster's text and the calibration
maps. `RiskModel.reasons` names the three features that push an incident's score up most, in
words.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import orjson
from sklearn.isotonic import IsotonicRegression

from sla_stream.core.risk_features import (
    CATEGORICAL_FEATURES,
    DESK_FEATURES,
    NUMERIC_FEATURES,
    Features,
)

FORMAT = 1
SEED = 7
MIN_CATEGORY_ROWS = 20  # rarer values are "other": too few rows to learn a rate from
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.6,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 200.0,  # chosen on the training window's last days, like the tree size
    "min_data_per_group": 50,
    "seed": SEED,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbosity": -1,
}
# Chosen by AUC on the training window's own last ten days (fitted on its first three weeks)
# among 400x31, 200x15, 300x7 and 150x15 rounds x leaves; the smaller trees won by 0.004.
ROUNDS = 150
AGE_BANDS_H = (0.0, 4.0, 24.0, 48.0, 96.0)  # calibration bands of the incident's age
MIN_BAND_ROWS = 100  # a band with fewer calibration rows (or one class) uses the pooled map


class ModelFileError(ValueError):
    """A model file that cannot be used: wrong format, or not a model."""


@dataclass
class RiskModel:
    """A trained, calibrated breach-risk model and what it needs to encode a row."""

    numeric: list[str]
    categorical: list[str]
    vocab: dict[str, list[str]]
    booster_text: str
    # Isotonic maps raw score x -> probability y, one per age band: (from age in hours, xs, ys).
    calibration: list[tuple[float, list[float], list[float]]]
    trained: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    _booster: lgb.Booster | None = field(default=None, repr=False, compare=False)

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    @property
    def booster(self) -> lgb.Booster:
        if self._booster is None:
            self._booster = lgb.Booster(model_str=self.booster_text)
        return self._booster

    def encode(self, rows: Sequence[Features]) -> np.ndarray:
        return encode(rows, self.numeric, self.categorical, self.vocab)

    def raw(self, rows: Sequence[Features]) -> np.ndarray:
        if not rows:
            return np.zeros(0)
        return np.asarray(self.booster.predict(self.encode(rows)), dtype=float)

    def calibrate(self, raw: np.ndarray, ages_h: np.ndarray) -> np.ndarray:
        starts = np.array([band[0] for band in self.calibration])
        which = np.maximum(np.searchsorted(starts, ages_h, side="right") - 1, 0)
        out = np.empty(len(raw))
        for i, (_, xs, ys) in enumerate(self.calibration):
            mine = which == i
            out[mine] = np.interp(raw[mine], xs, ys)
        return out

    def predict(self, rows: Sequence[Features]) -> np.ndarray:
        """Calibrated probabilities of a breach, one per row."""
        return self.calibrate(self.raw(rows), ages(rows))

    def reasons(self, row: Features, top: int = 3) -> list[str]:
        """The features that raise this row's score most, in words (SHAP contributions)."""
        contrib = self.booster.predict(self.encode([row]), pred_contrib=True)[0][:-1]
        words: list[str] = []
        for i in np.argsort(-contrib):
            if contrib[i] <= 0 or len(words) == top:
                break
            text = describe(self.features[i], row)
            if text not in words:  # severity and its rank read the same
                words.append(text)
        return words

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "version": self.version,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "vocab": self.vocab,
            "calibration": list(self.calibration),
            "trained": self.trained,
            "booster": self.booster_text,
        }
        return orjson.dumps(body)

    def save(self, path: Path) -> None:
        path.write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: Path | str) -> RiskModel:
        try:
            body = orjson.loads(Path(path).read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ModelFileError(f"{path}: not a forecast model file ({exc})") from exc
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            found = body.get("format") if isinstance(body, dict) else None
            raise ModelFileError(f"{path}: model format {found!r}, this version reads {FORMAT}")
        return cls(
            numeric=body["numeric"],
            categorical=body["categorical"],
            vocab=body["vocab"],
            booster_text=body["booster"],
            calibration=[(float(a), xs, ys) for a, xs, ys in body["calibration"]],
            trained=body.get("trained", {}),
            version=body["version"],
        )


def encode(
    rows: Sequence[Features],
    numeric: Sequence[str],
    categorical: Sequence[str],
    vocab: dict[str, list[str]],
) -> np.ndarray:
    """Rows to a float matrix: numbers as they are (None as NaN), categories as vocabulary
    codes (unseen or rare values as NaN, which LightGBM sends down its own branch)."""
    codes = {name: {v: float(i) for i, v in enumerate(vocab[name])} for name in categorical}
    out = np.full((len(rows), len(numeric) + len(categorical)), np.nan)
    for r, row in enumerate(rows):
        for c, name in enumerate(numeric):
            value = row.get(name)
            if value is not None:
                out[r, c] = float(value)  # type: ignore[arg-type]
        for c, name in enumerate(categorical, start=len(numeric)):
            out[r, c] = codes[name].get(row.get(name), np.nan)  # type: ignore[arg-type]
    return out


def vocabularies(rows: Sequence[Features], categorical: Sequence[str]) -> dict[str, list[str]]:
    vocab = {}
    for name in categorical:
        counts = Counter(row.get(name) for row in rows)
        kept = [v for v, n in counts.items() if v is not None and n >= MIN_CATEGORY_ROWS]
        vocab[name] = sorted(kept)  # type: ignore[type-var]
    return vocab


def feature_names(with_desk: bool) -> tuple[list[str], list[str]]:
    numeric = [f for f in NUMERIC_FEATURES if with_desk or f not in DESK_FEATURES]
    return numeric, list(CATEGORICAL_FEATURES)


def train(
    rows: Sequence[Features],
    labels: np.ndarray,
    calibration_mask: np.ndarray,
    *,
    with_desk: bool = False,
    rounds: int = ROUNDS,
    weights: np.ndarray | None = None,
    params: dict[str, Any] | None = None,
    trained: dict[str, Any] | None = None,
) -> RiskModel:
    """Fit on rows outside `calibration_mask`, calibrate on rows inside it (a later slice).

    `weights` (one per row) weigh both fits, e.g. to undo the censoring of a training window."""
    numeric, categorical = feature_names(with_desk)
    fit_rows = [r for r, m in zip(rows, calibration_mask, strict=True) if not m]
    vocab = vocabularies(fit_rows, categorical)
    x = encode(rows, numeric, categorical, vocab)
    y = np.asarray(labels, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    fit, cal = ~calibration_mask, calibration_mask
    data = lgb.Dataset(
        x[fit], y[fit], weight=w[fit], feature_name=numeric + categorical,
        categorical_feature=categorical, free_raw_data=False,
    )  # fmt: skip
    booster = lgb.train({**PARAMS, **(params or {})}, data, num_boost_round=rounds)
    raw = booster.predict(x[cal])
    age = ages(rows)[cal]
    model = RiskModel(
        numeric=numeric,
        categorical=categorical,
        vocab=vocab,
        booster_text=booster.model_to_string(),
        calibration=_age_band_maps(raw, y[cal], w[cal], age),
        trained=dict(trained or {}, rows=int(fit.sum()), calibration_rows=int(cal.sum())),
        _booster=booster,
    )
    model.version = "risk-" + hashlib.sha256(model.to_bytes()).hexdigest()[:12]
    return model


def ages(rows: Sequence[Features]) -> np.ndarray:
    return np.array([float(r.get("age_h") or 0.0) for r in rows])  # type: ignore[arg-type]


def _age_band_maps(
    raw: np.ndarray, y: np.ndarray, w: np.ndarray, age: np.ndarray
) -> list[tuple[float, list[float], list[float]]]:
    """One isotonic map per age band; a band too small for its own uses the pooled one."""
    pooled = _isotonic(raw, y, w)
    maps = []
    for i, start in enumerate(AGE_BANDS_H):
        end = AGE_BANDS_H[i + 1] if i + 1 < len(AGE_BANDS_H) else np.inf
        mine = (age >= start) & (age < end)
        own = mine.sum() >= MIN_BAND_ROWS and 0 < y[mine].sum() < mine.sum()
        maps.append((start, *(_isotonic(raw[mine], y[mine], w[mine]) if own else pooled)))
    return maps


def _isotonic(raw: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[list[float], list[float]]:
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(raw, y, sample_weight=w)
    return [float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_]


# Words for the features a reason can name; `{v}` is the row's value.
_WORDS: dict[str, str] = {
    "res_fraction": "{pct} of the resolution allowance used",
    "res_left_h": "{h} of business time left to resolve",
    "resp_fraction": "{pct} of the response allowance used",
    "severity_rank": "severity {severity}",
    "age_h": "open for {h}",
    "open_hour_of_week": "opened {open_when}",
    "hour_of_week": "it is {now_when}",
    "updates": "{n} updates so far",
    "updates_24h": "{n} updates in the last 24 h",
    "since_update_h": "no update for {h}",
    "status_changes": "{n} status changes",
    "waits": "waited {n} times",
    "waiting_h": "{h} waiting on others",
    "paused_h": "{h} paused",
    "team_changes": "reassigned {n} times",
    "teams_seen": "handled by {n} teams",
    "team_returns": "bounced back {n} times between teams",
    "severity_changes": "severity changed {n} times",
    "reopens": "reopened {n} times",
    "desk_open": "{n} incidents open on the desk",
    "team_open": "{n} incidents open in the team",
    "desk_arrivals_24h": "{n} arrivals on the desk in 24 h",
    "team_arrivals_24h": "{n} arrivals in the team in 24 h",
    "team_backlog_ratio": "team backlog {x}x its weekly throughput",
    "desk_backlog_ratio": "desk backlog {x}x its weekly throughput",
    "team_median_resolve_h": "team's median time to resolve {h}",
    "team_breach_rate_30d": "team breached {pct} of clocks in 30 days",
    "desk_breach_rate_7d": "desk breached {pct} of clocks in 7 days",
}
_FLAGS: dict[str, tuple[str, str]] = {  # (when 0, when 1)
    "res_paused": ("resolution clock running", "resolution clock paused"),
    "res_breached": ("resolution allowance not yet spent", "resolution allowance already spent"),
    "responded": ("no first response yet", "first response given"),
}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def describe(name: str, row: Features) -> str:
    """One feature of one row in words, e.g. "reassigned 3 times"."""
    value = row.get(name)
    if name in CATEGORICAL_FEATURES:
        return f"{name.replace('_', ' ')} {value if value is not None else 'unknown'}"
    number = float(value) if isinstance(value, int | float) else float("nan")
    if name in _FLAGS:
        return _FLAGS[name][number == 1.0]
    template = _WORDS.get(name, name.replace("_", " ") + " {x}")
    return template.format(
        pct=f"{number:.0%}",
        h=_duration(number),
        n=f"{number:.0f}",
        x=f"{number:.1f}",
        severity=row.get("severity"),
        open_when=_when(number),
        now_when=_when(number),
    )


def _duration(hours: float) -> str:
    """Hours in words at a scale that reads: minutes under an hour."""
    if hours != hours:  # NaN
        return "an unknown time"
    if abs(hours) < 1.0:
        return f"{hours * 60:.0f} minutes"
    return f"{hours:.1f} hours"


def _when(hour_of_week: float) -> str:
    if hour_of_week != hour_of_week:  # NaN
        return "at an unknown time"
    day, hour = divmod(int(hour_of_week), 24)
    return f"{_DAYS[day]} {hour:02d}:00"
