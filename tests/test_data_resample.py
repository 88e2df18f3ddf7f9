"""Timeframe parsing and resampling, checked against bars computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.data.bars import Bars, bars_from_open_times
from workflow_scripts.data.features import ohlc_features
from workflow_scripts.data.resample import OHLC_COLUMNS, resample_mean, resample_ohlc
from workflow_scripts.data.timeframes import (
    infer_timeframe,
    parse_timeframe,
    timeframe_from_filename,
)
from workflow_scripts.data.validation import DataValidationError

MIN = 60 * 10**9


def ns(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


def m1_bars(minutes: list[int], ohlc: list[tuple[float, float, float, float]]) -> Bars:
    tf = parse_timeframe("m1", "test")
    times = np.array([ns("2024-01-01") + m * MIN for m in minutes], dtype=np.int64)
    return bars_from_open_times(tf, times, np.array(ohlc, dtype=np.float64), OHLC_COLUMNS)


@pytest.mark.parametrize(
    ("text", "name", "seconds"),
    [
        ("m1", "m1", 60),
        ("M15", "m15", 900),
        ("h4", "h4", 14_400),
        ("H1", "h1", 3600),
        ("m60", "h1", 3600),
        ("d", "d", 86_400),
        ("D1", "d", 86_400),
        ("w", "w", 604_800),
        ("w1", "w", 604_800),
    ],
)
def test_parse_timeframe_accepts_and_canonicalises(text: str, name: str, seconds: int) -> None:
    tf = parse_timeframe(text, "data.timeframes[0]")
    assert (tf.name, tf.seconds) == (name, seconds)


@pytest.mark.parametrize("text", ["x7", "m7", "h5", "h24", "m0", "mn1", "", "1h", 5])
def test_parse_timeframe_rejects_unknown(text: object) -> None:
    with pytest.raises(DataValidationError, match=r"data\.timeframes\[3\]: unknown timeframe"):
        parse_timeframe(text, "data.timeframes[3]")


def test_timeframe_from_filename_and_spacing() -> None:
    assert timeframe_from_filename("usdjpy_2020_h4").name == "h4"
    assert timeframe_from_filename("usdjpy_W1").name == "w"
    assert timeframe_from_filename("usdjpy") is None
    assert timeframe_from_filename("usdjpy_data") is None
    # hourly bars with a weekend gap and one missing hour: the mode is still one hour
    hours = np.array([0, 1, 2, 4, 5, 6, 7, 60, 61, 62], dtype=np.int64) * 60 * MIN
    assert infer_timeframe(hours).name == "h1"
    assert infer_timeframe(np.array([0, 7 * MIN, 14 * MIN])) is None


def test_resample_ohlc_matches_hand_computed_bars_and_keeps_gaps() -> None:
    # minutes 0,1,3,4 -> bucket 00:00; 5,6 -> 00:05; nothing in 00:10; 16 -> 00:15
    bars = m1_bars(
        [0, 1, 3, 4, 5, 6, 16],
        [
            (10, 12, 9, 11),
            (11, 15, 10, 14),
            (14, 14, 8, 9),
            (9, 10, 9, 10),
            (20, 21, 19, 20),
            (20, 22, 18, 21),
            (30, 31, 29, 30),
        ],
    )
    m5 = resample_ohlc(bars, parse_timeframe("m5", "test"))
    assert m5.open_time.tolist() == [ns("2024-01-01") + m * MIN for m in (0, 5, 15)]
    assert m5.close_time.tolist() == [ns("2024-01-01") + m * MIN for m in (5, 10, 20)]
    np.testing.assert_array_equal(m5.values, [[10, 15, 8, 10], [20, 22, 18, 21], [30, 31, 29, 30]])


def test_resample_ohlc_agrees_with_pandas_on_random_bars() -> None:
    rng = np.random.default_rng(1)
    minutes = np.sort(rng.choice(2000, size=900, replace=False))
    close = 100 + np.cumsum(rng.normal(size=900))
    open_ = close + rng.normal(size=900)
    high = np.maximum(open_, close) + 1
    low = np.minimum(open_, close) - 1
    bars = m1_bars(minutes.tolist(), list(zip(open_, high, low, close, strict=True)))
    h1 = resample_ohlc(bars, parse_timeframe("h1", "test"))
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close},
        index=pd.to_datetime(bars.open_time, unit="ns", utc=True),
    )
    expected = (
        frame.resample("1h").agg({"open": "first", "high": "max", "low": "min", "close": "last"}).dropna()
    )
    np.testing.assert_array_equal(h1.values, expected.to_numpy())
    assert h1.open_time.tolist() == [t.value for t in expected.index.as_unit("ns")]


def test_weekly_buckets_start_sunday_utc() -> None:
    daily = parse_timeframe("d", "test")
    days = ["2020-01-02", "2020-01-03", "2020-01-05", "2020-01-06", "2020-01-10", "2020-01-13"]
    times = np.array([ns(d) for d in days], dtype=np.int64)
    values = np.array([[i, i + 1, i - 1, i] for i in range(len(days))], dtype=np.float64)
    week = resample_ohlc(bars_from_open_times(daily, times, values, OHLC_COLUMNS), parse_timeframe("w", "t"))
    # Thu+Fri -> week of Sun 2019-12-29; Sun(FX open)+Mon+Fri -> 2020-01-05; Mon -> 2020-01-12
    assert week.open_time.tolist() == [ns("2019-12-29"), ns("2020-01-05"), ns("2020-01-12")]
    np.testing.assert_array_equal(week.values[:, 0], [0, 2, 5])
    np.testing.assert_array_equal(week.values[:, 3], [1, 4, 5])


def test_bucket_is_complete_only_after_its_last_unaligned_base_bar() -> None:
    # daily bars stamped 22:00: the one opened Saturday 22:00 closes Sunday 22:00,
    # after the nominal end of its week (Sunday 00:00)
    daily = parse_timeframe("d", "test")
    times = np.array([ns("2020-01-09 22:00"), ns("2020-01-11 22:00")], dtype=np.int64)
    values = np.array([[1, 2, 0, 1], [1, 2, 0, 1]], dtype=np.float64)
    week = resample_ohlc(bars_from_open_times(daily, times, values, OHLC_COLUMNS), parse_timeframe("w", "t"))
    assert week.close_time.tolist() == [ns("2020-01-12 22:00")]


def test_resample_mean_for_generic_columns() -> None:
    tf = parse_timeframe("h1", "test")
    times = np.array([0, 1, 2, 5], dtype=np.int64) * 3600 * 10**9
    values = np.array([[1.0, 10.0], [2.0, 20.0], [6.0, 60.0], [4.0, 40.0]])
    h4 = resample_mean(bars_from_open_times(tf, times, values, ("a", "b")), parse_timeframe("h4", "t"))
    np.testing.assert_allclose(h4.values, [[3.0, 30.0], [4.0, 40.0]])
    assert h4.columns == ("a", "b")


def test_ohlc_features_definitions() -> None:
    bars = m1_bars(
        [0, 1, 2],
        [(10, 12, 9, 11), (11, 15, 11, 14), (14, 14, 14, 14)],
    )
    features = ohlc_features(bars)
    assert features.columns == ("open", "high", "low", "close")
    np.testing.assert_allclose(features.values, [[11, 15, 11, 14], [14, 14, 14, 14]])
    features = ohlc_features(bars, "bars_and_changes")
    assert features.columns == ("open", "high", "low", "close", "delta_close", "body_ratio")
    # the first bar has no previous close and is dropped
    np.testing.assert_allclose(features.values, [[11, 15, 11, 14, 3, 0.75], [14, 14, 14, 14, 0, 0]])
    assert features.open_time.tolist() == bars.open_time[1:].tolist()
