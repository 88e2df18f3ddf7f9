"""The study's unit of evidence is (series, fold, seed): pairing, the pooled test over every
unit, the per-series and per-fold contrasts, and the new-period estimate, through the very
functions collect runs (``aggregate.study_result``) and the headline the report prints."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from study_builders import arm, run, study

from workflow_scripts.reporting import paired
from workflow_scripts.reporting.conclusions import report_headline
from workflow_scripts.reporting.random_effects import MIN_GROUPS
from workflow_scripts.reporting.units import Unit

PRIMARY = [{"a": "nofreeze", "b": "baseline", "role": "primary", "label": "transfer"}]
SERIES = ("usdjpy", "eurusd")


def _study(delta: dict[tuple[str, int, int], float], base: float = 0.1) -> object:
    """Arms whose paired difference on each unit (series, fold, seed) is ``delta[unit]``; the
    baseline's skill differs per unit so a pairing by seed alone would give other numbers."""
    a, b = [], []
    for (series, fold, seed), d in delta.items():
        level = base + 0.3 * fold + 0.05 * seed + (0.2 if series == "eurusd" else 0.0)
        b.append(run(seed, level, series=series, fold=fold, last_quarter_gain=0.0))
        a.append(run(seed, level + d, series=series, fold=fold, last_quarter_gain=0.0))
    return study({"nofreeze": arm(a), "baseline": arm(b)}, PRIMARY)


def _primary(result: object):
    return result.contrasts.of_role("primary")  # type: ignore[attr-defined]


def test_runs_pair_by_unit_and_the_pooled_test_equals_a_hand_enumeration() -> None:
    units = list(itertools.product(SERIES, (0, 1), (0, 1)))  # 2 series x 2 folds x 2 seeds
    values = [0.03, -0.01, 0.05, 0.02, 0.04, 0.06, -0.02, 0.01]
    row = _primary(_study(dict(zip(units, values, strict=True))))
    assert row.n == 8
    assert row.units == sorted(Unit(*unit) for unit in units)
    by_unit = dict(zip(row.units, row.deltas, strict=True))
    for unit, value in zip(units, values, strict=True):
        assert by_unit[Unit(*unit)] == pytest.approx(value)
    # every one of the 2^8 sign patterns, by hand: p = share with |sum| >= observed |sum|
    observed = abs(sum(values))
    hits = sum(
        abs(sum(sign * v for sign, v in zip(signs, values, strict=True))) >= observed - 1e-12
        for signs in itertools.product((1, -1), repeat=len(values))
    )
    assert row.p == pytest.approx(hits / 2 ** len(values))
    assert row.test == paired.SIGN_FLIP


def test_each_series_and_each_fold_gets_its_delta_and_interval() -> None:
    delta = {
        (series, fold, seed): (0.10 if series == "usdjpy" else -0.02) + 0.01 * fold + 0.001 * seed
        for series, fold, seed in itertools.product(SERIES, (0, 1, 2), (0, 1, 2))
    }
    breadth = _primary(_study(delta)).breadth
    assert [g.name for g in breadth.series] == ["eurusd", "usdjpy"]
    eurusd, usdjpy = breadth.series
    assert eurusd.n == usdjpy.n == 9
    assert usdjpy.mean_delta == pytest.approx(np.mean([v for k, v in delta.items() if k[0] == "usdjpy"]))
    assert eurusd.mean_delta == pytest.approx(np.mean([v for k, v in delta.items() if k[0] == "eurusd"]))
    assert eurusd.ci_low < eurusd.mean_delta < eurusd.ci_high
    assert [g.name for g in breadth.folds] == ["fold 0", "fold 1", "fold 2"]
    assert [g.n for g in breadth.folds] == [6, 6, 6]
    # the new-period estimate pools the 6 (series, fold) cells; the new-series one the 2 series
    assert breadth.new_period.k == 6 and breadth.new_period.informative
    assert breadth.new_series.k == 2 and not breadth.new_series.informative
    # the two series disagree: the new-series interval is wide, and covers both series' Δ
    assert breadth.new_series.ci_low < eurusd.mean_delta and usdjpy.mean_delta < breadth.new_series.ci_high


def test_the_new_period_estimate_is_wider_than_the_pooled_interval_when_folds_disagree() -> None:
    """The pooled test's interval is about these units; across folds that disagree, the estimate
    for a new period carries the spread between them."""
    delta = {
        ("usdjpy", fold, seed): [0.02, 0.10, 0.18][fold] + 0.002 * seed
        for fold, seed in itertools.product((0, 1, 2), range(4))
    }
    row = _primary(_study(delta))
    estimate = row.breadth.new_period
    assert estimate.k == 3 >= MIN_GROUPS and estimate.tau2 > 0
    assert (estimate.ci_high - estimate.ci_low) > 2 * (row.ci_high - row.ci_low)
    assert estimate.mean == pytest.approx(row.mean_delta, abs=1e-9)  # equal cells: the same centre


def test_one_fold_of_one_series_has_no_new_period_estimate_and_the_headline_says_which_claim() -> None:
    delta = {("msft", 0, seed): 0.05 + 0.01 * seed for seed in range(9)}
    result = _study(delta)
    row = _primary(result)
    assert row.breadth.new_period is None and row.breadth.new_series is None
    text = report_headline(result).breadth  # type: ignore[arg-type]
    assert "a claim about these 9 units (1 series × 1 fold × 9 seeds)" in text
    assert "No estimate for a new period (one fold: each series has a single test period)." in text
    assert "With one series, the study says nothing about another instrument." in text


def test_the_headline_gives_the_new_period_estimate_with_its_interval() -> None:
    delta = {
        ("msft", fold, seed): 0.05 + 0.02 * fold + 0.003 * seed
        for fold, seed in itertools.product((0, 1, 2), range(3))
    }
    result = _study(delta)
    estimate = _primary(result).breadth.new_period
    text = report_headline(result).breadth  # type: ignore[arg-type]
    assert f"For a new period the random-effects estimate is Δ = {estimate.mean:+.3g}" in text
    assert f"95% CI {estimate.ci_low:+.3g} to {estimate.ci_high:+.3g}; 3 folds" in text
    assert "Δ per fold: fold 0" in text


def test_with_one_fold_there_is_no_new_period_estimate_only_a_new_series_one() -> None:
    """One fold per series: the (series, fold) cells are the series, so their spread is the
    spread between instruments, not between periods; it is reported once, as the new-series one."""
    delta = {
        (series, 0, seed): (0.05 if series == "usdjpy" else 0.09) + 0.01 * seed
        for series, seed in itertools.product((*SERIES, "gbpjpy"), range(3))
    }
    result = _study(delta)
    breadth = _primary(result).breadth
    assert breadth.new_period is None and breadth.new_series.k == 3
    text = report_headline(result).breadth  # type: ignore[arg-type]
    assert "No estimate for a new period (one fold" in text and "For a new series" in text
