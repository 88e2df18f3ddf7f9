"""One logging setup for every entry point.

Rules redirect a job's stdout and stderr to its ``log:`` file, so logging goes to
stderr with a timestamp on every line: the log then shows when each job started and
ended, which is how reruns, resumes and GPU-job overlap are checked after the fact.
"""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time, so a replaced stderr (pytest) still works."""

    _workflow_handler = True

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        """The stream is always the current sys.stderr."""


def setup_logging(name: str, level: int = logging.INFO) -> logging.Logger:
    """Configure the root logger once (stderr, timestamped) and return the named logger."""
    root = logging.getLogger()
    if not any(getattr(handler, "_workflow_handler", False) for handler in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    return logging.getLogger(name)
