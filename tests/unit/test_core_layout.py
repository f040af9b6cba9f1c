"""The core's shape: one file decides the clock rules, and no module or function outgrows a read.

`core/engine.py` is the only core module that names an event type or an alert kind the rules
announce. The exception is `core/models.py`, where the wire models' vocabularies are defined
(`EventType`, `AlertKind` and their `Literal`s, which `schemas/` is generated from) and where
`IncidentEvent` validates the fields each event type requires: that is the shape of the input,
not a rule. `core/clock.py` may spell the clock phases "stopped" and "cancelled" (stored, and
shown by the API), which are neither the alert kind nor the event.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sla_stream.core.models import EVENT_TYPES

CORE = Path(__file__).resolve().parents[2] / "sla_stream" / "core"
DECIDERS = {"engine.py", "models.py"}
# The breach forecast's features observe an incident's history (counts of reopens, severity
# changes, updates since opening) and decide no rule; they name event types to count them.
OBSERVERS = {"risk_features.py", "risk_desk.py"}
ANNOUNCED = ("warning", "breach", "met", "stopped")  # kinds the rules decide; "retracted" is
# how the ledger takes one back, whatever the rule that made it wrong
ALLOWED = {
    ("clock.py", "stopped"),  # clock phases
    ("clock.py", "cancelled"),
    ("service_levels.py", "met"),  # a period's service level status, not the alert kind
}
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def rule_words_in(source: str) -> set[str]:
    """String constants in `source` that name an event type or an announced alert kind."""
    words = set(EVENT_TYPES) | set(ANNOUNCED)
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in words:
            found.add(node.value)
    return found


def long_functions(source: str, limit: int) -> list[str]:
    return [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > limit
    ]


MODULES = sorted(CORE.glob("*.py"))
PACKAGE = sorted(CORE.parent.rglob("*.py"))  # every module of sla_stream, the shell included


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_only_the_engine_names_event_types_and_announced_kinds(path: Path) -> None:
    if path.name in DECIDERS | OBSERVERS:
        return
    named = {w for w in rule_words_in(path.read_text()) if (path.name, w) not in ALLOWED}
    assert not named, f"core/{path.name} names {sorted(named)}: decide it in core/engine.py"


@pytest.mark.parametrize("path", PACKAGE, ids=lambda p: str(p.relative_to(CORE.parent)))
def test_modules_and_functions_stay_short(path: Path) -> None:
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{path.name} is over the budget"
    assert not long_functions(source, MAX_FUNCTION_LINES)


def test_the_engine_does_name_every_event_type() -> None:
    assert rule_words_in((CORE / "engine.py").read_text()) >= set(EVENT_TYPES)


def test_the_scan_catches_a_rule_outside_the_engine() -> None:
    """The check can fail: a tie-break written in another module is found, as is a long body."""
    assert rule_words_in('ORDER = {"opened": 0, "resolved": 1}') == {"opened", "resolved"}
    assert rule_words_in('if mark.kind == "met": pass') == {"met"}
    assert rule_words_in('phase = "running"') == set()
    body = "def f():\n" + "    x = 1\n" * 61
    assert long_functions(body, MAX_FUNCTION_LINES) == ["f: 62 lines"]
