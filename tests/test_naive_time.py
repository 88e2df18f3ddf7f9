"""The time-interpolation naive rule: known prices in time across timeframes (issue 18)."""

from __future__ import annotations

import torch

from workflow_scripts.training.naive import reconstruct_baselines, time_interpolation

DAY = 86_400 * 10**9
OHLC_COLUMNS = (0, 1, 2, 3)


def _daily_bars(closes: list[float]) -> torch.Tensor:
    """[1, 1, L, 4] contiguous daily bars: each open is the previous close, high/low around them."""
    opens = [closes[0] - 1.0, *closes[:-1]]
    rows = [[o, max(o, c) + 0.5, min(o, c) - 0.5, c] for o, c in zip(opens, closes, strict=True)]
    return torch.tensor(rows, dtype=torch.float64)[None, None]


def test_a_masked_close_equal_to_the_next_bars_open_is_recovered_exactly() -> None:
    closes = [10.0, 11.0, 13.0, 12.0, 17.0, 16.0, 15.0, 14.0]
    bars = _daily_bars(closes)
    mask = torch.zeros(1, 1, len(closes), dtype=torch.bool)
    mask[..., 4] = True  # bar 4 closes at 17, which is bar 5's open
    times = torch.arange(len(closes), dtype=torch.int64)[None, None] * DAY
    out = time_interpolation(bars, mask, times, [DAY], OHLC_COLUMNS)
    assert out[0, 0, 4, 3].item() == bars[0, 0, 5, 0].item() == 17.0
    # its open is the previous visible close, exactly (the bar before ends when it opens)
    assert out[0, 0, 4, 0].item() == closes[3]
    # the straight line between neighbouring closes misses it: the rule is not the old one
    linear = reconstruct_baselines(bars, mask, bars.mean(dim=2, keepdim=True))["linear_interpolation"]
    assert linear[0, 0, 4, 3].item() != 17.0


def test_a_span_is_interpolated_in_time_and_high_low_stay_a_consistent_bar() -> None:
    closes = [10.0, 11.0, 12.0, 99.0, 99.0, 99.0, 20.0, 21.0]
    bars = _daily_bars(closes)
    mask = torch.zeros(1, 1, len(closes), dtype=torch.bool)
    mask[..., 3:6] = True
    times = torch.arange(len(closes), dtype=torch.int64)[None, None] * DAY
    out = time_interpolation(bars, mask, times, [DAY], OHLC_COLUMNS)[0, 0]
    # known: bar 2's close 12 at t=3 days, bar 6's open 99 at t=6 days
    expected_close = [12 + (99 - 12) * k / 3 for k in (1, 2, 3)]
    torch.testing.assert_close(out[3:6, 3], torch.tensor(expected_close, dtype=torch.float64))
    assert torch.all(out[3:6, 1] >= torch.maximum(out[3:6, 0], out[3:6, 3]))
    assert torch.all(out[3:6, 2] <= torch.minimum(out[3:6, 0], out[3:6, 3]))
    # visible bars are returned unchanged in open and close
    torch.testing.assert_close(out[:3, 3], bars[0, 0, :3, 3])


def test_another_timeframes_visible_bar_gives_the_known_price_a_window_edge_lacks() -> None:
    """Masked days at the start of the daily window: the weekly window still knows the close
    just before them (the old rules fill them from the right side only)."""
    week = 7 * DAY
    weekly = _daily_bars([5.0, 6.0, 7.0, 10.0, 13.0, 12.5])  # weeks -4 .. 1; week 0 closes at 10
    days = torch.tensor([[99.0, 99.5, 98.0, 99.0]] * 5 + [[13.0, 13.5, 12.0, 12.8]], dtype=torch.float64)
    bars = torch.cat([days[None, None], weekly], dim=1)  # [1, 2, 6, 4]
    weekly_times = torch.arange(-4, 2, dtype=torch.int64) * week
    daily_times = torch.tensor([0, 1, 2, 3, 4, 7], dtype=torch.int64) * DAY  # Mon..Fri, next Mon
    times = torch.stack([daily_times, weekly_times])[None]
    mask = torch.zeros(1, 2, 6, dtype=torch.bool)
    mask[0, 0, :5] = True  # the days of week 0 ...
    mask[0, 1, 4] = True  # ... and week 0 itself
    out = time_interpolation(bars, mask, times, [DAY, week], OHLC_COLUMNS)
    assert out[0, 0, 0, 0].item() == 10.0  # Monday's open: week -1's close, known at that instant
    edge = reconstruct_baselines(bars, mask, bars.mean(dim=2, keepdim=True))["last_value"]
    assert edge[0, 0, 0, 0].item() == 13.0  # the same-timeframe rules only see the right side
