"""Rolling-origin (expanding-window) folds over the aligned samples (``data.folds``).

One chronological split scores a model on one stretch of time, so a result can be an
accident of the last months. Folds repeat the split at several origins. With ``n``
samples, ``a = round(train_fraction * n)`` and ``b = round((train_fraction + val_fraction)
* n)`` (the cut points of ``plan_splits``):

* the test block has ``T = n - b`` samples and the validation block ``V = b - a``;
* fold ``i`` of ``k`` (0 = oldest) ends at ``stop_i = n - (k - 1 - i) * T``: its test is
  samples ``[stop_i - T, stop_i)``, its validation the ``V`` samples before that, and its
  train everything from sample 0 up to the validation block (an expanding window);
* then, exactly as in ``plan_splits``, the first validation (and test) samples are dropped
  until their windows open at or after the last end instant of the block before them, so
  within a fold no window shares a bar with a window of another split.

The test blocks tile ``[n - k * T, n)`` without overlap and the last fold *is*
``plan_splits``, so ``folds = 1`` is the single split unchanged. A fold's test block is
training data of later folds: that is what rolling origins mean, and it is why every fold
is trained from scratch on its own train split.
"""

from __future__ import annotations

from workflow_scripts.data.validation import DataValidationError
from workflow_scripts.data.windows import SPLITS, SampleGrid, SplitPlan, purged_splits


def plan_folds(grid: SampleGrid, train_fraction: float, val_fraction: float, folds: int) -> list[SplitPlan]:
    """The ``folds`` rolling-origin splits, oldest first (see the module docstring).

    With ``folds = 1`` the result is ``[plan_splits(...)]`` and empty splits are left to the
    caller's check (whose message names data.seq_len); with more folds a fold with an empty
    split is an error naming data.folds and how many folds would fit.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise DataValidationError(f"data.folds must be a whole number of at least 1, got {folds!r}")
    n = len(grid)
    train_cut = round(train_fraction * n)
    val_cut = max(round((train_fraction + val_fraction) * n), train_cut)
    plans = _rolling(grid, train_cut, val_cut, folds)
    empty = _first_empty(plans)
    if folds == 1 or empty is None:
        return plans
    fold, split = empty
    fitting = _most_folds(grid, train_cut, val_cut, folds - 1)
    hint = f"at most {fitting} fold(s) fit; lower data.folds" if fitting else "not even one fold fits"
    remedy = "raise data.train_fraction" if split == "train" else "use a smaller data.seq_len"
    raise DataValidationError(
        f"data.folds = {folds} is too many for {n} aligned samples: each fold tests on "
        f"{n - val_cut} and validates on {val_cut - train_cut} samples, so fold {fold} "
        f"(0 = oldest) would have no {split} samples after the gaps between splits; {hint} "
        f"(or use more rows, or {remedy})"
    )


def _most_folds(grid: SampleGrid, train_cut: int, val_cut: int, at_most: int) -> int:
    """The largest fold count up to ``at_most`` with no empty split (0 if none), for the hint."""
    for folds in range(at_most, 0, -1):
        if _first_empty(_rolling(grid, train_cut, val_cut, folds)) is None:
            return folds
    return 0


def _rolling(grid: SampleGrid, train_cut: int, val_cut: int, folds: int) -> list[SplitPlan]:
    """The folds' purged plans, cut points clamped at 0 where the series is too short."""
    n = len(grid)
    test_size, val_size = n - val_cut, val_cut - train_cut
    plans = []
    for back in range(folds - 1, -1, -1):
        stop = max(n - back * test_size, 0)
        val_stop = max(stop - test_size, 0)
        plans.append(purged_splits(grid, max(val_stop - val_size, 0), val_stop, stop))
    return plans


def _first_empty(plans: list[SplitPlan]) -> tuple[int, str] | None:
    """(fold, split) of the first fold, oldest first, with an empty split; None if none."""
    for fold, plan in enumerate(plans):
        for split in SPLITS:
            if plan.size(split) == 0:
                return fold, split
    return None
