"""The layer check of `make lint` (import-linter, `[tool.importlinter]` in pyproject.toml) holds
on the code as it is, and fails when a layer imports one it must not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the package found under `root`, with the repository's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_package(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "sla_stream", tmp_path / "sla_stream", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path / "sla_stream"


def test_the_layers_hold_as_shipped() -> None:
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "core imports no shell KEPT" in run.stdout


def test_a_core_module_importing_the_shell_fails(tmp_path: Path) -> None:
    package = copy_package(tmp_path)
    clock = package / "core" / "clock.py"
    clock.write_text(clock.read_text() + "\nfrom sla_stream.stream import state  # noqa\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0
    assert "core imports no shell BROKEN" in run.stdout
    assert "sla_stream.core.clock -> sla_stream.stream.state" in run.stdout


def test_a_new_stream_to_web_import_fails(tmp_path: Path) -> None:
    """web imports stream already; a stream module importing web closes a cycle."""
    package = copy_package(tmp_path)
    codecs = package / "stream" / "codecs.py"
    codecs.write_text(codecs.read_text() + "\nfrom sla_stream.web import site  # noqa\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0
    assert "stream does not import web BROKEN" in run.stdout
    assert "sla_stream.stream.codecs -> sla_stream.web.site" in run.stdout
