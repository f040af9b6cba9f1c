"""A real, tiny breach-risk model whose verdict is the severity: P1 breaches, the rest are met."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sla_stream.analytics.forecast import RiskModel, train
from sla_stream.core.risk_features import FEATURES, SEVERITY_RANK


def severity_model(path: Path | None = None) -> RiskModel:
    rng = np.random.default_rng(1)
    rows, labels = [], []
    for i in range(800):
        severity = ("P1", "P2", "P3", "P4")[i % 4]
        row = dict.fromkeys(FEATURES) | {
            "severity": severity,
            "severity_rank": SEVERITY_RANK[severity],
            "age_h": float(rng.random()),
            "updates": float(rng.integers(0, 3)),
        }
        rows.append(row)
        labels.append(severity == "P1")
    calibration = np.arange(len(rows)) % 5 == 0
    model = train(rows, np.array(labels), calibration, rounds=20)
    if path is not None:
        model.save(path)
    return model
