"""The error tree that decides where bad input goes.

- `InvalidEvent`: the event's fault; the shell sends the original bytes to the dead-letter topic
  with `reason` and, where known, the `field`.
- `InvalidContract`: the contracts file's fault; the file is refused, naming path and value.
An unknown contract is no error: the engine parks the incident until the contract arrives.
Anything else is a bug and should crash loudly.
"""

from __future__ import annotations


class SlaError(Exception):
    """Base of every error sla-stream raises on purpose."""


class InvalidEvent(SlaError):
    """An incident event that cannot be accepted; `reason` is a short machine-readable tag."""

    def __init__(self, message: str, *, reason: str = "invalid", field: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.field = field


class InvalidContract(SlaError):
    """A contracts file or calendar block that is refused; names where and what."""

    def __init__(self, message: str, *, path: str = "", value: object = None, file: str = ""):
        where = ":".join(p for p in (file, path) if p)
        text = f"{where}: {message}" if where else message
        if value is not None:
            text += f" (got {value!r})"
        super().__init__(text)
        self.path = path
        self.value = value
        self.file = file
