"""Routes the function's `logging` output to the request's log (imported only once the function uses logging)."""

import logging
import sys


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` is at the time of the record (tests and users may replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def install_root_handler() -> None:
    """Gives the root logger a raw-message stdout handler, unless the function configured logging itself."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = _StdoutHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
