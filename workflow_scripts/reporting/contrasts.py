"""Planned paired contrasts between variants, Holm-adjusted, with their power.

A contrast ``a vs b`` pairs the two variants' runs by seed: ``Δ_s = metric(a, s) −
metric(b, s)``. Each planned contrast (declared under ``contrasts:`` in the config, with a
``role``: primary, secondary, positive_control or negative_control) is tested on the
primary metric and on the two learning-speed metrics; Holm's correction runs, per metric,
over every planned contrast present in the study (both variants ran, at least one paired
seed). The statistics themselves are in :mod:`workflow_scripts.reporting.paired`.

A censored metric (``first_step_beats_naive``: "never" = worse than any step) is tested
on pooled ranks: each run's value is ranked among the 2n runs of the contrast (``never``
ranked last, ties sharing their mean rank) and the sign-flip test runs on the per-seed rank
differences. Its mean Δ, interval and d_z are reported only when no run is censored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workflow_scripts.reporting import paired, power
from workflow_scripts.reporting.metrics import CONTRAST_METRICS, METRICS, NEVER, PRIMARY_METRIC
from workflow_scripts.reporting.stats import t_interval

ROLES = ("primary", "secondary", "positive_control", "encoder_control", "negative_control")


def seed_values(block: Mapping[str, Any] | None, metric: str) -> dict[int, float]:
    """{seed: value} of one variant's finished runs; ``never`` becomes ``+inf`` (worst for a
    lower-is-better censored metric), an absent value leaves the seed out."""
    values: dict[int, float] = {}
    for run in (block or {}).get("runs", []):
        value = run.get(metric)
        if value == NEVER:
            values[int(run["seed"])] = math.inf
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            values[int(run["seed"])] = float(value)
    return values


def _shown(value: float) -> float | str:
    return NEVER if math.isinf(value) else value


def compare_pair(
    a_values: Mapping[int, float],
    b_values: Mapping[int, float],
    metric: str,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Every number of one paired contrast (before Holm): see the module docstring."""
    spec = METRICS[metric]
    seeds = sorted(set(a_values) & set(b_values))
    xa = np.array([a_values[s] for s in seeds], dtype=np.float64)
    xb = np.array([b_values[s] for s in seeds], dtype=np.float64)
    censored = bool(np.isinf(xa).any() or np.isinf(xb).any())
    n = len(seeds)
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
    sd = None if raw is None or n < 2 else float(raw.std(ddof=1))
    # The side a contrast favours comes from the very numbers the test used: the mean
    # paired difference, or for a censored metric the mean rank difference (whatever the
    # majority of seeds says, the test is driven by the mean).
    basis = float(tested.mean()) if spec.censored and n else mean
    oriented = None if basis is None else (basis if spec.higher_is_better else -basis)
    return {
        "metric": metric,
        "direction": spec.direction,
        "censored_metric": spec.censored,
        "n": n,
        "seeds": seeds,
        "a_values": [_shown(float(v)) for v in xa],
        "b_values": [_shown(float(v)) for v in xb],
        "deltas": deltas,
        "mean_delta": mean,
        "sd_delta": sd,
        "ci_low": low,
        "ci_high": high,
        "interval": f"{round(confidence * 100)}% Student-t interval of the mean paired difference",
        "p": p,
        "test": test,
        "d_z": None if raw is None else paired.cohens_dz(raw),
        "prob_improvement": paired.probability_of_improvement(
            list(a_values.values()), list(b_values.values()), spec.higher_is_better
        ),
        "paired_share": paired.paired_share(tested, spec.higher_is_better),
        "improvement": oriented,
        # Pairs with Δ = 0 cannot change sign, so only the others count.
        "min_attainable_p": paired.min_attainable_p(int(np.count_nonzero(tested))) if n else 1.0,
    }


def analyse(
    variants: Mapping[str, Any],
    contrasts: Sequence[Mapping[str, Any]],
    alpha: float = paired.ALPHA,
    metrics: Sequence[str] = CONTRAST_METRICS,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The ``contrasts`` block of results/summary.json.

    ``variants`` is summary.json's per-variant blocks; ``contrasts`` the configured list of
    {a, b, role, label}. A contrast whose variant has no run here is listed under
    ``skipped`` with the reason, and is not part of the Holm family.
    """
    present: list[Mapping[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for spec in contrasts:
        missing = [v for v in (spec["a"], spec["b"]) if not variants.get(v, {}).get("runs")]
        if missing:
            skipped.append(
                {**_identity(spec), "reason": f"{' and '.join(missing)} not enabled in this study"}
            )
        else:
            present.append(spec)
    results = []
    for metric in metrics:
        rows = [
            {
                **_identity(spec),
                **compare_pair(
                    seed_values(variants[spec["a"]], metric),
                    seed_values(variants[spec["b"]], metric),
                    metric,
                    confidence,
                ),
            }
            for spec in present
        ]
        family = [row for row in rows if row["p"] is not None]
        adjusted = paired.holm([row["p"] for row in family])
        m = len(family)
        for row, p_adj in zip(family, adjusted, strict=True):
            row["p_adjusted"] = p_adj
        for row in rows:
            row.setdefault("p_adjusted", None)
            _power(row, m, alpha)
        results.extend(rows)
    return {
        "alpha": alpha,
        "primary_metric": PRIMARY_METRIC,
        "correction": "Holm, per metric, over the planned contrasts present in the study",
        "results": results,
        "skipped": skipped,
    }


def _identity(spec: Mapping[str, Any]) -> dict[str, Any]:
    a, b = str(spec["a"]), str(spec["b"])
    return {
        "name": f"{a}_vs_{b}",
        "a": a,
        "b": b,
        "role": str(spec.get("role", "secondary")),
        "label": str(spec.get("label") or f"{a} vs {b}"),
    }


def _power(row: dict[str, Any], family_size: int, alpha: float) -> None:
    """Add the honest-power fields: can n reach α (and α/m for Holm's first step), the MDE
    and the seeds needed to detect the observed Δ."""
    n = row["n"]
    m = max(family_size, 1)
    row["holm_family_size"] = family_size
    row["alpha"] = alpha
    row["can_reach_significance"] = row["min_attainable_p"] <= alpha
    row["can_reach_after_holm"] = row["min_attainable_p"] <= alpha / m
    # Power at the level the contrast must reach to be declared whatever the others show:
    # α/m, Holm's first step, for the test this contrast runs (reporting.power).
    level = alpha / m
    row["power_alpha"] = level
    row["power_method"] = power.power_method(n)
    row["mde"] = power.minimum_detectable_effect(row["sd_delta"], n, level)
    if row["mde"] is not None and math.isinf(row["mde"]):
        row["mde"] = None
        row["mde_note"] = f"the exact test cannot reach p ≤ {level:.3g} (α/m) with {n} seeds"
    # The power each number really has (at least POWER, up to the search's resolution).
    row["mde_power"] = (
        power.sign_flip_power(row["mde"] / row["sd_delta"], n, level)
        if row["mde"] is not None and row["sd_delta"]
        else None
    )
    row["seeds_needed"] = power.seeds_needed(row["mean_delta"], row["sd_delta"], level)
    row["seeds_needed_power"] = (
        None
        if row["seeds_needed"] is None
        else power.sign_flip_power(abs(row["mean_delta"]) / row["sd_delta"], row["seeds_needed"], level)
    )
    p_adj = row["p_adjusted"]
    row["significant"] = p_adj is not None and p_adj <= alpha
    improvement = row["improvement"]
    row["favours"] = None if not improvement else ("a" if improvement > 0 else "b")


def role_result(block: Mapping[str, Any], role: str) -> dict[str, Any] | None:
    """The first contrast of ``role`` on the primary metric, if it was computed."""
    metric = block.get("primary_metric", PRIMARY_METRIC)
    for row in block.get("results", []):
        if row["role"] == role and row["metric"] == metric:
            return dict(row)
    return None


def primary_result(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """The primary contrast on the primary metric, if it was computed."""
    return role_result(block, "primary")
