"""Naive baselines scored on exactly the validation windows and masks the models see.

A correlation of 0.9 means little if copying the previous bar scores 0.95. Every run
reports these baselines next to its own numbers, computed with the same metric code on
the same positions, so "the model learned something" is a comparison, not a guess.

* reconstruct: ``linear_interpolation`` (a straight line across each masked span between
  the nearest visible bars) and ``last_value`` (the last visible bar carried forward).
* forecast: ``last_value`` (the window's last bar repeated) and ``seasonal_naive`` (the
  bars one season earlier, the season being one day or one week of bars).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

RECONSTRUCT_BASELINES = ("linear_interpolation", "last_value")
FORECAST_BASELINES = ("last_value", "seasonal_naive")

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
    """windows ``[B, T, L, F]`` at per-sample positions ``index`` ``[B, L]``."""
    b, t, length, f = windows.shape
    gather_index = index.clamp(0, length - 1)[:, None, :, None].expand(b, t, length, f)
    return windows.gather(2, gather_index)


def reconstruct_baselines(windows: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Predictions ``[B, T, L, F]`` of each reconstruct baseline (only masked positions matter).

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
    interpolation = left + (right - left) * frac[:, None, :, None]
    return {"linear_interpolation": interpolation, "last_value": left}


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
    return {"last_value": last, "seasonal_naive": torch.stack(seasonal, dim=1)}


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
