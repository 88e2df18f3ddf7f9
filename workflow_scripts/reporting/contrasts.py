"""Planned paired contrasts between variants, Holm-adjusted, with their power.

A contrast ``a vs b`` pairs the two variants' runs by unit (series, fold, seed): ``Δ_u =
metric(a, u) − metric(b, u)``. Each planned contrast (declared under ``contrasts:`` in the config, with a
``role``: primary, secondary, positive_control or negative_control) is tested on the
primary metric and on the two learning-speed metrics; Holm's correction runs, per metric,
over every planned contrast present in the study (both variants ran, at least one paired
unit). The statistics themselves are in :mod:`workflow_scripts.reporting.paired`.

A censored metric (``first_step_beats_naive``: "never" = worse than any step) is tested
on pooled ranks: each run's value is ranked among the 2n runs of the contrast (``never``
ranked last, ties sharing their mean rank) and the sign-flip test runs on the per-unit rank
differences. Its mean Δ, interval and d_z are reported only when no run is censored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from workflow_scripts.reporting import paired, power
from workflow_scripts.reporting.contrast_results import (
    ContrastFamily,
    ContrastResult,
    PairedComparison,
    SkippedContrast,
)
from workflow_scripts.reporting.measures import CONTRAST_METRICS, METRICS, NEVER, PRIMARY_METRIC
from workflow_scripts.reporting.results import ArmResult
from workflow_scripts.reporting.stats import t_interval
from workflow_scripts.reporting.units import Unit

ROLES = ("primary", "secondary", "positive_control", "encoder_control", "negative_control", "pretraining")


def unit_values(arm: ArmResult | None, metric: str) -> dict[Unit, float]:
    """{unit: value} of one variant's finished runs; ``never`` becomes ``+inf`` (worst for a
    lower-is-better censored metric), an absent value leaves the unit out."""
    values: dict[Unit, float] = {}
    for run in [] if arm is None else arm.runs:
        value = run.value(metric)
        if value == NEVER:
            values[run.unit] = math.inf
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            values[run.unit] = float(value)
    return values


def _shown(value: float) -> float | str:
    return NEVER if math.isinf(value) else value


def compare_pair(
    a_values: Mapping[Unit, float],
    b_values: Mapping[Unit, float],
    metric: str,
    confidence: float = 0.95,
) -> PairedComparison:
    """Every number of one paired contrast (before Holm): see the module docstring."""
    spec = METRICS[metric]
    units = sorted(set(a_values) & set(b_values))
    xa = np.array([a_values[u] for u in units], dtype=np.float64)
    xb = np.array([b_values[u] for u in units], dtype=np.float64)
    censored = bool(np.isinf(xa).any() or np.isinf(xb).any())
    n = len(units)
    raw = xa - xb if not censored else None
    if spec.censored:
        ra, rb = paired.pooled_ranks(xa, xb)
        tested = ra - rb
    else:
        tested = xa - xb
    p, test = paired.paired_test(tested) if n else (None, paired.SIGN_FLIP)
    if spec.censored:
        test += " on pooled ranks (never = worst)"
    deltas = [
        None if math.isinf(float(x)) or math.isinf(float(y)) else float(x - y)
        for x, y in zip(xa, xb, strict=True)
    ]
    mean = None if raw is None or n == 0 else float(raw.mean())
    low, high = (None, None) if raw is None else t_interval(raw, confidence)
    # The side a contrast favours comes from the very numbers the test used: the mean
    # paired difference, or for a censored metric the mean rank difference (whatever the
    # majority of units says, the test is driven by the mean).
    basis = float(tested.mean()) if spec.censored and n else mean
    return PairedComparison(
        metric=metric,
        direction=spec.direction,
        censored_metric=spec.censored,
        n=n,
        units=units,
        a_values=[_shown(float(v)) for v in xa],
        b_values=[_shown(float(v)) for v in xb],
        deltas=deltas,
        mean_delta=mean,
        sd_delta=None if raw is None or n < 2 else float(raw.std(ddof=1)),
        ci_low=low,
        ci_high=high,
        p=p,
        test=test,
        d_z=None if raw is None else paired.cohens_dz(raw),
        prob_improvement=paired.probability_of_improvement(
            list(a_values.values()), list(b_values.values()), spec.higher_is_better
        ),
        paired_share=paired.paired_share(tested, spec.higher_is_better),
        improvement=None if basis is None else (basis if spec.higher_is_better else -basis),
        # Pairs with Δ = 0 cannot change sign, so only the others count.
        min_attainable_p=paired.min_attainable_p(int(np.count_nonzero(tested))) if n else 1.0,
    )


def analyse(
    variants: Mapping[str, ArmResult],
    contrasts: Sequence[Mapping[str, Any]],
    alpha: float = paired.ALPHA,
    metrics: Sequence[str] = CONTRAST_METRICS,
    confidence: float = 0.95,
) -> ContrastFamily:
    """The ``contrasts`` block of results/summary.json.

    ``variants`` is the study's arms; ``contrasts`` the configured list of {a, b, role,
    label}. A contrast whose variant has no run here is listed under ``skipped`` with the
    reason, and is not part of the Holm family.
    """
    present: list[Mapping[str, Any]] = []
    skipped: list[SkippedContrast] = []
    for spec in contrasts:
        missing = [v for v in (spec["a"], spec["b"]) if v not in variants or not variants[v].runs]
        if missing:
            reason = f"{' and '.join(missing)} not enabled in this study"
            skipped.append(SkippedContrast(**_identity(spec), reason=reason))
        else:
            present.append(spec)
    results: list[ContrastResult] = []
    for metric in metrics:
        rows = [
            (
                spec,
                compare_pair(
                    unit_values(variants[spec["a"]], metric),
                    unit_values(variants[spec["b"]], metric),
                    metric,
                    confidence,
                ),
            )
            for spec in present
        ]
        family = [row for _, row in rows if row.p is not None]
        adjusted = iter(paired.holm([row.p for row in family if row.p is not None]))
        for spec, row in rows:
            p_adjusted = None if row.p is None else next(adjusted)
            results.append(_contrast_result(spec, row, p_adjusted, len(family), alpha))
    return ContrastFamily(
        alpha=alpha,
        primary_metric=PRIMARY_METRIC,
        results=results,
        skipped=skipped,
    )


def _identity(spec: Mapping[str, Any]) -> dict[str, Any]:
    """name, a, b, role and label of a planned contrast (the fields every row of it shares)."""
    a, b = str(spec["a"]), str(spec["b"])
    return {
        "name": f"{a}_vs_{b}",
        "a": a,
        "b": b,
        "role": str(spec.get("role", "secondary")),
        "label": str(spec.get("label") or f"{a} vs {b}"),
    }


def _contrast_result(
    spec: Mapping[str, Any], row: PairedComparison, p_adjusted: float | None, family_size: int, alpha: float
) -> ContrastResult:
    """The contrast with Holm's adjusted p and the honest-power fields: can n reach α (and
    α/m for Holm's first step), the MDE and the units needed to detect the observed Δ."""
    n = row.n
    m = max(family_size, 1)
    # Power at the level the contrast must reach to be declared whatever the others show:
    # α/m, Holm's first step, for the test this contrast runs (reporting.power).
    level = alpha / m
    mde = power.minimum_detectable_effect(row.sd_delta, n, level)
    unreachable = mde is not None and math.isinf(mde)
    if unreachable:
        mde = None
    # The power each number really has (at least POWER, up to the search's resolution).
    mde_power = (
        power.sign_flip_power(mde / row.sd_delta, n, level) if mde is not None and row.sd_delta else None
    )
    needed = power.units_needed(row.mean_delta, row.sd_delta, level)
    needed_power = (
        None
        if needed is None or row.mean_delta is None or not row.sd_delta
        else power.sign_flip_power(abs(row.mean_delta) / row.sd_delta, needed, level)
    )
    return ContrastResult(
        **_identity(spec),
        **{f.name: getattr(row, f.name) for f in fields(row)},  # shallow: units stay Unit
        p_adjusted=p_adjusted,
        holm_family_size=family_size,
        alpha=alpha,
        can_reach_significance=row.min_attainable_p <= alpha,
        can_reach_after_holm=row.min_attainable_p <= alpha / m,
        power_alpha=level,
        mde=mde,
        mde_power=mde_power,
        units_needed=needed,
        units_needed_power=needed_power,
        significant=p_adjusted is not None and p_adjusted <= alpha,
        favours=None if not row.improvement else ("a" if row.improvement > 0 else "b"),
        mde_unreachable=unreachable,
    )
