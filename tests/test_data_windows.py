"""Alignment (no bar after the sample instant, no still-forming bar) and split gaps."""

from __future__ import annotations

import numpy as np
import pytest

from workflow_scripts.data.bars import Bars, bars_from_open_times
from workflow_scripts.data.resample import OHLC_COLUMNS, resample_ohlc
from workflow_scripts.data.synthetic import trading_open_times
from workflow_scripts.data.timeframes import parse_timeframe
from workflow_scripts.data.windows import SPLITS, bar_ranges, build_samples, plan_splits

HOUR = 3600 * 10**9


def hourly(n: int, weekends: bool = True) -> Bars:
    times = trading_open_times(n, 3600, "2024-01-01", weekends)
    values = np.tile([1.0, 2.0, 0.0, 1.0], (n, 1))
    return bars_from_open_times(parse_timeframe("h1", "t"), times, values, OHLC_COLUMNS)


def test_higher_bar_is_used_only_after_it_closes() -> None:
    base = hourly(24)
    h4 = resample_ohlc(base, parse_timeframe("h4", "t"))
    grid = build_samples([base, h4], seq_len=2, stride=1)
    start = base.open_time[0]
    # the sample ending 10:00 sees the h4 bars of 00:00 and 04:00, not the one opened 08:00
    i = int(np.flatnonzero(grid.end_times == start + 10 * HOUR)[0])
    last_h4 = h4.open_time[grid.ends[i, 1] - 1]
    assert last_h4 == start + 4 * HOUR
    # at 12:00 the 08:00 bar has just closed and becomes usable
    j = int(np.flatnonzero(grid.end_times == start + 12 * HOUR)[0])
    assert h4.open_time[grid.ends[j, 1] - 1] == start + 8 * HOUR
    # the first sample is the first instant with two closed h4 bars (08:00) and uses base 06:00-07:00
    assert grid.end_times[0] == start + 8 * HOUR
    assert base.open_time[grid.ends[0, 0] - 1] == start + 7 * HOUR


@pytest.mark.parametrize("stride", [1, 3])
def test_every_window_ends_at_the_sample_instant(stride: int) -> None:
    base = hourly(2000, weekends=False)
    tfs = [base] + [resample_ohlc(base, parse_timeframe(n, "t")) for n in ("h4", "d")]
    seq_len = 6
    grid = build_samples(tfs, seq_len=seq_len, stride=stride)
    assert np.all(np.diff(np.searchsorted(base.close_time, grid.end_times)) == stride)
    for j, series in enumerate(tfs):
        last = grid.ends[:, j] - 1
        assert np.all(series.close_time[last] <= grid.end_times)
        following = grid.ends[:, j] < len(series)
        assert np.all(series.close_time[grid.ends[following, j]] > grid.end_times[following])
        assert np.all(grid.starts <= series.open_time[grid.ends[:, j] - seq_len])
    # the base window always ends with the bar that closes at the instant
    assert np.array_equal(base.close_time[grid.ends[:, 0] - 1], grid.end_times)


def test_splits_are_chronological_with_a_window_gap() -> None:
    base = hourly(3000, weekends=False)
    daily = resample_ohlc(base, parse_timeframe("d", "t"))
    seq_len = 5
    grid = build_samples([base, daily], seq_len=seq_len, stride=1)
    plan = plan_splits(grid, 0.6, 0.2)
    n = len(grid)
    train, val, test = (plan.ranges[s] for s in SPLITS)
    assert train == (0, round(0.6 * n))
    assert val[1] == round(0.8 * n) and test[1] == n
    for before, after in ((train, val), (val, test)):
        previous_end = grid.end_times[before[1] - 1]
        # every window of the later split opens at/after the earlier split's last instant...
        assert grid.starts[after[0]] >= previous_end
        # ...and the sample just before it would not have (the gap is as small as allowed)
        assert grid.starts[after[0] - 1] < previous_end
        # the gap spans at least one full window of the longest timeframe
        assert grid.end_times[after[0]] - previous_end >= seq_len * 86_400 * 10**9
    assert plan.gap_samples == {"val": val[0] - train[1], "test": test[0] - val[1]}
    for split in SPLITS:
        cuts = bar_ranges(grid, plan.ranges[split], seq_len)
        start, stop = plan.ranges[split]
        assert [lo for lo, _ in cuts] == list(grid.ends[start] - seq_len)
        assert [hi for _, hi in cuts] == list(grid.ends[stop - 1])


def test_too_short_series_gives_no_samples() -> None:
    base = hourly(10)
    grid = build_samples([base, resample_ohlc(base, parse_timeframe("h4", "t"))], seq_len=4, stride=1)
    assert len(grid) == 0
    plan = plan_splits(grid, 0.7, 0.15)
    assert [plan.size(s) for s in SPLITS] == [0, 0, 0]
