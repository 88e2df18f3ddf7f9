"""Aligned samples and chronological train/val/test splits separated by gaps.

A sample is an end instant T, always the close of a base bar. Its window in timeframe j
is the last ``seq_len`` bars of j that are *complete* at T (``close_time <= T``), so every
window of a sample ends at the same instant and none contains a bar still forming at T.
Sample instants step by ``sample_stride`` base bars from the first instant at which every
timeframe has ``seq_len`` complete bars.

Splits cut the sample sequence at ``train_fraction`` and ``train_fraction +
val_fraction``. Then the first samples of val (and of test) are dropped until the
earliest bar of their windows opens at or after the previous split's last end instant:
no val/test window shares a bar with the split before it, and the gap is at least one
full window of the longest timeframe. Train samples are decided by counts and times only,
so changing values after the train split cannot change the train split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workflow_scripts.data.bars import Bars

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SampleGrid:
    """All candidate samples, in time order.

    ``ends[i, j]`` is one past the last bar of sample i in timeframe j (global bar index);
    ``end_times[i]`` is its end instant; ``starts[i]`` the open time of the earliest bar in
    any of its windows.
    """

    ends: np.ndarray
    end_times: np.ndarray
    starts: np.ndarray

    def __len__(self) -> int:
        return len(self.end_times)


@dataclass(frozen=True)
class SplitPlan:
    """Half-open sample ranges per split and the samples dropped as gaps before val/test."""

    ranges: dict[str, tuple[int, int]]
    gap_samples: dict[str, int]

    def size(self, split: str) -> int:
        """Number of samples in ``split``."""
        start, stop = self.ranges[split]
        return max(stop - start, 0)


def build_samples(bars: Sequence[Bars], seq_len: int, stride: int) -> SampleGrid:
    """Every aligned sample; ``bars[0]`` is the base timeframe whose closes are the instants."""
    instants = bars[0].close_time
    chosen = instants[_first_ready(bars, instants, seq_len) :: stride]
    ends = np.empty((len(chosen), len(bars)), dtype=np.int64)
    starts = np.full(len(chosen), np.iinfo(np.int64).max, dtype=np.int64)
    for j, series in enumerate(bars):
        ends[:, j] = np.searchsorted(series.close_time, chosen, side="right")
        np.minimum(starts, series.open_time[ends[:, j] - seq_len], out=starts)
    return SampleGrid(ends, chosen.copy(), starts)


def _first_ready(bars: Sequence[Bars], instants: np.ndarray, seq_len: int) -> int:
    """Index of the first base close by which every timeframe has ``seq_len`` closed bars."""
    first = 0
    for series in bars:
        if len(series) < seq_len:
            return len(instants)
        ready_at = series.close_time[seq_len - 1]
        first = max(first, int(np.searchsorted(instants, ready_at, side="left")))
    return first


def plan_splits(grid: SampleGrid, train_fraction: float, val_fraction: float) -> SplitPlan:
    """Chronological splits with purged gaps (see the module docstring)."""
    n = len(grid)
    train_stop = round(train_fraction * n)
    val_stop = max(round((train_fraction + val_fraction) * n), train_stop)
    return purged_splits(grid, train_stop, val_stop, n)


def purged_splits(grid: SampleGrid, train_stop: int, val_stop: int, stop: int) -> SplitPlan:
    """Train ``[0, train_stop)``, val up to ``val_stop``, test up to ``stop``, gaps purged.

    The cut points are explicit so that rolling-origin folds (``data.folds``), whose last
    fold ends before the end of the series, purge exactly as the single split does.
    """
    val_start = _first_clear(grid, train_stop, train_stop)
    test_start = _first_clear(grid, val_stop, val_stop)
    return SplitPlan(
        ranges={
            "train": (0, train_stop),
            "val": (val_start, val_stop),
            "test": (test_start, stop),
        },
        gap_samples={
            "val": min(val_start, val_stop) - train_stop,
            "test": min(test_start, stop) - val_stop,
        },
    )


def _first_clear(grid: SampleGrid, boundary: int, lowest: int) -> int:
    """First sample at or after ``lowest`` whose windows all open after sample boundary-1 ends."""
    if boundary <= 0:
        return lowest
    previous_end = grid.end_times[boundary - 1]
    return max(lowest, int(np.searchsorted(grid.starts, previous_end, side="left")))


def bar_ranges(grid: SampleGrid, sample_range: tuple[int, int], seq_len: int) -> list[tuple[int, int]]:
    """Per timeframe, the bars ``[lo, hi)`` that the split's windows cover (first to last)."""
    start, stop = sample_range
    return [
        (int(grid.ends[start, j]) - seq_len, int(grid.ends[stop - 1, j])) for j in range(grid.ends.shape[1])
    ]
