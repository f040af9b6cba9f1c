"""The checked-in schemas are exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sla_stream.cli import main
from sla_stream.schema_export import render_schemas

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_checked_in_schemas_match_the_models() -> None:
    expected = render_schemas()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.schema.json")}
    assert sorted(on_disk) == sorted(expected), "run `sla-stream schemas export`"
    for name, text in expected.items():
        assert on_disk[name] == text, f"{name} differs from the models: run `make schemas`"


def test_schemas_export_is_byte_identical(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["schemas", "export", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for path in tmp_path.iterdir():
        assert path.read_bytes() == (SCHEMAS / path.name).read_bytes()


def test_help_lists_the_subcommands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("schemas", "broker"):
        assert command in result.output
