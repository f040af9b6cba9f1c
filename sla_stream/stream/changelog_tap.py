"""The future of a Faust table's last changelog record, which a step's effects wait for."""

from __future__ import annotations

from typing import Any


class ChangelogTap:
    """Keeps the future of the table's last changelog record: effects wait for it."""

    def __init__(self, table: Any) -> None:
        self.last: Any = None
        send = getattr(table, "send_changelog", None)
        if send is None:  # a plain mapping in unit tests: no changelog
            return

        def send_changelog(*args: Any, **kwargs: Any) -> Any:
            self.last = send(*args, **kwargs)
            return self.last

        table.send_changelog = send_changelog

    def take(self) -> Any:
        last, self.last = self.last, None
        return last
