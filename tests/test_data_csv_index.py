"""CSV files in ``DataFrame.to_csv``'s default layout: the index as an unnamed first column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.config.base import DataConfig
from workflow_scripts.data.pipeline import preprocess
from workflow_scripts.data.readers import read_frame, table_from_frame
from workflow_scripts.data.synthetic import synthetic_ohlc
from workflow_scripts.data.validation import DataValidationError, Source

SPEC: dict[str, Any] = {"name": "t", "timeframes": ("h1", "h4"), "seq_len": 8}
NO_COLUMN = (
    r"no timestamp column found .*the file has \['Unnamed: 0', 'open', 'high', 'low', 'close', "
    r"'volume'\]; set data\.timestamp_column"
)


def indexed_bars(tz: str | None) -> pd.DataFrame:
    """Hourly OHLC bars indexed by their open time (UTC, converted to ``tz`` or made naive)."""
    frame = synthetic_ohlc(600, bar_seconds=3600).set_index("timestamp")
    index = frame.index.tz_convert(tz) if tz else frame.index.tz_localize(None)
    return frame.set_axis(index.rename(None), axis=0)


@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Berlin"])
def test_written_datetime_index_is_the_timestamp(tmp_path: Path, tz: str | None) -> None:
    frame = indexed_bars(tz)
    source = tmp_path / "bars.csv"
    frame.to_csv(source)
    assert source.read_text().startswith(",open,high")  # the layout this is about
    table = table_from_frame(read_frame(source), Source(str(source), csv=True), None)
    assert table.time_column == "Unnamed: 0"
    expected = (frame.index.tz_convert("UTC").tz_localize(None) if tz else frame.index).as_unit("ns")
    np.testing.assert_array_equal(table.times, expected.asi8)

    # the whole pipeline gives the same arrays as the same bars with a named timestamp column
    reference = tmp_path / "reference.csv"
    synthetic_ohlc(600, bar_seconds=3600).to_csv(reference, index=False)
    preprocess(DataConfig(path=str(reference), **SPEC), tmp_path / "a")
    manifest = preprocess(DataConfig(path=str(source), **SPEC), tmp_path / "b")
    assert manifest["rows"] == {"h1": 600, "h4": 150}
    files = sorted((tmp_path / "a").glob("*.npy"))
    assert files
    for file in files:
        assert file.read_bytes() == (tmp_path / "b" / file.name).read_bytes(), file.name


def without_time(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="timestamp")


@pytest.mark.parametrize(
    "make_index",
    [
        lambda frame: frame,  # default RangeIndex 0..n-1
        lambda frame: frame.iloc[::2],  # a filtered frame: 0, 2, 4, ...
        # epoch seconds are numbers too: not guessed, data.timestamp_column selects them
        lambda frame: frame.set_axis(np.arange(len(frame)) * 3600 + 1_700_000_000, axis=0),
        lambda frame: frame.set_axis([f"EURUSD-{i}" for i in range(len(frame))], axis=0),
    ],
    ids=["range", "every_other_row", "epoch_seconds", "text"],
)
def test_unnamed_column_that_is_not_a_written_datetime_index_is_refused(
    tmp_path: Path, make_index: object
) -> None:
    source = tmp_path / "bars.csv"
    make_index(without_time(synthetic_ohlc(200, bar_seconds=3600))).to_csv(source)  # type: ignore[operator]
    with pytest.raises(DataValidationError, match=NO_COLUMN):
        preprocess(DataConfig(path=str(source), **SPEC), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_numeric_unnamed_column_is_read_when_configured(tmp_path: Path) -> None:
    frame = without_time(synthetic_ohlc(200, bar_seconds=3600))
    frame.index = np.arange(len(frame)) * 3600 + 1_700_000_000
    source = tmp_path / "bars.csv"
    frame.to_csv(source)
    table = table_from_frame(read_frame(source), Source(str(source)), "Unnamed: 0")
    np.testing.assert_array_equal(table.times, frame.index.to_numpy() * 10**9)


def test_bad_timestamp_after_the_probed_rows_is_reported_by_row(tmp_path: Path) -> None:
    frame = indexed_bars(None)
    index = frame.index.astype(str).to_numpy(dtype=object)
    index[250] = "not a time"
    frame.index = pd.Index(index)
    source = tmp_path / "bars.csv"
    frame.to_csv(source)
    with pytest.raises(DataValidationError, match=r"column 'Unnamed: 0', row 250 \(line 252\)"):
        preprocess(DataConfig(path=str(source), **SPEC), tmp_path / "out")
