"""Rolling-origin folds: the last fold is the single split, tests tile, nothing leaks in a fold."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from workflow_scripts.data.bars import Bars, bars_from_open_times
from workflow_scripts.data.folds import plan_folds
from workflow_scripts.data.resample import OHLC_COLUMNS, resample_ohlc
from workflow_scripts.data.synthetic import trading_open_times
from workflow_scripts.data.timeframes import parse_timeframe
from workflow_scripts.data.validation import DataValidationError
from workflow_scripts.data.windows import SPLITS, SampleGrid, SplitPlan, build_samples, plan_splits


def two_timeframes(n_hours: int, higher: str = "h4") -> list[Bars]:
    """Hourly bars without weekends plus a resampled higher timeframe."""
    times = trading_open_times(n_hours, 3600, "2024-01-01", weekends=False)
    values = np.tile([1.0, 2.0, 0.0, 1.0], (n_hours, 1))
    base = bars_from_open_times(parse_timeframe("h1", "t"), times, values, OHLC_COLUMNS)
    return [base, resample_ohlc(base, parse_timeframe(higher, "t"))]


def grid_of(n_hours: int, seq_len: int, stride: int = 1, higher: str = "h4") -> SampleGrid:
    return build_samples(two_timeframes(n_hours, higher), seq_len=seq_len, stride=stride)


def assert_no_shared_bar(
    grid: SampleGrid, seq_len: int, before: tuple[int, int], after: tuple[int, int]
) -> None:
    """No window of ``before`` shares a bar (index or time) with a window of ``after``."""
    early, late = slice(*before), slice(*after)
    for j in range(grid.ends.shape[1]):
        last_bar_before = int(grid.ends[early, j].max()) - 1
        first_bar_after = int((grid.ends[late, j] - seq_len).min())
        assert last_bar_before < first_bar_after, (j, before, after)
    # every window closes by its end instant and opens at/after its start time
    assert grid.end_times[early].max() <= grid.starts[late].min(), (before, after)


def check_folds(
    grid: SampleGrid, plans: list[SplitPlan], seq_len: int, folds: int, fractions: tuple[float, float]
) -> None:
    """Every property of the fold definition, against numbers computed here independently."""
    n = len(grid)
    train_fraction, val_fraction = fractions
    test_size = n - round((train_fraction + val_fraction) * n)
    val_size = round((train_fraction + val_fraction) * n) - round(train_fraction * n)
    assert len(plans) == folds
    assert plans[-1] == plan_splits(grid, train_fraction, val_fraction)
    for i, plan in enumerate(plans):
        stop = n - (folds - 1 - i) * test_size
        assert plan.ranges["test"][1] == stop
        assert plan.ranges["val"][1] == stop - test_size  # raw test block [stop - T, stop)
        assert plan.ranges["train"] == (0, stop - test_size - val_size)
        assert all(plan.size(split) > 0 for split in SPLITS)
        assert plan.gap_samples == {
            "val": plan.ranges["val"][0] - plan.ranges["train"][1],
            "test": plan.ranges["test"][0] - plan.ranges["val"][1],
        }
        train, val, test = (plan.ranges[split] for split in SPLITS)
        assert_no_shared_bar(grid, seq_len, train, val)
        assert_no_shared_bar(grid, seq_len, train, test)
        assert_no_shared_bar(grid, seq_len, val, test)
        for before, after in ((train, val), (val, test)):
            # the purge gap is the smallest that works: one sample earlier would share a bar
            assert grid.starts[after[0] - 1] < grid.end_times[before[1] - 1]
    for older, newer in itertools.pairwise(plans):
        # raw test blocks tile: the newer block starts where the older one ends
        assert newer.ranges["val"][1] == older.ranges["test"][1]
        assert newer.ranges["test"][0] >= older.ranges["test"][1]
        assert newer.ranges["train"][1] == older.ranges["train"][1] + test_size


def test_one_fold_is_the_single_split() -> None:
    grid = grid_of(1500, seq_len=6)
    assert plan_folds(grid, 0.6, 0.2, 1) == [plan_splits(grid, 0.6, 0.2)]


def test_three_folds_end_with_the_single_split_and_tile_the_test_blocks() -> None:
    grid = grid_of(3000, seq_len=6)
    plans = plan_folds(grid, 0.6, 0.15, 3)
    assert plans[-1] == plan_splits(grid, 0.6, 0.15)
    n = len(grid)
    test_size = n - round(0.75 * n)
    assert [p.ranges["test"][1] for p in plans] == [n - 2 * test_size, n - test_size, n]
    train_stops = [p.ranges["train"][1] for p in plans]
    assert train_stops == sorted(set(train_stops))  # strictly growing (expanding window)
    assert all(p.ranges["train"][0] == 0 for p in plans)
    assert all(p.gap_samples["val"] > 0 and p.gap_samples["test"] > 0 for p in plans)
    check_folds(grid, plans, 6, 3, (0.6, 0.15))


def test_no_window_shares_a_bar_across_splits_within_a_fold() -> None:
    seq_len = 4
    grid = grid_of(2500, seq_len=seq_len, higher="d")  # daily windows make the gaps long
    plans = plan_folds(grid, 0.7, 0.1, 4)
    check_folds(grid, plans, seq_len, 4, (0.7, 0.1))
    # without the purge the first val/test sample would share bars: the test can fail
    for plan in plans:
        train_stop, val_stop = plan.ranges["train"][1], plan.ranges["val"][1]
        with pytest.raises(AssertionError):
            assert_no_shared_bar(grid, seq_len, (0, train_stop), (train_stop, val_stop))
        with pytest.raises(AssertionError):
            assert_no_shared_bar(grid, seq_len, plan.ranges["val"], (val_stop, plan.ranges["test"][1]))


@pytest.mark.parametrize("folds", [0, -1, 2.0, True])
def test_fold_count_must_be_a_positive_whole_number(folds: object) -> None:
    with pytest.raises(DataValidationError, match=r"data\.folds"):
        plan_folds(grid_of(500, seq_len=4), 0.6, 0.2, folds)  # type: ignore[arg-type]


def test_too_small_a_series_names_data_folds() -> None:
    grid = grid_of(400, seq_len=4)
    with pytest.raises(
        DataValidationError, match=r"data\.folds = 8 is too many for \d+ aligned samples"
    ) as err:
        plan_folds(grid, 0.5, 0.2, 8)
    message = str(err.value)
    assert "fold 0 (0 = oldest) would have no train samples" in message
    fitting = int(message.split("at most ")[1].split(" ")[0])
    check_folds(grid, plan_folds(grid, 0.5, 0.2, fitting), 4, fitting, (0.5, 0.2))
    with pytest.raises(DataValidationError, match=r"data\.folds"):
        plan_folds(grid, 0.5, 0.2, fitting + 1)


def test_purge_gap_eating_a_block_is_an_error() -> None:
    # daily windows of 4 bars need gaps of days; 120 hourly samples hold no such gap
    grid = grid_of(240, seq_len=4, higher="d")
    with pytest.raises(
        DataValidationError, match=r"data\.folds = 2 .*no val samples.*not even one fold fits"
    ):
        plan_folds(grid, 0.6, 0.2, 2)


@pytest.mark.parametrize(
    ("n_hours", "fractions", "stride", "seq_len"),
    [(900, (0.5, 0.2), 1, 3), (1700, (0.7, 0.15), 2, 5), (2600, (0.6, 0.1), 3, 4), (1200, (0.4, 0.3), 1, 2)],
)
def test_fold_properties_over_sizes_fractions_and_counts(
    n_hours: int, fractions: tuple[float, float], stride: int, seq_len: int
) -> None:
    grid = grid_of(n_hours, seq_len=seq_len, stride=stride)
    checked = 0
    for folds in range(1, 7):
        try:
            plans = plan_folds(grid, *fractions, folds)
        except DataValidationError as exc:
            assert folds > 1 and "data.folds" in str(exc)
            # the definition really leaves an empty split: the oldest fold's train or a purged block
            n = len(grid)
            train_0 = round(fractions[0] * n) - (folds - 1) * (n - round(sum(fractions) * n))
            assert train_0 <= 0 or "no val" in str(exc) or "no test" in str(exc)
            continue
        check_folds(grid, plans, seq_len, folds, fractions)
        checked += 1
    assert checked >= 2
