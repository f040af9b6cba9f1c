"""The command line loads a command's module only when that command runs (or is listed)."""

from __future__ import annotations

import subprocess
import sys

import click

from sla_stream.cli import COMMANDS, main

HEAVY = ("aiohttp", "faust", "numpy", "lightgbm", "sklearn", "rocksdict")


def test_every_listed_command_loads_under_its_name() -> None:
    ctx = click.Context(main)
    names = main.list_commands(ctx)
    assert set(COMMANDS) <= set(names) and {"broker", "schemas"} <= set(names)
    for name in names:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name


def test_the_import_command_loads_none_of_the_worker_or_model_libraries() -> None:
    probe = (
        "import sys; from sla_stream.cli import main; main.get_command(None, 'import'); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
