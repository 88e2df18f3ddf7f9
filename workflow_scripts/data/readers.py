"""CSV/Parquet tables to validated bars.

Timestamps end up as int64 nanoseconds since the epoch in UTC. Naive timestamps are read
as UTC (the convention of every FX data vendor we know of); aware ones are converted to
UTC; a column mixing the two is an error, because one of the two halves would silently be
shifted by the local offset. Timestamps label the bar's *open* (start) time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.data.bars import Bars, bars_from_open_times
from workflow_scripts.data.timeframes import (
    Timeframe,
    format_seconds,
    most_common_spacing_ns,
)
from workflow_scripts.data.validation import (
    DataValidationError,
    Source,
    check_ohlc,
    check_strictly_increasing,
    first_true,
    normalise_name,
    numeric_column,
    resolve_columns,
)

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
# Column names taken as the timestamp when data.timestamp_column is not set, in priority order.
TIMESTAMP_NAMES = (
    "timestamp",
    "datetime",
    "date_time",
    "time",
    "date",
    "gmt time",
    "local time",
    "open_time",
    "open time",
    "ts",
)
INDEX_COLUMN = "<index>"
# Rows of an unnamed first column parsed to decide whether it is a written DatetimeIndex;
# the whole column is parsed afterwards, so a bad row further down is still reported by row.
INDEX_PROBE_ROWS = 100
# Non-ISO layouts common in market data exports (Dukascopy, MetaTrader, HistData).
EXTRA_TIME_FORMATS = (
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y%m%d %H%M%S",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d",
)
YYYYMMDD_RANGE = (1800_01_01, 2199_12_31)
_AWARE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$")


@dataclass(frozen=True)
class Table:
    """A read table with its timestamps parsed and checked (sorted, unique)."""

    source: Source
    frame: pd.DataFrame
    time_column: str
    times: np.ndarray


def is_csv(path: Path) -> bool:
    """CSV by suffix (compressed CSV included)."""
    return path.name.lower().endswith(CSV_SUFFIXES)


def read_frame(path: Path, label: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file; unreadable or unsupported files name the path."""
    label = label or str(path)
    name = path.name.lower()
    if not path.is_file():
        raise DataValidationError(f"{label}: input file not found")
    try:
        if name.endswith(PARQUET_SUFFIXES):
            return pd.read_parquet(path)
        if name.endswith(CSV_SUFFIXES):
            return pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"{label}: cannot read file: {exc}") from exc
    raise DataValidationError(
        f"{label}: unsupported file type; use CSV ({', '.join(CSV_SUFFIXES)}) "
        f"or Parquet ({', '.join(PARQUET_SUFFIXES)})"
    )


def table_from_frame(frame: pd.DataFrame, source: Source, timestamp_column: str | None) -> Table:
    """Locate and parse the timestamp column (or DatetimeIndex) and check its order."""
    if len(frame) == 0:
        raise source.error("the file has no data rows")
    column = find_time_column(frame, source, timestamp_column)
    raw = frame.index.to_series() if column == INDEX_COLUMN else frame[column]
    label = "index" if column == INDEX_COLUMN else column
    times = parse_timestamps(raw.reset_index(drop=True), source, label)
    check_strictly_increasing(source, label, times)
    return Table(source, frame, column, times)


def find_time_column(frame: pd.DataFrame, source: Source, requested: str | None) -> str:
    """The timestamp column: configured, a well-known name, the DatetimeIndex, or a written index.

    The last is the unnamed first column of a ``DataFrame.to_csv`` file with a DatetimeIndex.
    """
    if requested is not None:
        if requested in frame.columns:
            return requested
        if frame.index.name == requested:
            return INDEX_COLUMN
        raise source.error(
            f"timestamp column {requested!r} (data.timestamp_column) not found; "
            f"the file has {list(map(str, frame.columns))}",
            requested,
        )
    by_key = {normalise_name(name): name for name in frame.columns}
    for candidate in TIMESTAMP_NAMES:
        if candidate in by_key:
            return str(by_key[candidate])
    if isinstance(frame.index, pd.DatetimeIndex):
        return INDEX_COLUMN
    unnamed = _written_index_column(frame, source)
    if unnamed is not None:
        return unnamed
    raise source.error(
        f"no timestamp column found (looked for {', '.join(TIMESTAMP_NAMES)} and a "
        f"DatetimeIndex); the file has {list(map(str, frame.columns))}; "
        "set data.timestamp_column"
    )


def _written_index_column(frame: pd.DataFrame, source: Source) -> str | None:
    """The first column when it is a DatetimeIndex that ``DataFrame.to_csv`` wrote, else None.

    ``to_csv`` writes the index as a first column without a header, which pandas reads back
    as ``Unnamed: 0``. It is taken only if its first rows parse as timestamps. Numbers are
    never taken: an unnamed integer column is far more often a row number (0, 1, 2, ...)
    than epoch time, and reading it as 1970 would only fail later and more obscurely;
    data.timestamp_column still selects such a column explicitly.
    """
    if len(frame.columns) == 0 or str(frame.columns[0]) not in ("", "Unnamed: 0"):
        return None
    column = frame.columns[0]
    probe = frame[column].iloc[:INDEX_PROBE_ROWS].reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(probe.dtype) or pd.api.types.is_bool_dtype(probe.dtype):
        return None
    try:
        parse_timestamps(probe, source, str(column))
    except DataValidationError:
        return None
    return str(column)


def parse_timestamps(raw: pd.Series, source: Source, column: str) -> np.ndarray:
    """Timestamps of any common encoding to int64 ns UTC; errors name the first bad row."""
    null = first_true(raw.isna().to_numpy())
    if null is not None:
        raise source.error("empty timestamp", column, null)
    dtype = raw.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return _datetimes_to_ns(pd.Series(raw))
    if pd.api.types.is_bool_dtype(dtype):
        raise source.error("timestamps must be dates/times, not booleans", column, 0)
    if pd.api.types.is_numeric_dtype(dtype):
        return _epoch_to_ns(raw.to_numpy(), source, column)
    first = raw.iloc[0]
    if not isinstance(first, str):
        return _objects_to_ns(raw, source, column)
    return _strings_to_ns(raw.astype(str), source, column)


def _datetimes_to_ns(values: pd.Series) -> np.ndarray:
    """datetime64 (naive = UTC, or aware) to int64 ns since the epoch in UTC."""
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64).copy()


def _epoch_to_ns(values: np.ndarray, source: Source, column: str) -> np.ndarray:
    """Numbers as epoch time; the unit (s, ms, us, ns) follows from the magnitude.

    Integers that all look like YYYYMMDD dates (a CSV date column without separators,
    which pandas reads as int) are dates, not seconds of August 1970.
    """
    if (
        np.issubdtype(values.dtype, np.integer)
        and YYYYMMDD_RANGE[0] <= values.min() <= values.max() <= YYYYMMDD_RANGE[1]
    ):
        return _yyyymmdd_to_ns(values, source, column)
    numbers = values.astype(np.float64)
    row = first_true(~np.isfinite(numbers))
    if row is not None:
        raise source.error(f"timestamp {float(numbers[row])!r} is not finite", column, row)
    largest = float(np.max(np.abs(numbers)))
    scale = 10**9 if largest < 1e11 else 10**6 if largest < 1e14 else 10**3 if largest < 1e17 else 1
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64) * scale
    return np.round(numbers * scale).astype(np.int64)


def _yyyymmdd_to_ns(values: np.ndarray, source: Source, column: str) -> np.ndarray:
    parsed = pd.to_datetime(pd.Series(values.astype(str)), format="%Y%m%d", utc=True, errors="coerce")
    row = first_true(parsed.isna().to_numpy())
    if row is not None:
        raise source.error(f"cannot parse timestamp {int(values[row])} as a YYYYMMDD date", column, row)
    return _datetimes_to_ns(parsed)


def _objects_to_ns(raw: pd.Series, source: Source, column: str) -> np.ndarray:
    """Python datetime/Timestamp objects (object columns); naive and aware must not mix."""
    aware = np.array([getattr(value, "tzinfo", None) is not None for value in raw])
    _refuse_mixed_awareness(raw, aware, source, column)
    try:
        parsed = pd.to_datetime(raw, utc=True)
    except (ValueError, TypeError) as exc:
        raise source.error(f"cannot read timestamps: {exc}", column) from exc
    return _datetimes_to_ns(parsed)


def _strings_to_ns(raw: pd.Series, source: Source, column: str) -> np.ndarray:
    """Text timestamps: ISO 8601 fast path, then diagnosis and common vendor layouts."""
    try:
        parsed = pd.to_datetime(raw, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        parsed = None
    # pandas < 3 returns an object column (with a warning) for mixed offsets instead of raising
    if parsed is not None and pd.api.types.is_datetime64_any_dtype(parsed.dtype):
        return _datetimes_to_ns(parsed)
    aware = raw.str.contains(_AWARE, regex=True).to_numpy(dtype=bool)
    _refuse_mixed_awareness(raw, aware, source, column)
    for layout in ("ISO8601", *EXTRA_TIME_FORMATS):
        try:
            pd.to_datetime(raw.iloc[:1], format=layout, utc=True)
        except (ValueError, TypeError, OverflowError):
            continue
        parsed = pd.to_datetime(raw, format=layout, utc=True, errors="coerce")
        row = first_true(parsed.isna().to_numpy())
        if row is not None:
            raise source.error(
                f"cannot parse timestamp {raw.iloc[row]!r} (layout {layout!r}, taken from row 0)",
                column,
                row,
            )
        return _datetimes_to_ns(parsed)
    raise source.error(
        f"cannot parse timestamp {raw.iloc[0]!r}; use ISO 8601 (2020-01-31 17:05:00[+00:00]) "
        "or epoch numbers",
        column,
        0,
    )


def _refuse_mixed_awareness(raw: pd.Series, aware: np.ndarray, source: Source, column: str) -> None:
    row = first_true(aware != aware[0])
    if row is None:
        return
    kinds = ("without", "with") if aware[0] else ("with", "without")
    raise source.error(
        f"timestamp {raw.iloc[row]!r} is {kinds[0]} a time zone but row 0 ({raw.iloc[0]!r}) is "
        f"{kinds[1]} one; naive and time-zone-aware timestamps must not be mixed",
        column,
        row,
    )


def ohlc_bars(table: Table, timeframe: Timeframe, requested: Sequence[str] | None) -> Bars:
    """Validated OHLC bars of ``timeframe`` from a table (extra columns such as volume ignored)."""
    roles = ("open", "high", "low", "close")
    names = resolve_columns(table.source, list(map(str, table.frame.columns)), roles, requested)
    values = np.column_stack(
        [numeric_column(table.source, names[role], table.frame[names[role]]) for role in roles]
    )
    check_ohlc(table.source, names, values)
    check_spacing(table, timeframe)
    return bars_from_open_times(timeframe, table.times, values, roles)


def numeric_bars(table: Table, timeframe: Timeframe, requested: Sequence[str] | None) -> Bars:
    """Validated generic bars: the requested columns, or every column but the timestamp."""
    available = [str(name) for name in table.frame.columns]
    if requested is not None:
        names = list(resolve_columns(table.source, available, requested, requested).values())
    else:
        names = [
            name for name in available if name != table.time_column and _looks_numeric(table.frame[name])
        ]
    if not names:
        raise table.source.error(f"no numeric value columns besides the timestamp; the file has {available}")
    values = np.column_stack([numeric_column(table.source, name, table.frame[name]) for name in names])
    check_spacing(table, timeframe)
    return bars_from_open_times(timeframe, table.times, values, tuple(names))


def _looks_numeric(series: pd.Series) -> bool:
    """A column counts as numeric when its first non-empty value is a number.

    Text columns such as a symbol name are skipped, but a numeric column with one bad cell
    further down is kept, so that cell is reported instead of the column vanishing.
    """
    if pd.api.types.is_bool_dtype(series.dtype):
        return False
    if pd.api.types.is_numeric_dtype(series.dtype):
        return True
    present = series.dropna()
    return bool(len(present)) and bool(pd.notna(pd.to_numeric(present.iloc[:1], errors="coerce")).all())


def check_spacing(table: Table, timeframe: Timeframe) -> None:
    """The most common bar spacing must equal the declared timeframe.

    A wrong base timeframe (1-minute bars declared m5) would otherwise produce bars whose
    'close' instant is wrong, which breaks the no-look-ahead guarantee.
    """
    spacing = most_common_spacing_ns(table.times)
    if spacing is None or spacing == timeframe.ns:
        return
    step = np.diff(table.times)
    row = int(np.flatnonzero(step == spacing)[0]) + 1
    column = "index" if table.time_column == INDEX_COLUMN else table.time_column
    raise table.source.error(
        f"the most common bar spacing is {format_seconds(spacing // 10**9)}, e.g. from row "
        f"{row - 1} to this row, but the timeframe {timeframe.name!r} means "
        f"{timeframe.seconds} s; is the first entry of data.timeframes "
        "(the file's own bar length) right?",
        column,
        row,
    )
