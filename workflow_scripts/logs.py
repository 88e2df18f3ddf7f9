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


def setup_logging(name: str, level: int = logging.INFO) -> logging.Logger:
    """Configure the root logger once (stderr, timestamped) and return the named logger."""
    root = logging.getLogger()
    if not any(getattr(handler, "_workflow_handler", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))
        handler._workflow_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    return logging.getLogger(name)
