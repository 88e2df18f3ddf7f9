"""Confidence intervals over seeds: Student-t, matching scipy, honest about n = 1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import report_fixtures  # noqa: F401  (puts the repository on sys.path)
from scipy import stats as scipy_stats

from workflow_scripts.reporting.stats import SummaryStats, describe, t_critical


@pytest.mark.parametrize(
    "values",
    [[0.1, 0.12], [0.31, 0.29, 0.35], [1.0, 2.0, 4.0, 8.0, 16.0], [-0.025, -0.037, -0.03]],
)
def test_ci_matches_scipy_t_interval(values: list[float]) -> None:
    result = describe(values)
    sem = scipy_stats.sem(values)
    low, high = scipy_stats.t.interval(0.95, df=len(values) - 1, loc=np.mean(values), scale=sem)
    assert result.n == len(values)
    assert result.mean == pytest.approx(np.mean(values), rel=1e-12)
    assert result.std == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert result.ci_low == pytest.approx(low, rel=1e-12)
    assert result.ci_high == pytest.approx(high, rel=1e-12)


def test_t_critical_is_scipy_ppf() -> None:
    for n in (2, 3, 10):
        assert t_critical(n) == pytest.approx(scipy_stats.t.ppf(0.975, n - 1))
    with pytest.raises(ValueError):
        t_critical(1)


def test_single_seed_has_no_interval_and_says_so() -> None:
    result = describe([0.42])
    assert result.mean == pytest.approx(0.42)
    assert result.std is None and result.ci_low is None and result.ci_high is None
    assert not result.has_ci
    assert "single seed" in result.note


def test_missing_values_are_dropped_not_zeroed() -> None:
    result = describe([0.3, None, math.nan, 0.5])
    assert result.n == 2
    assert result.mean == pytest.approx(0.4)
    empty = describe([None, math.nan])
    assert empty.n == 0 and empty.mean is None
    assert empty.to_dict()["mean"] is None


def test_round_trip_and_never_marker() -> None:
    a = describe([0.30, 0.31, 0.32])
    assert SummaryStats.from_dict(a.to_dict()) == a
    assert describe([3.0, "never", 5.0]).n == 2  # a censored "never" is no value, not a number
