"""How numbers read in the report: one place, so a table cell and a sentence agree.

An absent value prints as an em dash with the reason nearby, never as ``0`` or ``nan``:
the report must not make a failed run look like a bad one.
"""

from __future__ import annotations

import math
from typing import Any

from workflow_scripts.reporting.stats import SummaryStats

ABSENT = "—"


def fmt_value(value: Any, digits: int = 3) -> str:
    """A metric value: ``digits`` decimals, or significant digits for very small magnitudes."""
    if value is None or isinstance(value, bool):
        return ABSENT
    number = float(value)
    if not math.isfinite(number):
        return ABSENT
    if number != 0 and abs(number) < 10 ** (-digits + 1):
        return f"{number:.{digits}g}"
    return f"{number:.{digits}f}"


def fmt_int(value: Any) -> str:
    """A count with thousands separators (parameter counts are read at a glance)."""
    if value is None or isinstance(value, bool):
        return ABSENT
    return f"{int(value):,}"


def fmt_seconds(value: Any) -> str:
    """A duration in the unit a reader thinks in."""
    if value is None:
        return ABSENT
    seconds = float(value)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def fmt_mean_ci(stats: SummaryStats, digits: int = 3) -> str:
    """``mean ± half-width`` for a table cell; says so when there is no interval."""
    if stats.mean is None:
        return "no finite value"
    if stats.half_width is None:
        return f"{fmt_value(stats.mean, digits)} (n=1, no CI)"
    return f"{fmt_value(stats.mean, digits)} ± {fmt_value(stats.half_width, digits)}"


def fmt_interval(stats: SummaryStats, digits: int = 3) -> str:
    """``[low, high]`` of the confidence interval, or why there is none."""
    if stats.ci_low is None or stats.ci_high is None:
        return "no CI (single unit)" if stats.n == 1 else "no CI"
    return f"[{fmt_value(stats.ci_low, digits)}, {fmt_value(stats.ci_high, digits)}]"


def fmt_p(value: float | None) -> str:
    """A p-value: three significant digits, or an em dash when there is none."""
    return ABSENT if value is None else f"{value:.3g}"


def period_name(start: str, end: str) -> str:
    """A test period as dates (one series and fold), or its place in each unit's test split."""
    return f"{start[:10]} – {end[:10]}" if end else start


#: What one paired unit is, in the report's words (results.Unit).
UNIT_WORDS = "one series, one fold, one seed each"
