"""The in-memory bar series that readers produce and later steps transform.

Every bar carries two instants: its open time (how files label bars) and the instant it
is *complete*, ``close_time``. Alignment only ever compares ``close_time`` with a
sample's end instant, which is what keeps a still-forming higher-timeframe bar (say the
H4 bar opened at 08:00, seen at 10:00) out of every window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workflow_scripts.data.timeframes import Timeframe


@dataclass(frozen=True)
class Bars:
    """Bars of one timeframe: times are int64 ns since the epoch (UTC), values float64 [n, k]."""

    timeframe: Timeframe
    open_time: np.ndarray
    close_time: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.open_time)
        if len(self.close_time) != n or self.values.shape != (n, len(self.columns)):
            raise ValueError(
                f"inconsistent bars: {n} open times, {len(self.close_time)} close times, "
                f"values {self.values.shape} for columns {self.columns}"
            )

    def __len__(self) -> int:
        return len(self.open_time)

    def column(self, name: str) -> np.ndarray:
        """One column's values by name."""
        return self.values[:, self.columns.index(name)]

    def take(self, start: int, stop: int | None = None) -> Bars:
        """Bars ``[start, stop)``: a view, so slicing 3M-bar series costs nothing."""
        rows = slice(start, stop)
        return Bars(
            self.timeframe,
            self.open_time[rows],
            self.close_time[rows],
            self.values[rows],
            self.columns,
        )


def bars_from_open_times(
    timeframe: Timeframe, open_time: np.ndarray, values: np.ndarray, columns: tuple[str, ...]
) -> Bars:
    """Bars read from a file: each is complete one bar length after it opened."""
    open_time = np.ascontiguousarray(open_time, dtype=np.int64)
    return Bars(timeframe, open_time, open_time + timeframe.ns, values, columns)
