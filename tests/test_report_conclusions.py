"""Conclusions come from the numbers: overlap -> "not distinguishable", a gap names the winner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import report_fixtures  # noqa: F401  (puts the repository on sys.path)

from workflow_scripts.reporting.conclusions import (
    NOTHING_BEYOND_NAIVE,
    Outcome,
    RunStatus,
    best_strategy,
    compare,
    fine_tuning_value,
    naive_check,
    pretrained_effect,
    run_health,
    write_conclusions,
)
from workflow_scripts.reporting.stats import describe

NAIVE = ("linear_interpolation", 0.05)


def outcomes(table: Mapping[str, Sequence[float | None]]) -> dict[str, Outcome]:
    """Hand-made per-seed best val_correlation -> the conclusions' inputs."""
    return {
        name: Outcome(name, describe(values), n_runs=len(values), naive=NAIVE)
        for name, values in table.items()
    }


def test_overlapping_intervals_are_not_distinguishable() -> None:
    data = outcomes({"frozen_all": [0.20, 0.30, 0.25], "baseline": [0.22, 0.28, 0.24]})
    text = pretrained_effect(data).text
    assert "not distinguishable with 3 seeds" in text
    assert "ahead of" not in text


def test_clear_gap_names_the_winner() -> None:
    data = outcomes({"frozen_all": [0.40, 0.41, 0.42], "baseline": [0.10, 0.11, 0.12]})
    result = compare("frozen_all", data["frozen_all"], "baseline", data["baseline"])
    assert result.verdict == "better"
    assert result.text.startswith("frozen_all is ahead of baseline")
    reverse = compare("baseline", data["baseline"], "frozen_all", data["frozen_all"])
    assert reverse.verdict == "worse" and reverse.text.startswith("frozen_all is ahead of baseline")
    assert "pretrained representations help" in pretrained_effect(data).text


def test_fine_tuning_and_best_strategy() -> None:
    data = outcomes(
        {
            "baseline": [0.10, 0.11, 0.12],
            "frozen_all": [0.20, 0.21, 0.22],
            "freeze": [0.50, 0.51, 0.52],
            "nofreeze": [0.19, 0.22, 0.24],
        }
    )
    text = fine_tuning_value(data).text
    assert "freeze is ahead of frozen_all" in text
    assert "nofreeze 0.217 (95% CI" in text and "not distinguishable with 3 seeds" in text
    best = best_strategy(data).text
    assert best.startswith("freeze has the highest mean")
    assert "is the best strategy" in best


def test_best_strategy_with_a_tie_names_no_winner() -> None:
    data = outcomes(
        {"freeze": [0.40, 0.45, 0.50], "nofreeze": [0.41, 0.44, 0.47], "baseline": [0.0, 0.01, 0.02]}
    )
    text = best_strategy(data).text
    assert "not distinguishable with 3 seeds" in text
    assert "no single best strategy" in text
    assert "clearly ahead of baseline" in text


def test_single_seed_cannot_separate() -> None:
    data = outcomes({"frozen_all": [0.9], "baseline": [0.1]})
    text = pretrained_effect(data).text
    assert "not distinguishable with 1 seed" in text
    assert "no confidence interval" in text


def test_naive_flag() -> None:
    data = outcomes(
        {"baseline": [0.01, 0.02, 0.03], "freeze": [0.40, 0.41, 0.42], "nofreeze": [0.02, 0.08, 0.1]}
    )
    text = naive_check(data).text
    assert f"baseline {NOTHING_BEYOND_NAIVE}" in text
    assert "freeze beats the best naive baseline" in text
    assert "nofreeze beats the best naive baseline (linear_interpolation, 0.050) on the mean only" in text


def test_absent_and_failed_variants_are_handled() -> None:
    data = outcomes({"frozen_all": [0.3, 0.31], "baseline": [None, None]})
    text = pretrained_effect(data).text
    assert "frozen_all vs baseline cannot be assessed: baseline has no successful run" in text
    text = fine_tuning_value(data).text
    assert "freeze is not part of this experiment" in text
    assert "nofreeze is not part of this experiment" in text
    assert "only variant with a value to compare" in best_strategy(data).text
    empty = write_conclusions({}, [])
    assert all(c.text for c in empty)
    assert "No variant has a finished run" in best_strategy({}).text
    finished_without_value = {
        "frozen_all": Outcome("frozen_all", describe([0.3, 0.31]), 2, NAIVE, n_ok=2),
        "baseline": Outcome("baseline", describe([None, None]), 2, NAIVE, n_ok=2),
    }
    text = pretrained_effect(finished_without_value).text
    assert "baseline's 2 finished run(s) reported no finite best validation correlation" in text


def test_run_health_lists_failures() -> None:
    runs = [
        RunStatus("baseline", 0, "completed"),
        RunStatus("baseline", 1, "failed", "run reported status 'failed': CUDA OOM"),
        RunStatus("freeze", 0, "missing", "no summary"),
    ]
    text = run_health(runs).text
    assert "2 of 3 planned runs did not finish" in text
    assert "baseline seed 1 (failed: run reported status 'failed': CUDA OOM)" in text
    assert "freeze seed 0 (missing" in text
    assert "All 1 planned runs finished" in run_health(runs[:1]).text


def test_every_conclusion_is_generated_text() -> None:
    data = outcomes(
        {
            "baseline": [0.10, 0.11],
            "frozen_all": [0.20, 0.21],
            "freeze": [0.50, 0.51],
            "nofreeze": [0.3, 0.6],
        }
    )
    result = write_conclusions(data, [RunStatus(n, s, "completed") for n in data for s in (0, 1)])
    assert [c.topic for c in result] == [
        "Pure effect of pretrained representations",
        "Added value of fine-tuning",
        "Best adaptation strategy",
        "Comparison with naive baselines",
        "Runs",
    ]
    for conclusion in result:
        assert conclusion.text and "fill in" not in conclusion.text.lower() and "[" not in conclusion.text
