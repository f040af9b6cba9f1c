"""The README's `make test` path in a fresh clone, with nothing beside it: every test module
imports and collects, and no tracked file reaches outside the repository for its data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = ("../" + "shared", "shared/" + "data")  # split, so this file does not match itself


def git(*args: str, cwd: Path) -> str:
    git_bin = shutil.which("git")
    assert git_bin, "git is needed to clone the repository"
    done = subprocess.run([git_bin, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_a_fresh_clone_collects_every_test_and_reads_nothing_outside(tmp_path: Path) -> None:
    clone = tmp_path / "nested" / "sla-stream"  # nothing beside it
    git("clone", "--quiet", str(ROOT), str(clone), cwd=tmp_path)
    assert not (clone.parent / "shared").exists()

    for pattern in OUTSIDE:
        hits = subprocess.run(
            ["git", "grep", "-n", "-F", pattern], cwd=clone, capture_output=True, text=True
        )
        assert hits.returncode == 1, f"tracked files name {pattern}:\n{hits.stdout}"

    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_")}
    env["PYTHONPATH"] = str(clone)  # the clone's code and tests, not this checkout's
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert any(line.startswith("tests/unit/test_servicenow_import.py::") for line in collected)
    assert len(collected) > 100, done.stdout[-2000:]
