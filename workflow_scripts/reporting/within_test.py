"""How a test-metric contrast varies inside the test split: between mask draws, between periods.

Every run is scored under the same ``K`` draws of test masks and in the same contiguous test
periods (``training.final_test``), so for a contrast ``a vs b`` and a seed ``s``:

- **draw spread**: ``Δ[s, d]`` = a's skill − b's skill under draw ``d``; ``draw_sd`` is the
  mean over seeds of ``sd_d Δ[s, d]`` (ddof 1): how far one draw's luck moves a seed's Δ.
  The headline's Δ averages the K draws within each seed, and its interval is over seeds, so
  it treats these K draws as fixed: another set of draws would move it by about
  ``draw_sd / √K``. The report states that beside the seed-to-seed sd.
- **per period**: ``Δ[s, p]`` in period ``p`` (its skill averaged over the draws); each
  period gets the same paired statistics as the headline (:func:`contrasts.compare_pair`),
  and the arm × period interaction is tested within seeds (:mod:`heterogeneity`).

Pure functions of the typed arms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from workflow_scripts.reporting.contrasts import compare_pair
from workflow_scripts.reporting.heterogeneity import heterogeneity_test
from workflow_scripts.reporting.results import ArmResult, PeriodDelta, PeriodSpan, RunEntry, WithinTest
from workflow_scripts.reporting.runs import OK_STATUSES


def _finished(arm: ArmResult) -> dict[int, RunEntry]:
    return {run.seed: run for run in arm.runs if run.status in OK_STATUSES}


def draw_sd(a: ArmResult, b: ArmResult, metric: str) -> tuple[float | None, int]:
    """(mean over the shared seeds of the sd of Δ across draws, number of draws); sd is None
    with fewer than 2 draws."""
    runs_a, runs_b = _finished(a), _finished(b)
    sds = []
    draws = 0
    for seed in sorted(set(runs_a) & set(runs_b)):
        da, db = runs_a[seed].draws(metric), runs_b[seed].draws(metric)
        if len(da) == len(db) and len(da) >= 2:
            sds.append(float(np.std(np.subtract(da, db), ddof=1)))
            draws = len(da)
    return (float(np.mean(sds)) if sds else None), draws


def period_values(arm: ArmResult, metric: str, period: int) -> dict[int, float]:
    """{seed: the arm's test metric in ``period``} of its finished runs that have one."""
    values = {}
    for seed, run in _finished(arm).items():
        periods = run.periods(metric)
        value = periods[period] if period < len(periods) else None
        if value is not None and math.isfinite(value):
            values[seed] = float(value)
    return values


def within_test(a: ArmResult, b: ArmResult, metric: str, periods: Sequence[PeriodSpan]) -> WithinTest:
    """The draw spread, the per-period contrasts and the interaction test of ``a vs b``."""
    sd, draws = draw_sd(a, b, metric)
    rows = []
    per_seed: dict[int, list[float]] = {}
    for index, span in enumerate(periods):
        values_a, values_b = period_values(a, metric, index), period_values(b, metric, index)
        row = compare_pair(values_a, values_b, metric)
        rows.append(PeriodDelta(span.start, span.end, row.n, row.mean_delta, row.ci_low, row.ci_high, row.p))
        for seed in set(values_a) & set(values_b):
            per_seed.setdefault(seed, []).append(values_a[seed] - values_b[seed])
    complete = [deltas for deltas in per_seed.values() if len(deltas) == len(periods)]
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
    """The test periods as the runs cut them (every run cuts the same test split alike): the
    first finished run's."""
    for arm in arms:
        for run in arm.runs:
            if run.period_spans:
                return list(run.period_spans)
    return []
