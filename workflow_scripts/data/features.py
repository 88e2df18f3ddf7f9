"""Per-bar features and the train-only normalisation.

OHLC features, per timeframe, in this order:

* ``open, high, low, close`` - the bar's prices;
* ``delta_close`` = close - previous bar's close (the previous *existing* bar of the
  same timeframe, across gaps);
* ``body_ratio`` = (close - open) / (high - low), in [-1, 1]; 0 when high == low.

The first bar of every timeframe has no previous close and is dropped rather than given
an invented ``delta_close``. Every feature of a bar depends only on that bar and the one
before it, so features never look ahead. Generic series use their numeric columns as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workflow_scripts.data.bars import Bars

OHLC_FEATURES = ("open", "high", "low", "close", "delta_close", "body_ratio")


def ohlc_features(bars: Bars) -> Bars:
    """The six OHLC features; one bar shorter than the input (its first bar is dropped)."""
    o, h, lo, c = (bars.column(name)[1:] for name in ("open", "high", "low", "close"))
    # filled column by column into one array: no [n, 6] temporaries on 3M-bar inputs
    values = np.empty((len(c), len(OHLC_FEATURES)), dtype=np.float64)
    values[:, :4] = bars.values[1:, :4]
    np.subtract(c, bars.column("close")[:-1], out=values[:, 4])
    span = h - lo
    values[:, 5] = 0.0
    np.divide(c - o, span, out=values[:, 5], where=span > 0)
    return Bars(bars.timeframe, bars.open_time[1:], bars.close_time[1:], values, OHLC_FEATURES)


def fit_normalisation(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-feature mean and population std of the (train) bars, in float64.

    A constant feature gets std 1 so it normalises to 0 instead of dividing by zero.
    """
    data = np.asarray(values, dtype=np.float64)
    mean = data.mean(axis=0)
    std = data.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [float(x) for x in mean], [float(x) for x in std]


def normalise(values: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(values - mean) / std in float64, stored as float32 (what training reads)."""
    scaled = (np.asarray(values, dtype=np.float64) - np.asarray(mean)) / np.asarray(std)
    return scaled.astype(np.float32)
