"""Input checks whose errors say exactly where the input is wrong.

A preprocessing failure on a multi-million-row file is only actionable if the message
names the file, the column and the first offending row, so every check here returns the
*first* bad position and raises ``DataValidationError`` with a message built by
``Source.error``. Rows count data rows from 0; for CSV files the file line (header =
line 1) is given too, because that is what an editor shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


class DataValidationError(ValueError):
    """Bad input data or data configuration; the message names file, column and row."""


@dataclass(frozen=True)
class Source:
    """Where a table came from, so errors can point into it.

    ``label`` is the path as the user wrote it (or a description for the embedded data);
    ``csv`` adds file line numbers to row numbers.
    """

    label: str
    csv: bool = False

    def where(self, column: str | None = None, row: int | None = None) -> str:
        """``file: column 'x', row 5 (line 7)`` - the prefix of every message about this table."""
        parts = [self.label]
        if column is not None:
            parts.append(f"column {column!r}")
        if row is not None:
            line = f" (line {row + 2})" if self.csv else ""
            parts.append(f"row {row}{line}")
        return ", ".join(parts)

    def error(self, problem: str, column: str | None = None, row: int | None = None) -> DataValidationError:
        """An exception (to ``raise``) whose message starts with the location."""
        return DataValidationError(f"{self.where(column, row)}: {problem}")


def first_true(mask: np.ndarray) -> int | None:
    """Index of the first True in ``mask``, or None; argmax alone cannot tell 'none' from 0."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def numeric_column(source: Source, column: str, series: pd.Series) -> np.ndarray:
    """The column as finite float64, or an error at its first non-numeric / NaN / inf cell.

    Booleans are refused: silently reading True/False as 1/0 hides a wrong column choice.
    """
    if pd.api.types.is_bool_dtype(series.dtype):
        raise source.error(f"boolean value {series.iloc[0]!r}; every value must be a number", column, 0)
    if not pd.api.types.is_numeric_dtype(series.dtype):
        coerced = pd.to_numeric(series, errors="coerce")
        row = first_true(coerced.isna().to_numpy() & series.notna().to_numpy())
        if row is not None:
            raise source.error(
                f"non-numeric value {series.iloc[row]!r}; every value must be a number",
                column,
                row,
            )
        series = coerced
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    row = first_true(~np.isfinite(values))
    if row is not None:
        raise source.error(
            f"value {float(values[row])!r} is not finite; NaN, empty and inf cells are not allowed "
            "(gaps must be missing rows, not empty values)",
            column,
            row,
        )
    return values


def check_strictly_increasing(source: Source, column: str, times_ns: np.ndarray) -> None:
    """Timestamps must be sorted and unique: bars are never re-ordered or merged silently."""
    if times_ns.size < 2:
        return
    step = np.diff(times_ns)
    row = first_true(step <= 0)
    if row is None:
        return
    previous, current = iso_utc(times_ns[row]), iso_utc(times_ns[row + 1])
    if step[row] == 0:
        raise source.error(f"duplicate timestamp {current} (same as the row before)", column, row + 1)
    raise source.error(f"timestamps are not sorted: {current} comes after {previous}", column, row + 1)


def check_ohlc(source: Source, names: Mapping[str, str], ohlc: np.ndarray) -> None:
    """high >= low and open/close within [low, high] on every bar, checked exactly.

    ``ohlc`` is float64 [n, 4] in the order open, high, low, close; ``names`` maps those
    roles to the file's column names for the message.
    """
    o, h, lo, c = (ohlc[:, i] for i in range(4))
    problems = (
        (h < lo, "high", "high {h!r} is below low {lo!r}"),
        ((o < lo) | (o > h), "open", "open {o!r} is outside [low, high] = [{lo!r}, {h!r}]"),
        ((c < lo) | (c > h), "close", "close {c!r} is outside [low, high] = [{lo!r}, {h!r}]"),
    )
    first: tuple[int, str, str] | None = None
    for mask, role, template in problems:
        row = first_true(mask)
        if row is not None and (first is None or row < first[0]):
            first = (row, role, template)
    if first is None:
        return
    row, role, template = first
    values: dict[str, Any] = {
        "o": float(o[row]),
        "h": float(h[row]),
        "lo": float(lo[row]),
        "c": float(c[row]),
    }
    raise source.error(template.format(**values), names[role], row)


def resolve_columns(
    source: Source, available: Sequence[str], wanted: Sequence[str], requested: Sequence[str] | None
) -> dict[str, str]:
    """Map each role in ``wanted`` to a column of the file.

    With ``requested`` (``data.columns``) the mapping is positional and exact; without it
    the roles are matched case-insensitively, so ``Open``/``OPEN``/``open`` all work.
    """
    if requested is not None:
        if len(requested) != len(wanted):
            raise source.error(
                f"data.columns lists {len(requested)} columns but {len(wanted)} are needed "
                f"(in this order: {', '.join(wanted)})"
            )
        missing = [name for name in requested if name not in available]
        if missing:
            raise source.error(
                f"missing column(s) {missing} named in data.columns; the file has {list(available)}",
                missing[0],
            )
        return dict(zip(wanted, requested, strict=True))
    lookup = {normalise_name(name): name for name in available}
    mapping = {role: lookup.get(role) for role in wanted}
    missing = [role for role, name in mapping.items() if name is None]
    if missing:
        raise source.error(
            f"missing required column(s) {missing} (header); the file has {list(available)}; "
            "name them with data.columns if they are spelled differently",
            missing[0],
        )
    return {role: str(name) for role, name in mapping.items()}


def normalise_name(name: object) -> str:
    """Column-name key for matching: case, surrounding blanks and MetaTrader's <...> ignored."""
    return str(name).strip().strip("<>").strip().lower()


def iso_utc(ns: int | np.integer) -> str:
    """ISO 8601 UTC spelling of an int64 ns timestamp, for messages and the manifest."""
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()
