"""The answer along the budget: the contrast curve, convergence per arm, the headline's qualifier."""

from __future__ import annotations

from dataclasses import replace

import pytest
import report_fixtures  # noqa: F401  (puts the repository on sys.path)
from study_builders import arm, run, study

from workflow_scripts.reporting.budget import arm_convergence
from workflow_scripts.reporting.conclusions import qualify, report_headline
from workflow_scripts.reporting.contrast_results import ContrastFamily
from workflow_scripts.reporting.results import BudgetResult, RunEntry, StudyResult
from workflow_scripts.reporting.sentences import NO, Headline, curve_phrase

SEEDS = range(8)
CONTRASTS = [{"a": "nofreeze", "b": "baseline", "role": "primary", "label": "transfer"}]


def _runs(skills: dict[int, float], gain: float, shift: float) -> list[RunEntry]:
    """8 seeds: a budget curve over steps 25..100 and a final test skill."""
    return [
        run(
            s,
            skills[100] + shift + 0.001 * s,
            budget_curve={step: value + shift + 0.001 * s for step, value in skills.items()},
            last_quarter_gain=gain,
            best_in_last_quarter=gain > 0,
        )
        for s in SEEDS
    ]


def _summary(gain_a: float, gain_b: float) -> StudyResult:
    """nofreeze behind baseline early (Δ −0.2 at 25 and 50 steps), level from 75 steps on."""
    base = {25: -0.5, 50: -0.3, 75: -0.2, 100: -0.1}
    a = _runs({25: -0.7, 50: -0.5, 75: -0.2, 100: -0.1}, gain_a, -0.03)
    for index, entry in enumerate(a):  # level late: alternate signs so no budget after 50 is significant
        sign = 1 if index % 2 else -1
        curve = {k: (v or 0.0) + (sign * 0.06 if k >= 75 else 0.0) for k, v in entry.budget_curve.items()}
        a[index] = replace(entry, budget_curve=curve)
    return study({"nofreeze": arm(a), "baseline": arm(_runs(base, gain_b, 0.0))}, CONTRASTS)


def test_the_contrast_curve_names_where_the_sign_is_significant_and_where_it_changes() -> None:
    summary = _summary(0.05, 0.05)
    points = summary.budget.contrasts[0].points
    assert [p.step for p in points] == [25, 50, 75, 100]
    assert [p.significant for p in points] == [True, True, False, False]
    assert points[0].mean_delta < 0 and points[0].ci_high < 0
    assert curve_phrase(points) == "behind at 25–50 steps, level at 75–100 steps"


def test_the_headline_carries_the_budget_when_a_primary_arm_has_not_converged() -> None:
    summary = _summary(0.05, 0.01)  # nofreeze still improving, baseline flat
    head = report_headline(summary)
    assert head.answer == f"{NO}, at 100 steps"
    assert "nofreeze has not converged" in head.budget and "early learning" in head.budget
    assert "behind at 25–50 steps, level at 75–100 steps" in head.budget


def test_the_headline_is_unqualified_when_both_primary_arms_converged() -> None:
    summary = _summary(0.01, 0.015)
    head = report_headline(summary)
    assert head.answer == NO
    assert "Both nofreeze and baseline converged" in head.budget


def test_an_arm_converges_only_when_every_seed_does() -> None:
    runs = [run(s, 0.1, last_quarter_gain=0.01) for s in SEEDS]
    assert arm_convergence(runs).converged is True
    runs[3] = replace(runs[3], last_quarter_gain=0.03)
    assert arm_convergence(runs).converged is False and arm_convergence(runs).n_converged == 7
    runs[3] = replace(runs[3], last_quarter_gain=None)  # a finished seed without a record cannot count
    assert arm_convergence(runs).converged is False
    empty = ContrastFamily(0.05, "test_skill", [], [])
    assert qualify(Headline(NO, ""), empty, BudgetResult([], {}, {}, 0.05)).answer == NO


def _offset_runs(shift: float, offsets: list[float], skip: dict[int, int] | None = None) -> list[RunEntry]:
    """Runs whose budget curve is a large per-seed offset plus ``shift``; ``skip`` = {seed: step}
    leaves that seed's point out at that step."""
    runs = []
    for seed, offset in enumerate(offsets):
        curve = {step: offset + shift + 0.001 * step for step in (50, 100)}
        if skip and seed in skip:
            del curve[skip[seed]]
        runs.append(run(seed, offset + shift, budget_curve=curve, last_quarter_gain=0.0))
    return runs


OFFSETS = [0.9, -0.7, 0.4, -1.1, 0.2, 0.8, -0.3, 1.2]


def test_the_budget_curve_is_paired_by_seed() -> None:
    """A Δ of −0.02 on every seed under per-seed offsets of ±1: only the paired Δ sees it. An
    unpaired comparison (a difference of means, or arms matched by rank) has an interval
    wider than the offsets and would not call it."""
    a = _offset_runs(-0.02, OFFSETS)
    b = _offset_runs(0.0, OFFSETS)
    point = study({"nofreeze": arm(a), "baseline": arm(b)}, CONTRASTS).budget.contrasts[0].points[0]
    assert point.mean_delta == pytest.approx(-0.02)
    assert point.significant and point.ci_high is not None and point.ci_high < 0
    assert point.ci_high - point.ci_low < 0.01  # the offsets cancel within each seed


def test_a_seed_missing_at_one_budget_is_left_out_of_that_budget_only() -> None:
    """nofreeze lacks seed 3 at step 100: that budget pairs the other 7 seeds, Δ stays −0.02
    (matching by rank would pair seed 4 with seed 3 and move Δ by a whole offset)."""
    a = _offset_runs(-0.02, OFFSETS, skip={3: 100})
    b = _offset_runs(0.0, OFFSETS)
    points = study({"nofreeze": arm(a), "baseline": arm(b)}, CONTRASTS).budget.contrasts[0].points
    assert [(p.step, p.n) for p in points] == [(50, 8), (100, 7)]
    assert points[1].mean_delta == pytest.approx(-0.02)
    assert points[1].significant
