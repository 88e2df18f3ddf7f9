"""No look-ahead through pretraining: a model's data cut-off must precede every test period.

A model pretrained on market data up to a date has seen every bar before it. If that date falls
inside or after a fold's test period, the arm that starts from it has, in effect, trained on its
test bars, and its "help" is look-ahead. The test periods are known only after preprocess (each
fold's manifest.json holds ``date_ranges.test``), so the check runs when a training job starts
(train.py), over every series' and fold's manifest, before anything is loaded; at parse time the
config can only warn where a cut-off is unknown (config/model_checks.py).

Pure functions of strings and mappings, so the rule is tested without any data or model.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: FinText's checkpoints name their last pretraining year: FinText/Chronos_Small_2015_US.
_FINTEXT_YEAR = re.compile(r"FinText/Chronos_[A-Za-z]+_(\d{4})_[A-Za-z]+", re.IGNORECASE)


class LookAheadError(ValueError):
    """A model's pretraining cut-off falls inside or after a test period."""


def effective_cutoff(name_or_path: str, cutoff: str | None) -> str | None:
    """The cut-off the check uses: the configured date, else the year a FinText id names
    (its 31 December: the model saw that whole year), else None (unknown)."""
    if cutoff is not None:
        return cutoff
    match = _FINTEXT_YEAR.search(name_or_path)
    return f"{match.group(1)}-12-31" if match else None


def _day(timestamp: str) -> dt.date:
    """The calendar day of an ISO date or ISO UTC timestamp."""
    return dt.date.fromisoformat(timestamp[:10])


def lookahead_problems(
    model: str, cutoff: str, test_ranges: Iterable[tuple[str, Mapping[str, Any]]]
) -> list[str]:
    """One line per test period that starts on or before ``cutoff``.

    ``test_ranges`` pairs a unit's name ("<series> fold<f>") with its manifest's
    ``date_ranges.test`` (``first_window_start``: the first bar any test window holds). A cut-off
    on that day already covers a test bar, hence "on or before".
    """
    last_seen = _day(cutoff)
    problems = []
    for unit, test in test_ranges:
        start = str(test["first_window_start"])
        if _day(start) <= last_seen:
            problems.append(
                f"model '{model}' was pretrained on data up to {cutoff}, but {unit}'s test period starts "
                f"{start[:10]} (its last test window ends {str(test['last_end'])[:10]}): the arm would have "
                "seen its test bars (allowed: a model whose pretraining_cutoff is before every test period)"
            )
    return problems


def manifest_test_ranges(data_dirs: Iterable[Path]) -> list[tuple[str, Mapping[str, Any]]]:
    """(unit, date_ranges.test) of each derived fold directory data/derived/<series>/fold<f>."""
    ranges = []
    for data_dir in data_dirs:
        manifest = json.loads((Path(data_dir) / "manifest.json").read_text(encoding="utf-8"))
        ranges.append(
            (f"{Path(data_dir).parent.name} {Path(data_dir).name}", manifest["date_ranges"]["test"])
        )
    return ranges


def refuse_lookahead(model: str, cutoff: str, data_dirs: Iterable[Path]) -> None:
    """Raise LookAheadError naming the model, each series and fold, and the dates, if any test
    period of ``data_dirs`` starts on or before ``cutoff``."""
    problems = lookahead_problems(model, cutoff, manifest_test_ranges(data_dirs))
    if problems:
        raise LookAheadError("no look-ahead through pretraining:\n  - " + "\n  - ".join(problems))
