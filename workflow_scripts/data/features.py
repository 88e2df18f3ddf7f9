"""Per-bar features and the train-only normalisation.

OHLC features, per timeframe, in this order (``data.features``):

* ``bars`` (the default): ``open, high, low, close``, the bar's own prices;
* ``bars_and_changes``: the prices plus ``delta_close`` = close - previous bar's close
  (the previous *existing* bar of the same timeframe, across gaps) and ``body_ratio`` =
  (close - open) / (high - low), in [-1, 1]; 0 when high == low.

Why the bar's own values are the default: a feature that encodes a neighbour gives a
masked value away. With ``delta_close``, close_t = close_{t+1} - delta_close_{t+1}
rebuilds the close of the last bar of a masked span exactly from the visible bar after
it, so masked reconstruction would partly measure copying. ``bars_and_changes`` is
therefore refused for ``task: reconstruct`` (``config.checks.check_cross_fields``).

The first bar of every timeframe has no previous close and is dropped (in both modes,
so the bars and samples are the same whichever features are chosen). Every feature of a
bar depends only on that bar and the one before it, so features never look ahead.
Generic series use their numeric columns as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workflow_scripts.data.bars import Bars

PRICE_FEATURES = ("open", "high", "low", "close")
CHANGE_FEATURES = ("delta_close", "body_ratio")
OHLC_FEATURES = PRICE_FEATURES + CHANGE_FEATURES
FEATURE_SETS = ("bars", "bars_and_changes")


def ohlc_features(bars: Bars, features: str = "bars") -> Bars:
    """The OHLC features of ``features`` (see the module docstring); one bar shorter than the input."""
    if features not in FEATURE_SETS:
        raise ValueError(f"data.features {features!r} is not allowed (allowed: {', '.join(FEATURE_SETS)})")
    if features == "bars":
        return Bars(
            bars.timeframe, bars.open_time[1:], bars.close_time[1:], bars.values[1:, :4], PRICE_FEATURES
        )
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
