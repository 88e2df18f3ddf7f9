"""Naive baselines scored on exactly the evaluation windows and masks the models see.

A model "learned something" only if it beats what a one-line rule gets on the same
masked positions, in the same units (window units, see ``normalisation``), with the same
metric code. Reconstruct baselines (each fills masked bars from the channel's visible
bars in the same window, which after leak-free masking is all that is visible):

* ``window_mean``: the mean of the visible bars, i.e. 0 in window units ("predict nothing");
* ``last_value``: the last visible bar before the span carried forward;
* ``linear_interpolation``: a straight line across each masked span between the nearest
  visible bars;
* ``ohlc_interpolation`` (OHLC data only): interpolate close linearly, take each masked
  bar's open from the close before it (the open of a bar is nearly its predecessor's
  close), and keep high >= max(open, close) and low <= min(open, close) around the
  interpolated high and low, so the four prices stay a consistent bar. Computed in
  prices (the train-z values mapped back), then scaled into window units like the rest.
* ``time_interpolation`` (OHLC data with bar times only): every visible bar of every
  timeframe is two known prices in time, its open at its start and its close at its end.
  A masked bar's open (at its start) and close (at its end) are interpolated linearly in
  time between the nearest such known price on each side, whichever timeframe it comes
  from, so a masked close right before a visible bar is that bar's open; high and low
  are kept around them as in ``ohlc_interpolation``. Leak-free masks (``masking``) make
  every visible bar lie outside the masked time, so nothing hidden is read.

Forecast baselines: ``last_value`` (the window's last bar repeated), ``seasonal_naive``
(the bars one season earlier, the season being one day or one week of bars) and
``window_mean``.

The bar to clear is the strongest baseline **per feature group** (prices, other), chosen
on validation and combined (``evaluation``), not one baseline for every channel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

RECONSTRUCT_BASELINES = (
    "window_mean",
    "last_value",
    "linear_interpolation",
    "ohlc_interpolation",
    "time_interpolation",
)
FORECAST_BASELINES = ("window_mean", "last_value", "seasonal_naive")
OHLC = ("open", "high", "low", "close")

_DAY = 86_400
_WEEK = 7 * _DAY
_UNIT_SECONDS = {"s": 1, "min": 60, "t": 60, "m": 60, "h": 3600, "d": _DAY, "w": _WEEK}
_TIMEFRAME = re.compile(r"^(?:(\d+)\s*([a-z]+)|([a-z]+)\s*(\d*))$")


def _neighbours(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each position: index of the nearest visible bar at or before it and at or after it.

    -1 / L where there is none on that side.
    """
    length = mask.shape[-1]
    positions = torch.arange(length, device=mask.device).expand_as(mask)
    visible = ~mask
    before = torch.where(visible, positions, torch.full_like(positions, -1)).cummax(dim=-1).values
    after_rev = torch.where(visible, positions, torch.full_like(positions, length)).flip(-1)
    after = after_rev.cummin(dim=-1).values.flip(-1)
    return before, after


def _take(windows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """windows ``[B, T, L, F]`` at per-window positions ``index`` ``[B, T, L]``."""
    length, f = windows.shape[2], windows.shape[3]
    return windows.gather(2, index.clamp(0, length - 1)[..., None].expand(*index.shape, f))


def _interpolation(windows: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(linear interpolation, last value), each ``[B, T, L, F]``.

    A span touching the window's edge has a visible neighbour on one side only and is
    filled with that bar's value.
    """
    length = mask.shape[-1]
    before, after = _neighbours(mask)
    has_before, has_after = before >= 0, after < length
    left = _take(windows, torch.where(has_before, before, after))
    right = _take(windows, torch.where(has_after, after, before))
    positions = torch.arange(length, device=mask.device).expand_as(mask)
    both = has_before & has_after
    gap = torch.where(both, after - before, torch.ones_like(after)).clamp_min(1)
    frac = torch.where(both, (positions - before).to(windows.dtype) / gap.to(windows.dtype), 0.0)
    return left + (right - left) * frac[..., None], left


def ohlc_interpolation(prices: torch.Tensor, mask: torch.Tensor, columns: Sequence[int]) -> torch.Tensor:
    """A consistent bar for every masked position, in prices ``[B, T, L, F]`` (see the module docstring).

    ``columns`` are the feature indices of open, high, low and close; other features
    are linearly interpolated.
    """
    o, h, lo, c = columns
    linear, _ = _interpolation(prices, mask)
    close = linear[..., c]
    previous_close = torch.cat([close[..., :1], close[..., :-1]], dim=-1)
    first = torch.zeros_like(mask)
    first[..., 0] = True
    opened = torch.where(first, linear[..., o], previous_close)
    out = linear.clone()
    out[..., o] = opened
    out[..., h] = torch.maximum(linear[..., h], torch.maximum(opened, close))
    out[..., lo] = torch.minimum(linear[..., lo], torch.minimum(opened, close))
    return out


def _nearest_known(
    times: torch.Tensor, values: torch.Tensor, known: torch.Tensor, queries: torch.Tensor
) -> torch.Tensor:
    """Linear interpolation in time at ``queries`` ``[B, M]`` between the nearest known
    (``known``) events ``(times, values)`` ``[B, N]`` on each side; one side where the other
    has none, and that side's value where both sides share one instant."""
    n = times.shape[1]
    order = torch.argsort(times, dim=1, stable=True)
    times, values, known = times.gather(1, order), values.gather(1, order), known.gather(1, order)
    positions = torch.arange(n, device=times.device).expand_as(times)
    last_known = torch.where(known, positions, torch.full_like(positions, -1)).cummax(dim=1).values
    next_rev = torch.where(known, positions, torch.full_like(positions, n)).flip(1)
    next_known = next_rev.cummin(dim=1).values.flip(1)
    at_or_before = torch.searchsorted(times, queries, right=True) - 1
    at_or_after = torch.searchsorted(times, queries, right=False)
    left = torch.where(at_or_before >= 0, last_known.gather(1, at_or_before.clamp_min(0)), -1)
    right = torch.where(at_or_after < n, next_known.gather(1, at_or_after.clamp_max(n - 1)), n)
    has_left, has_right = left >= 0, right < n
    left_value = values.gather(1, left.clamp(0, n - 1))
    right_value = values.gather(1, right.clamp(0, n - 1))
    left_time = times.gather(1, left.clamp(0, n - 1))
    right_time = times.gather(1, right.clamp(0, n - 1))
    span = right_time - left_time
    frac = torch.where(span > 0, (queries - left_time) / torch.where(span > 0, span, 1.0), 0.0)
    both = left_value + (right_value - left_value) * frac.to(values.dtype)
    return torch.where(has_left & has_right, both, torch.where(has_left, left_value, right_value))


def time_interpolation(
    prices: torch.Tensor,
    mask: torch.Tensor,
    open_times: torch.Tensor,
    bar_ns: Sequence[int],
    columns: Sequence[int],
) -> torch.Tensor:
    """A bar for every masked position from the nearest known prices in time, in prices
    ``[B, T, L, F]`` (see the module docstring).

    ``open_times`` ``[B, T, L]`` are the bars' open times (int64 ns), ``bar_ns[j]``
    timeframe j's bar length; ``columns`` the indices of open, high, low and close.
    """
    o, h, lo, c = columns
    b, t, length, _ = prices.shape
    start = open_times - open_times.amin(dim=(1, 2), keepdim=True)
    seconds = start.to(torch.float64) / 1e9
    ends = (
        seconds
        + torch.tensor([ns / 1e9 for ns in bar_ns], dtype=torch.float64, device=prices.device)[None, :, None]
    )
    times = torch.cat([seconds, ends], dim=2).reshape(b, 2 * t * length)
    values = torch.cat([prices[..., o], prices[..., c]], dim=2).reshape(b, 2 * t * length)
    known = (~mask).repeat(1, 1, 2).reshape(b, 2 * t * length)
    filled = _nearest_known(times, values.to(torch.float64), known, times).to(prices.dtype)
    filled = filled.reshape(b, t, 2 * length)
    opened, closed = filled[..., :length], filled[..., length:]
    linear, _ = _interpolation(prices, mask)
    out = linear.clone()
    out[..., o] = opened
    out[..., c] = closed
    out[..., h] = torch.maximum(linear[..., h], torch.maximum(opened, closed))
    out[..., lo] = torch.minimum(linear[..., lo], torch.minimum(opened, closed))
    return out


def reconstruct_baselines(
    windows: torch.Tensor,
    mask: torch.Tensor,
    loc: torch.Tensor,
    *,
    to_prices: tuple[torch.Tensor, torch.Tensor] | None = None,
    ohlc_columns: Sequence[int] | None = None,
    open_times: torch.Tensor | None = None,
    bar_ns: Sequence[int] | None = None,
) -> dict[str, torch.Tensor]:
    """Predictions ``[B, T, L, F]`` in the units of ``windows`` (only masked positions matter).

    ``mask`` ``[B, T, L]``; ``loc`` ``[B, T, 1, F]`` is the visible bars' mean.
    ``to_prices`` = (mean, std) ``[T, F]`` maps ``windows`` to prices for
    ``ohlc_interpolation``, which is left out without it or without OHLC columns;
    ``time_interpolation`` also needs the bars' ``open_times`` and ``bar_ns``.
    """
    linear, last = _interpolation(windows, mask)
    predictions = {
        "window_mean": loc.expand_as(windows),
        "last_value": last,
        "linear_interpolation": linear,
    }
    if to_prices is not None and ohlc_columns is not None:
        mean, std = (part[None, :, None, :] for part in to_prices)
        prices = ohlc_interpolation(windows * std + mean, mask, ohlc_columns)
        predictions["ohlc_interpolation"] = (prices - mean) / std
        if open_times is not None and bar_ns is not None:
            timed = time_interpolation(windows * std + mean, mask, open_times, bar_ns, ohlc_columns)
            predictions["time_interpolation"] = (timed - mean) / std
    return predictions


def forecast_baselines(
    windows: torch.Tensor, horizon: int, seasons: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Predictions ``[B, T, horizon, F]``; ``seasons[j]`` is timeframe j's season in bars."""
    length = windows.shape[2]
    last = windows[:, :, -1:, :].expand(-1, -1, horizon, -1)
    seasonal = []
    for j, season in enumerate(seasons):
        offsets = [length - season + (h % season) for h in range(horizon)]
        seasonal.append(windows[:, j, offsets, :])
    mean = windows.mean(dim=2, keepdim=True).expand_as(last)
    return {"window_mean": mean, "last_value": last, "seasonal_naive": torch.stack(seasonal, dim=1)}


def timeframe_seconds(timeframe: str) -> int | None:
    """Nominal bar length of a timeframe name: ``m5``/``5min``/``5T``, ``h1``/``1h``, ``d``, ``w``.

    None when the name is not a recognised duration.
    """
    match = _TIMEFRAME.match(timeframe.strip().lower())
    if not match:
        return None
    count, unit = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
    if unit not in _UNIT_SECONDS:
        return None
    return int(count or 1) * _UNIT_SECONDS[unit]


def season_length(timeframe: str, seq_len: int, horizon: int, bar_times: np.ndarray | None = None) -> int:
    """Bars per season: one day for intraday bars, one week for daily, one year (52) for weekly.

    With the bars' open times the count is measured (the median number of bars in the
    preceding season), so a trading calendar gives 5 daily bars a week, not 7. A season
    longer than the window, or an unrecognised timeframe, falls back to ``horizon``.
    """
    seconds = timeframe_seconds(timeframe)
    if seconds is None:
        return min(horizon, seq_len)
    period = _DAY if seconds < _DAY else _WEEK if seconds < _WEEK else 52 * _WEEK
    if bar_times is not None and len(bar_times) > 1:
        times = np.asarray(bar_times, dtype=np.int64)
        count = np.arange(len(times)) - np.searchsorted(times, times - period * 1_000_000_000, side="left")
        season = int(np.median(count[count > 0])) if np.any(count > 0) else period // seconds
    else:
        season = max(1, period // seconds)
    return season if 1 <= season <= seq_len else min(horizon, seq_len)
