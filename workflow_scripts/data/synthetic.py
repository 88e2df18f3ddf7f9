"""Synthetic random-walk OHLC bars, for tests and the benchmark only (never for results).

Bars are generated on an FX-like calendar (no Saturday/Sunday bars) so resampling,
weekly buckets and gaps are exercised the way real data exercises them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NS_PER_SECOND = 1_000_000_000
DAY_NS = 86_400 * NS_PER_SECOND


def trading_open_times(n_rows: int, bar_seconds: int, start: str, weekends: bool) -> np.ndarray:
    """``n_rows`` bar open times (int64 ns, UTC) every ``bar_seconds``, skipping weekends."""
    step = bar_seconds * NS_PER_SECOND
    first = pd.Timestamp(start, tz="UTC").value
    count = n_rows if weekends else int(n_rows * 7 / 5) + 2 * (7 * DAY_NS // step) + 8
    candidates = first + step * np.arange(count, dtype=np.int64)
    if weekends:
        return candidates
    weekday = (candidates // DAY_NS + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    return candidates[weekday < 5][:n_rows]


def synthetic_ohlc(
    n_rows: int,
    *,
    bar_seconds: int = 60,
    start: str = "2020-01-06",
    seed: int = 0,
    weekends: bool = False,
) -> pd.DataFrame:
    """Random-walk bars: columns timestamp (UTC), open, high, low, close, volume.

    ``open`` is the previous close, and high/low enclose open and close, so every bar
    passes validation; ``weekends=False`` leaves out Saturday and Sunday bars.
    """
    rng = np.random.default_rng(seed)
    times = trading_open_times(n_rows, bar_seconds, start, weekends)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n_rows)))
    open_ = np.concatenate(([100.0], close[:-1]))
    reach = np.abs(rng.normal(0.0, 5e-4, (2, n_rows))) * close
    high = np.maximum(open_, close) + reach[0]
    low = np.minimum(open_, close) - reach[1]
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(times, unit="ns", utc=True),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1, 1000, n_rows),
        }
    )
