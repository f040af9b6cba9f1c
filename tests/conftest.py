"""Suite-wide: one closing line for the tests skipped because a system program is missing."""

from __future__ import annotations

from typing import Any

from tests.system_programs import OPENMP, SKIP_PREFIX, required

# The forecast's tests import LightGBM, whose wheel cannot load without the OpenMP runtime
# (Debian's libgomp1, which `make test` installs as root): without it they are not collected,
# and the closing line names the package (under SLA_REQUIRE_SYSTEM_PROGRAMS they fail instead).
NEED_OPENMP = [
    "unit/test_forecast.py",
    "unit/test_risk_watch.py",
    "integration/test_forecast_live.py",
]
collect_ignore = NEED_OPENMP if OPENMP.path() is None and not required() else []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reasons = []
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if SKIP_PREFIX in reason:
            reasons.append(reason.split(SKIP_PREFIX, 1)[1].strip())
    if collect_ignore:
        reasons.append(
            f"{OPENMP.name} (install: {OPENMP.install_hint}) for {len(collect_ignore)} files"
        )
    if reasons:
        terminalreporter.write_line(
            f"{len(reasons)} tests skipped, {SKIP_PREFIX} " + "; ".join(sorted(set(reasons)))
        )
