"""The answer along the run: paired contrasts at every scored budget, and convergence per arm.

Every run scores its current model on the test split at the steps of ``train.test_budgets``
(the *budget curve*; nothing is chosen on these scores). At each such step a contrast
``a vs b`` is the same paired comparison as the headline's: per-seed Δ test skill, its
mean with a Student-t 95% interval and the exact sign-flip p. These p are per budget and
unadjusted: the curve describes how the answer moves with training, while the headline's
Holm-adjusted test at the study's full budget is the confirmatory one.

**Convergence rule** (docs/report.md): a run has converged when its best validation loss
improved by less than ``CONVERGED_GAIN`` (2%) over the last quarter of its epochs
(:func:`workflow_scripts.training.evaluation.convergence`); an arm has converged when every
finished seed has. A comparison of arms that have not converged is about early learning:
the headline then names the budget it holds at. All functions are pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workflow_scripts.reporting import paired
from workflow_scripts.reporting.contrasts import compare_pair, primary_result
from workflow_scripts.reporting.sentences import budget_note, curve_phrase
from workflow_scripts.reporting.stats import t_interval

#: Share of the last quarter's relative validation-loss gain below which a run converged
#: (the same constant as the runs' own flag; repeated here because reporting runs without torch).
CONVERGED_GAIN = 0.02

#: The contrasts drawn along the budget: the question and the controls that calibrate it.
CURVE_ROLES = ("primary", "positive_control", "encoder_control")


def run_points(runs: Sequence[Mapping[str, Any]]) -> dict[int, dict[int, float]]:
    """{step: {seed: test skill}} of an arm's finished runs (summary.json ``runs`` entries)."""
    points: dict[int, dict[int, float]] = {}
    for run in runs:
        for step, value in (run.get("budget_curve") or {}).items():
            if isinstance(value, int | float) and value == value:
                points.setdefault(int(step), {})[int(run["seed"])] = float(value)
    return points


def arm_curve(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """An arm's mean test skill at each budget with its Student-t 95% interval over seeds."""
    curve = []
    for step, by_seed in sorted(run_points(runs).items()):
        values = list(by_seed.values())
        low, high = t_interval(values)
        curve.append(
            {
                "step": step,
                "mean": sum(values) / len(values),
                "ci_low": low,
                "ci_high": high,
                "n": len(values),
            }
        )
    return curve


def arm_convergence(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Converged only when every finished seed's last-quarter gain is below the rule's 2%."""
    gains = [run["last_quarter_gain"] for run in runs if run.get("last_quarter_gain") is not None]
    late = sum(1 for run in runs if run.get("best_in_last_quarter"))
    finished = sum(1 for run in runs if run.get("status") in ("completed", "early_stopped"))
    return {
        "converged": bool(gains) and len(gains) == finished and max(gains) < CONVERGED_GAIN,
        "n_seeds": finished,
        "n_converged": sum(1 for g in gains if g < CONVERGED_GAIN),
        "max_last_quarter_gain": max(gains) if gains else None,
        "mean_last_quarter_gain": sum(gains) / len(gains) if gains else None,
        "best_in_last_quarter": late,
        "rule": f"every seed's last-quarter validation-loss gain < {CONVERGED_GAIN:.0%}",
    }


def contrast_curve(
    a_runs: Sequence[Mapping[str, Any]], b_runs: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Paired Δ test skill (a − b) at every budget both arms scored."""
    a_points, b_points = run_points(a_runs), run_points(b_runs)
    curve = []
    for step in sorted(set(a_points) & set(b_points)):
        row = compare_pair(a_points[step], b_points[step], "test_skill")
        if row["n"] == 0:
            continue
        curve.append(
            {
                "step": step,
                "n": row["n"],
                "mean_delta": row["mean_delta"],
                "ci_low": row["ci_low"],
                "ci_high": row["ci_high"],
                "p": row["p"],
                "significant": row["p"] is not None and row["p"] <= paired.ALPHA,
            }
        )
    return curve


def budget_block(variants: Mapping[str, Any], contrasts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """summary.json's ``budget``: the curve of each primary / control contrast and each arm's
    convergence."""
    curves = []
    for spec in contrasts:
        a, b = spec["a"], spec["b"]
        role = str(spec.get("role", "secondary"))
        if role not in CURVE_ROLES or a not in variants or b not in variants:
            continue
        points = contrast_curve(variants[a]["runs"], variants[b]["runs"])
        if points:
            curves.append(
                {"a": a, "b": b, "role": role, "label": spec.get("label") or f"{a} vs {b}", "points": points}
            )
    return {
        "contrasts": curves,
        "arms": {name: arm_curve(block["runs"]) for name, block in variants.items()},
        "convergence": {name: block["convergence"] for name, block in variants.items()},
        "alpha": paired.ALPHA,
        "tests": "exact sign-flip per budget, unadjusted (descriptive); the headline's test is Holm-adjusted",
    }


def qualify(headline: dict[str, str], block: Mapping[str, Any], budget: Mapping[str, Any]) -> dict[str, str]:
    """The headline with the budget it holds at, when a primary arm has not converged.

    ``block`` is summary.json's ``contrasts``; ``budget`` its ``budget``. "Yes"/"No" stand
    unqualified only when both primary arms converged; otherwise the answer reads "No, at
    200 steps" and the text says so, with the contrast along the budget when there is one.
    A summary without convergence records (written by hand, or before the budget curve)
    leaves the headline as it is.
    """
    primary = next((c for c in budget.get("contrasts", []) if c["role"] == "primary"), None)
    row = primary_result(block)
    if row is None or not budget.get("convergence"):
        return {**headline, "budget": ""}
    convergence = budget.get("convergence", {})
    arms = (row["a"], row["b"])
    open_arms = [arm for arm in arms if not (convergence.get(arm) or {}).get("converged")]
    steps = primary["points"][-1]["step"] if primary else None
    along = f" Along the run, {row['a']} vs {row['b']}: {curve_phrase(primary['points'])}." if primary else ""
    at = f"at {steps:,} steps" if steps else "at this budget"
    note = budget_note(arms, open_arms, at, along)
    if not open_arms:
        return {**headline, "budget": note}
    return {**headline, "answer": f"{headline['answer']}, {at}", "budget": note}
