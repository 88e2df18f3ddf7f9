"""How a test-metric contrast varies inside the test split: between mask draws, between periods.

Every run is scored under the same ``K`` draws of test masks and in the same contiguous test
periods (``training.final_test``), so for a contrast ``a vs b`` and a unit ``u`` (series,
fold, seed):

- **draw spread**: ``Δ[u, d]`` = a's skill − b's skill under draw ``d``; ``draw_sd`` is the
  mean over units of ``sd_d Δ[u, d]`` (ddof 1): how far one draw's luck moves a unit's Δ.
  The headline's Δ averages the K draws within each unit, and its interval is over units, so
  it treats these K draws as fixed: another set of draws would move it by about
  ``draw_sd / √K``. The report states that beside the unit-to-unit sd.
- **per period**: ``Δ[u, p]`` in period ``p`` of the unit's test split (its skill averaged
  over the draws); each period gets the same paired statistics as the headline
  (:func:`contrasts.compare_pair`), and the arm × period interaction is tested within units
  (:mod:`heterogeneity`). With several folds or series, period ``p`` is the p-th stretch of
  each unit's own test split, not one stretch of calendar time.

Pure functions of the typed arms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from workflow_scripts.reporting.contrast_results import PeriodDelta, WithinTest
from workflow_scripts.reporting.contrasts import compare_pair
from workflow_scripts.reporting.heterogeneity import heterogeneity_test
from workflow_scripts.reporting.results import ArmResult, PeriodSpan, RunEntry
from workflow_scripts.reporting.runs import OK_STATUSES
from workflow_scripts.reporting.units import Unit


def _finished(arm: ArmResult) -> dict[Unit, RunEntry]:
    return {run.unit: run for run in arm.runs if run.status in OK_STATUSES}


def draw_sd(a: ArmResult, b: ArmResult, metric: str) -> tuple[float | None, int]:
    """(mean over the shared units of the sd of Δ across draws, number of draws); sd is None
    with fewer than 2 draws."""
    runs_a, runs_b = _finished(a), _finished(b)
    sds = []
    draws = 0
    for unit in sorted(set(runs_a) & set(runs_b)):
        da, db = runs_a[unit].draws(metric), runs_b[unit].draws(metric)
        if len(da) == len(db) and len(da) >= 2:
            sds.append(float(np.std(np.subtract(da, db), ddof=1)))
            draws = len(da)
    return (float(np.mean(sds)) if sds else None), draws


def period_values(arm: ArmResult, metric: str, period: int) -> dict[Unit, float]:
    """{unit: the arm's test metric in ``period``} of its finished runs that have one."""
    values = {}
    for unit, run in _finished(arm).items():
        periods = run.periods(metric)
        value = periods[period] if period < len(periods) else None
        if value is not None and math.isfinite(value):
            values[unit] = float(value)
    return values


def within_test(a: ArmResult, b: ArmResult, metric: str, periods: Sequence[PeriodSpan]) -> WithinTest:
    """The draw spread, the per-period contrasts and the interaction test of ``a vs b``."""
    sd, draws = draw_sd(a, b, metric)
    rows = []
    per_unit: dict[Unit, list[float]] = {}
    for index, span in enumerate(periods):
        values_a, values_b = period_values(a, metric, index), period_values(b, metric, index)
        row = compare_pair(values_a, values_b, metric)
        rows.append(PeriodDelta(span.start, span.end, row.n, row.mean_delta, row.ci_low, row.ci_high, row.p))
        for unit in sorted(set(values_a) & set(values_b)):
            per_unit.setdefault(unit, []).append(values_a[unit] - values_b[unit])
    complete = [deltas for deltas in per_unit.values() if len(deltas) == len(periods)]
    test = heterogeneity_test(np.array(complete)) if complete else None
    means = [row.mean_delta for row in rows]
    overall = float(np.mean([d for deltas in complete for d in deltas])) if complete else None
    holds = (
        None
        if overall is None or any(m is None for m in means)
        else all(m is not None and np.sign(m) == np.sign(overall) for m in means)
    )
    return WithinTest(sd, draws, rows, None if test is None else test.p, holds)


def periods_of(arms: Sequence[ArmResult]) -> list[PeriodSpan]:
    """The test periods as the runs cut them: their dates when every finished run cut the same
    ones (one series, one fold), else each period by its place in every unit's test split."""
    cuts = {tuple(run.period_spans) for arm in arms for run in arm.runs if run.period_spans}
    if len(cuts) == 1:
        return list(next(iter(cuts)))
    if not cuts:
        return []
    count = min(len(cut) for cut in cuts)
    return [
        PeriodSpan(
            f"part {index + 1} of {count} of each test split", "", sum(cut[index].n_windows for cut in cuts)
        )
        for index in range(count)
    ]
