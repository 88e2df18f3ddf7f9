"""Timeframe strings and the bucket arithmetic behind resampling.

Timeframes are written ``m<N>`` (minutes), ``h<N>`` (hours), ``d`` (UTC day) and ``w``
(week); ``d1``/``w1`` and upper case are accepted and canonicalised. Minute and hour
lengths must divide a day, so every bucket starts at a fixed offset from UTC midnight and
two files resampled on different machines put each bar in the same bucket. Weeks start on
Sunday 00:00 UTC, which keeps an FX week (Sunday evening to Friday) in one bucket and
changes nothing for exchange data that never trades at weekends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from workflow_scripts.data.validation import DataValidationError

NS_PER_SECOND = 1_000_000_000
DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS
# 1970-01-01 was a Thursday; 1970-01-04 00:00 UTC is the first Sunday after the epoch.
WEEK_ANCHOR_NS = 3 * DAY_SECONDS * NS_PER_SECOND
# Timeframes the spacing-based inference may return, shortest first.
COMMON_TIMEFRAMES = ("m1", "m5", "m15", "m30", "h1", "h4", "d", "w")
_PATTERN = re.compile(r"^(?:(?P<unit>[mh])(?P<count>\d+)|(?P<long>[dw])1?)$")


@dataclass(frozen=True, order=True)
class Timeframe:
    """A fixed bar length; ordered by length so ``min``/``max`` pick the base/longest."""

    seconds: int
    name: str

    @property
    def ns(self) -> int:
        """Bar length in nanoseconds, the unit every timestamp array here uses."""
        return self.seconds * NS_PER_SECOND

    def bucket_start(self, times_ns: np.ndarray) -> np.ndarray:
        """Open time (ns, UTC) of the bucket of this timeframe that contains each instant."""
        times = np.asarray(times_ns, dtype=np.int64)
        if self.seconds == WEEK_SECONDS:
            return (times - WEEK_ANCHOR_NS) // self.ns * self.ns + WEEK_ANCHOR_NS
        return times // self.ns * self.ns


def parse_timeframe(text: object, where: str) -> Timeframe:
    """Parse a timeframe string; ``where`` (e.g. ``data.timeframes[1]``) goes into the error."""
    timeframe = _parse(text)
    if timeframe is None:
        raise DataValidationError(
            f"{where}: unknown timeframe {text!r}; use m<N> or h<N> with a length that "
            "divides a day (m1, m5, m15, m30, h1, h4, ...), d (day) or w (week)"
        )
    return timeframe


def timeframe_from_filename(stem: str) -> Timeframe | None:
    """Timeframe from the last ``_``-separated token of a file stem (``eurusd_m5`` -> m5)."""
    return _parse(stem.rsplit("_", 1)[-1]) if "_" in stem else None


def infer_timeframe(times_ns: np.ndarray) -> Timeframe | None:
    """The timeframe whose length is the most common bar spacing, or None.

    The mode, not the minimum or median, because gaps (weekends, holidays) only ever make
    individual spacings longer and the occasional DST shift makes one shorter.
    """
    spacing = most_common_spacing_ns(times_ns)
    if spacing is None or spacing % NS_PER_SECOND:
        return None
    return timeframe_for_seconds(spacing // NS_PER_SECOND)


def most_common_spacing_ns(times_ns: np.ndarray) -> int | None:
    """Most frequent difference between consecutive timestamps (the shortest on ties)."""
    if len(times_ns) < 2:
        return None
    values, counts = np.unique(np.diff(np.asarray(times_ns, dtype=np.int64)), return_counts=True)
    return int(values[int(np.argmax(counts))])


def timeframe_for_seconds(seconds: int) -> Timeframe | None:
    """Canonical timeframe with this bar length, or None if it is not one we support."""
    if seconds == WEEK_SECONDS:
        return Timeframe(WEEK_SECONDS, "w")
    if seconds == DAY_SECONDS:
        return Timeframe(DAY_SECONDS, "d")
    if seconds <= 0 or seconds % 60 or DAY_SECONDS % seconds:
        return None
    if seconds % 3600 == 0:
        return Timeframe(seconds, f"h{seconds // 3600}")
    return Timeframe(seconds, f"m{seconds // 60}")


def format_seconds(seconds: int) -> str:
    """Human-readable length for messages (``300 s (m5)``)."""
    timeframe = timeframe_for_seconds(seconds)
    return f"{seconds} s" + (f" ({timeframe.name})" if timeframe else "")


def _parse(text: object) -> Timeframe | None:
    if not isinstance(text, str):
        return None
    match = _PATTERN.match(text.strip().lower())
    if match is None:
        return None
    if match["long"]:
        return timeframe_for_seconds(DAY_SECONDS if match["long"] == "d" else WEEK_SECONDS)
    count = int(match["count"])
    seconds = count * (60 if match["unit"] == "m" else 3600)
    if count == 0 or seconds >= DAY_SECONDS:
        return None
    return timeframe_for_seconds(seconds)
