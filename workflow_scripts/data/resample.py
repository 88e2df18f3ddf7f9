"""Base bars to a higher timeframe with integer bucket codes and ``ufunc.reduceat``.

The input is sorted, so each bucket is one contiguous run of rows: the run starts are
where the bucket start changes, and ``np.maximum.reduceat`` / ``np.minimum.reduceat`` give
high and low per run without a Python loop or pandas ``resample`` (which also creates
empty buckets that would then have to be dropped again). Buckets without base bars do not
exist in the output: gaps stay gaps, nothing is forward-filled.
"""

from __future__ import annotations

import numpy as np

from workflow_scripts.data.bars import Bars
from workflow_scripts.data.timeframes import Timeframe
from workflow_scripts.data.validation import DataValidationError

OHLC_COLUMNS = ("open", "high", "low", "close")


def check_resample_target(base: Timeframe, target: Timeframe, where: str) -> None:
    """A higher timeframe must be a whole multiple of the base, or buckets would split bars."""
    if target.seconds <= base.seconds or target.seconds % base.seconds:
        raise DataValidationError(
            f"{where}: timeframe {target.name!r} cannot be built from the base timeframe "
            f"{base.name!r} (the first entry of data.timeframes); every further timeframe "
            "must be a whole multiple of the base, longer than it"
        )


def bucket_runs(bucket_start: np.ndarray) -> np.ndarray:
    """Row index where each run of equal (sorted) bucket starts begins."""
    if bucket_start.size == 0:
        return np.zeros(0, dtype=np.int64)
    changes = np.flatnonzero(bucket_start[1:] != bucket_start[:-1]) + 1
    return np.concatenate(([0], changes)).astype(np.int64)


def _bucket_times(bars: Bars, target: Timeframe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run starts, bucket open times and the instant each bucket's bar is complete.

    A bucket's bar is complete when the bucket has ended *and* its last base bar has
    closed; the second only matters for base bars not aligned to the grid (daily bars
    stamped 22:00), whose last bar can close after the bucket's nominal end.
    """
    starts = bucket_runs(target.bucket_start(bars.open_time))
    open_time = target.bucket_start(bars.open_time[starts])
    last = np.append(starts[1:], len(bars)) - 1
    close_time = np.maximum(open_time + target.ns, bars.close_time[last])
    return starts, open_time, close_time


def resample_ohlc(bars: Bars, target: Timeframe) -> Bars:
    """OHLC aggregation per bucket: first open, max high, min low, last close."""
    starts, open_time, close_time = _bucket_times(bars, target)
    last = np.append(starts[1:], len(bars)) - 1
    o, h, lo, c = (bars.column(name) for name in OHLC_COLUMNS)
    values = np.column_stack(
        (o[starts], np.maximum.reduceat(h, starts), np.minimum.reduceat(lo, starts), c[last])
    )
    return Bars(target, open_time, close_time, values, OHLC_COLUMNS)


def resample_mean(bars: Bars, target: Timeframe) -> Bars:
    """Mean of every column per bucket, for generic (non-OHLC) series."""
    starts, open_time, close_time = _bucket_times(bars, target)
    counts = np.diff(np.append(starts, len(bars)))
    sums = np.add.reduceat(bars.values, starts, axis=0)
    return Bars(target, open_time, close_time, sums / counts[:, None], bars.columns)
