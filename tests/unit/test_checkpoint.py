"""The clean-stop file decides whether a worker keeps its local tables or restores them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sla_stream.stream.checkpoint import (
    CLEAN_STOP_FILE,
    begin_run,
    clean_stop_recorded,
    is_marker,
    mark_clean_stop,
)


def _tables(root: Path) -> Path:
    tables = root / "v1" / "tables"
    (tables / "incidents-0.db").mkdir(parents=True)
    (tables / "incidents-0.db" / "CURRENT").write_text("x")
    return tables


def test_tables_left_by_an_unclean_stop_are_deleted(tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    (tables / "due-index").mkdir()  # a due index an earlier orderly stop saved: gone with them
    (tables / "due-index" / "incidents-0.npz").write_bytes(b"x")
    assert begin_run(tmp_path, tables) is False
    assert not tables.exists()


def test_tables_after_a_clean_stop_are_kept_and_the_file_is_consumed(tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    mark_clean_stop(tmp_path)
    assert begin_run(tmp_path, tables) is True
    assert (tables / "incidents-0.db" / "CURRENT").exists()
    assert not (tmp_path / CLEAN_STOP_FILE).exists()  # a SIGKILL of this run is unclean again
    assert begin_run(tmp_path, tables) is False


class _Service:
    def __init__(self, crash_reason: BaseException | None = None) -> None:
        self.crash_reason = crash_reason


@pytest.mark.parametrize(
    ("code", "crash", "clean"), [(0, None, True), (1, None, False), (0, RuntimeError(), False)]
)
def test_only_an_exit_with_status_0_and_no_crash_is_clean(
    tmp_path: Path, code: int, crash: BaseException | None, clean: bool
) -> None:
    saved: list[bool] = []

    def save() -> None:  # what only a clean stop may leave, written before the file
        saved.append((tmp_path / CLEAN_STOP_FILE).exists())

    with (
        pytest.raises(SystemExit),
        clean_stop_recorded(tmp_path, _Service(crash), before_mark=save),
    ):
        raise SystemExit(code)
    assert (tmp_path / CLEAN_STOP_FILE).exists() is clean
    assert saved == ([False] if clean else [])


def test_marker_keys_cannot_be_incident_or_outcome_keys() -> None:
    assert is_marker(b"\x1e\x1fend")
    assert not is_marker(b"INC-1") and not is_marker(b"\x1e" + b"0" * 32)
