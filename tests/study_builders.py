"""Hand-made typed study results for the reporting tests: runs from per-seed values, arms and
studies through the very functions collect uses (``aggregate.arm_result``, ``study_result``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workflow_scripts.reporting.aggregate import arm_result, study_result
from workflow_scripts.reporting.results import ArmResult, RunEntry, StudyResult

#: The one series of the hand-made studies (a unit is (series, fold, seed); see results.Unit).
SERIES = "s"


def run(
    seed: int, test_skill: float | None, *, series: str = SERIES, fold: int = 0, **fields: Any
) -> RunEntry:
    """A finished run (``failed`` when its test skill is None) of unit (series, fold, seed) with
    the given metric fields."""
    status = "completed" if test_skill is not None else "failed"
    return RunEntry(
        series=series, fold=fold, seed=seed, status=status, reason="", test_skill=test_skill, **fields
    )


def arm(runs: Sequence[RunEntry]) -> ArmResult:
    """An arm over ``runs``, its statistics computed as collect computes them."""
    return arm_result(sorted(runs, key=lambda r: r.unit))


def skill_arm(
    values: Sequence[float | None],
    first_step: Sequence[Any] | None = None,
    mae: Sequence[float | None] | None = None,
) -> ArmResult:
    """An arm from per-seed test skills (None = a failed run), and on absolute errors ``mae``
    (none by default); auc = 1 − skill. Every run has converged (last-quarter gain 0), so a
    headline about it names no budget."""
    steps = first_step or [100] * len(values)
    maes = list(mae) if mae is not None else [None] * len(values)
    return arm(
        [
            run(
                s,
                v,
                auc_val_loss=None if v is None else 1.0 - v,
                first_step_beats_naive=steps[s],
                last_quarter_gain=0.0,
                test_skill_mae=maes[s],
            )
            for s, v in enumerate(values)
        ]
    )


def study(
    arms: Mapping[str, ArmResult], contrasts: Sequence[Mapping[str, Any]] = (), **kwargs: Any
) -> StudyResult:
    """A study of ``arms`` with the planned ``contrasts`` analysed as collect does."""
    return study_result(arms, contrasts, **kwargs)
