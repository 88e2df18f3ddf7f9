"""Every kind of bad input: exit 1, a message naming file/column/row, and no output left."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from workflow_scripts.data.synthetic import synthetic_ohlc
from workflow_scripts.preprocess import main

ROW = 37


@pytest.fixture(autouse=True)
def restore_log_handlers() -> Iterator[None]:
    """main() adds a stderr handler bound to this test's captured stream; drop it afterwards."""
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)


def good_frame(n: int = 200) -> pd.DataFrame:
    """Hourly bars with naive text timestamps, as most CSV exports have them."""
    frame = synthetic_ohlc(n, bar_seconds=3600)
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S").astype(object)
    return frame


def run(
    tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str], fold: int = 0, **overrides: object
) -> str:
    """preprocess as the rule calls it (data/derived/{series}/fold{fold}); it must fail, leaving
    nothing behind, not even a temporary sibling of the fold's directory."""
    params = {"name": "bad", "path": str(source), "kind": "ohlc", "timeframes": ["h1", "h4"], "seq_len": 8}
    params.update(overrides)
    out = tmp_path / "derived" / "bad" / f"fold{fold}"
    code = main(["--data-json", json.dumps(params), "--fold", str(fold), "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    return err


def set_cell(frame: pd.DataFrame, column: str, value: object) -> None:
    frame[column] = frame[column].astype(object)
    frame.loc[ROW, column] = value


def non_numeric(frame: pd.DataFrame) -> None:
    set_cell(frame, "close", "1.2x")


def nan(frame: pd.DataFrame) -> None:
    set_cell(frame, "high", None)


def inf(frame: pd.DataFrame) -> None:
    set_cell(frame, "open", "inf")


def unsorted(frame: pd.DataFrame) -> None:
    frame.loc[[ROW - 1, ROW], "timestamp"] = frame.loc[[ROW, ROW - 1], "timestamp"].to_numpy()


def duplicate(frame: pd.DataFrame) -> None:
    set_cell(frame, "timestamp", frame.loc[ROW - 1, "timestamp"])


def mixed_tz(frame: pd.DataFrame) -> None:
    set_cell(frame, "timestamp", frame.loc[ROW, "timestamp"] + "+00:00")


def bad_time(frame: pd.DataFrame) -> None:
    set_cell(frame, "timestamp", "2020-13-45 00:00:00")


def high_below_low(frame: pd.DataFrame) -> None:
    set_cell(frame, "high", frame.loc[ROW, "low"] - 1)


def open_outside(frame: pd.DataFrame) -> None:
    set_cell(frame, "open", frame.loc[ROW, "high"] + 1)


def close_outside(frame: pd.DataFrame) -> None:
    set_cell(frame, "close", frame.loc[ROW, "low"] - 1)


CASES: dict[str, tuple[Callable[[pd.DataFrame], None], str, str]] = {
    "non_numeric": (non_numeric, "close", "non-numeric value '1.2x'"),
    "nan": (nan, "high", "is not finite"),
    "inf": (inf, "open", "value inf is not finite"),
    "unsorted": (unsorted, "timestamp", "timestamps are not sorted"),
    "duplicate": (duplicate, "timestamp", "duplicate timestamp"),
    "mixed_tz": (mixed_tz, "timestamp", "naive and time-zone-aware timestamps must not be mixed"),
    "bad_time": (bad_time, "timestamp", "cannot parse timestamp '2020-13-45 00:00:00'"),
    "high_below_low": (high_below_low, "high", "is below low"),
    "open_outside": (open_outside, "open", "is outside [low, high]"),
    "close_outside": (close_outside, "close", "is outside [low, high]"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_csv_cell_is_reported_with_file_column_and_row(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, column, problem = CASES[case]
    frame = good_frame()
    mutate(frame)
    source = tmp_path / "bars.csv"
    frame.to_csv(source, index=False)
    err = run(tmp_path, source, capsys)
    assert f"{source}, column '{column}', row {ROW} (line {ROW + 2}): " in err
    assert problem in err


def test_bad_parquet_cell_has_row_but_no_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = synthetic_ohlc(200, bar_seconds=3600)
    frame.loc[ROW, "low"] = float("nan")
    source = tmp_path / "bars.parquet"
    frame.to_parquet(source)
    err = run(tmp_path, source, capsys)
    assert f"{source}, column 'low', row {ROW}: " in err


def test_missing_ohlc_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bars.csv"
    good_frame().drop(columns=["low"]).to_csv(source, index=False)
    err = run(tmp_path, source, capsys)
    assert f"{source}, column 'low': missing required column(s) ['low'] (header)" in err


def test_wrong_base_timeframe_is_caught_by_spacing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bars.csv"
    good_frame().to_csv(source, index=False)
    err = run(tmp_path, source, capsys, timeframes=["m15", "h1"])
    assert f"{source}, column 'timestamp', row 1 (line 3): the most common bar spacing is 3600 s (h1)" in err
    assert "but the timeframe 'm15' means 900 s" in err


def test_too_few_rows_for_one_window_per_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bars.csv"
    good_frame(60).to_csv(source, index=False)
    err = run(tmp_path, source, capsys)
    assert f"{source}: too few rows for data.seq_len = 8: 60 h1 rows" in err
    assert "every split needs at least one sample" in err


@pytest.mark.parametrize(
    ("timeframes", "where"),
    [
        (["h1", "x7"], "data.timeframes[1]: unknown timeframe 'x7'"),
        (["h4", "h1"], "data.timeframes[1]: timeframe 'h1' cannot be built"),
    ],
)
def test_bad_timeframes(
    timeframes: list[str], where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bars.csv"
    good_frame().to_csv(source, index=False)
    assert where in run(tmp_path, source, capsys, timeframes=timeframes)


def test_missing_file_and_bad_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "input file not found" in run(tmp_path, tmp_path / "nope.csv", capsys)
    code = main(["--data-json", '{"name": "x", "bogus": 1}', "--out-dir", str(tmp_path / "o")])
    assert code == 1 and "--data-json" in capsys.readouterr().err


def test_a_fold_beyond_data_folds_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bars.csv"
    good_frame(2000).to_csv(source, index=False)
    err = run(tmp_path, source, capsys, fold=2, folds=2)
    assert "fold 2 does not exist: data.folds = 2 gives folds 0..1" in err


def test_bad_file_in_derived_dir_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    frame = synthetic_ohlc(200, bar_seconds=3600)
    frame.to_parquet(folder / "fx_h1.parquet")
    hours4 = (
        frame.set_index("timestamp")
        .resample("4h")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last"})
        .dropna()
    )
    hours4.iloc[5, 1] = hours4.iloc[5, 2] - 1
    hours4.to_parquet(folder / "fx_h4.parquet")
    err = run(tmp_path, folder, capsys, kind="derived_dir")
    assert f"{folder / 'fx_h4.parquet'}, column 'high', row 5: high" in err
