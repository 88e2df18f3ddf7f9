"""The answer along the run: paired contrasts at every scored budget, and convergence per arm.

Every run scores its current model on the test split at the steps of ``train.test_budgets``
(the *budget curve*; nothing is chosen on these scores). At each such step a contrast
``a vs b`` is the same paired comparison as the headline's: per-unit Δ test skill, its
mean with a Student-t 95% interval and the sign-flip p. These p are per budget and
unadjusted: the curve describes how the answer moves with training, while the headline's
Holm-adjusted test at the study's full budget is the confirmatory one.

**Convergence rule** (docs/report.md): a run has converged when its best validation loss
improved by less than ``run_contract.CONVERGED_GAIN`` (2%) over the last quarter of its epochs
(:func:`workflow_scripts.training.evaluation.convergence`); an arm has converged when every
finished run has. A comparison of arms that have not converged is about early learning:
the report's headline then names the budget it holds at (``conclusions.qualify``). These are
collect's numbers; every sentence about them is written at report time. All functions are pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workflow_scripts.reporting import paired
from workflow_scripts.reporting.contrasts import compare_pair
from workflow_scripts.reporting.results import (
    ArmBudgetPoint,
    ArmConvergence,
    ArmResult,
    BudgetCurve,
    BudgetPoint,
    BudgetResult,
    RunEntry,
)
from workflow_scripts.reporting.runs import OK_STATUSES
from workflow_scripts.reporting.stats import t_interval
from workflow_scripts.reporting.units import Unit
from workflow_scripts.training.run_contract import CONVERGED_GAIN

#: The contrasts drawn along the budget: the question, the controls that calibrate it, and the
#: other pretrainings (docs/models.md: "Which pretraining helps", at every budget).
CURVE_ROLES = ("primary", "positive_control", "encoder_control", "pretraining")


def run_points(runs: Sequence[RunEntry]) -> dict[int, dict[Unit, float]]:
    """{step: {unit: test skill}} of an arm's finished runs."""
    points: dict[int, dict[Unit, float]] = {}
    for run in runs:
        for step, value in run.budget_curve.items():
            if isinstance(value, int | float) and value == value:
                points.setdefault(int(step), {})[run.unit] = float(value)
    return points


def arm_curve(runs: Sequence[RunEntry]) -> list[ArmBudgetPoint]:
    """An arm's mean test skill at each budget with its Student-t 95% interval over units."""
    curve = []
    for step, by_unit in sorted(run_points(runs).items()):
        values = list(by_unit.values())
        low, high = t_interval(values)
        curve.append(ArmBudgetPoint(step, sum(values) / len(values), low, high, len(values)))
    return curve


def arm_convergence(runs: Sequence[RunEntry]) -> ArmConvergence:
    """Converged only when every finished run's last-quarter gain is below ``CONVERGED_GAIN``."""
    gains = [run.last_quarter_gain for run in runs if run.last_quarter_gain is not None]
    finished = sum(1 for run in runs if run.status in OK_STATUSES)
    return ArmConvergence(
        converged=bool(gains) and len(gains) == finished and max(gains) < CONVERGED_GAIN,
        n_runs=finished,
        n_converged=sum(1 for g in gains if g < CONVERGED_GAIN),
        max_last_quarter_gain=max(gains) if gains else None,
        mean_last_quarter_gain=sum(gains) / len(gains) if gains else None,
        best_in_last_quarter=sum(1 for run in runs if run.best_in_last_quarter),
    )


def contrast_curve(a_runs: Sequence[RunEntry], b_runs: Sequence[RunEntry]) -> list[BudgetPoint]:
    """Paired Δ test skill (a − b) at every budget both arms scored."""
    a_points, b_points = run_points(a_runs), run_points(b_runs)
    curve = []
    for step in sorted(set(a_points) & set(b_points)):
        row = compare_pair(a_points[step], b_points[step], "test_skill")
        if row.n == 0:
            continue
        significant = row.p is not None and row.p <= paired.ALPHA
        curve.append(BudgetPoint(step, row.n, row.mean_delta, row.ci_low, row.ci_high, row.p, significant))
    return curve


def budget_block(variants: Mapping[str, ArmResult], contrasts: Sequence[Mapping[str, Any]]) -> BudgetResult:
    """summary.json's ``budget``: the curve of each primary / control contrast and each arm's
    convergence."""
    curves = []
    for spec in contrasts:
        a, b = spec["a"], spec["b"]
        role = str(spec.get("role", "secondary"))
        if role not in CURVE_ROLES or a not in variants or b not in variants:
            continue
        points = contrast_curve(variants[a].runs, variants[b].runs)
        if points:
            curves.append(BudgetCurve(a, b, role, spec.get("label") or f"{a} vs {b}", points))
    return BudgetResult(
        contrasts=curves,
        arms={name: arm_curve(arm.runs) for name, arm in variants.items()},
        convergence={name: arm.convergence for name, arm in variants.items() if arm.convergence},
        alpha=paired.ALPHA,
    )
