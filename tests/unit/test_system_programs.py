"""The one place that decides what a test does without a system program: skip with one line
naming the package, or fail when CI requires every program."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.system_programs import PROGRAMS, REQUIRE_VARIABLE, SystemProgram, require

TESTS = Path(__file__).resolve().parents[1]
ABSENT = SystemProgram("sla-stream-absent-program", "sla-stream-absent-package")


def test_a_missing_program_skips_with_one_line_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require(ABSENT.name, ABSENT)
    message = str(skipped.value)
    assert "\n" not in message
    assert message == (
        "system program missing: sla-stream-absent-program "
        "(install: apt-get install --no-install-recommends sla-stream-absent-package)"
    )


def test_under_the_ci_variable_a_missing_program_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_VARIABLE):
        require(ABSENT.name, ABSENT)


def test_a_present_program_is_found_on_the_path() -> None:
    assert require("sh", SystemProgram("sh", "dash")) == shutil.which("sh")


def test_every_program_a_test_asks_for_is_in_the_table() -> None:
    asked = set()
    for path in TESTS.rglob("*.py"):
        asked |= set(re.findall(r'(?:require|program)\("([\w-]+)"\)', path.read_text()))
    names = {"prometheus", "prometheus-alertmanager"}  # started by name in programs.py
    assert asked - {"sh"} and (asked - {"sh"}) | names <= set(PROGRAMS)
