"""Suite-wide: one closing line for the tests skipped because a system program is missing."""

from __future__ import annotations

from typing import Any

from tests.system_programs import SKIP_PREFIX


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reasons = []
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if SKIP_PREFIX in reason:
            reasons.append(reason.split(SKIP_PREFIX, 1)[1].strip())
    if reasons:
        terminalreporter.write_line(
            f"{len(reasons)} tests skipped, {SKIP_PREFIX} " + "; ".join(sorted(set(reasons)))
        )
