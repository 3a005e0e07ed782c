"""The one error type for bad VOC input: it names the file and what is wrong."""

from __future__ import annotations

from pathlib import Path


class VOCDataError(ValueError):
    """Bad or missing VOC data. ``str(err)`` names the file (when known) and the fix.

    Command lines catch it and print the message without a traceback.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)
