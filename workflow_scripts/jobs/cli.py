"""What every entry point does around its work: one log, and bad input as one line and an exit code.

Each stage's ``main`` parses its arguments and hands its work to :func:`run_entry_point`,
naming the failures it expects (bad input, a failed check) and how each is said. An
expected failure becomes one ``ERROR`` line in the job log and a non-zero exit, with no
traceback to read past; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from workflow_scripts.jobs.logs import setup_logging

#: One expected kind of failure: the exception types, and the log line that says it.
Failure = tuple[type[Exception] | tuple[type[Exception], ...], Callable[[Exception], str]]


class InputError(ValueError):
    """An input file or argument is not what the stage needs; the message names it."""


def run_entry_point(
    name: str,
    work: Callable[[logging.Logger], int],
    failures: Sequence[Failure],
    exit_code: int = 1,
) -> int:
    """Run ``work`` with the job log set up; the first matching failure is logged and exits non-zero."""
    log = setup_logging(name)
    try:
        return work(log)
    except Exception as error:
        for kinds, say in failures:
            if isinstance(error, kinds):
                log.error("%s", say(error))
                return exit_code
        raise
