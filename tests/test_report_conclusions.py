"""Conclusions and the headline come from the paired contrasts, tested on hand-made summaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import report_fixtures  # noqa: F401  (puts the repository on sys.path)
from study_builders import skill_arm, study

from workflow_scripts.reporting.conclusions import (
    NOTHING_BEYOND_NAIVE,
    naive_check,
    report_headline,
    run_health,
    write_conclusions,
)
from workflow_scripts.reporting.results import StudyResult
from workflow_scripts.reporting.runs import RunRecord as RunStatus
from workflow_scripts.reporting.sentences import CANNOT_TELL, NO, YES

PRIMARY = [{"a": "nofreeze", "b": "baseline", "role": "primary", "label": "transfer effect"}]
FAMILY = [
    *PRIMARY,
    {"a": "frozen_all", "b": "frozen_random", "role": "secondary", "label": "representations"},
    {"a": "freeze", "b": "nofreeze", "role": "secondary", "label": "freeze schedule"},
]


def hand_summary(
    table: Mapping[str, Sequence[float | None]],
    contrasts: Sequence[Mapping[str, Any]] = PRIMARY,
    first_step: Mapping[str, Sequence[int | str | None]] | None = None,
) -> StudyResult:
    """A study built from per-seed test skills (None = failed run)."""
    arms = {name: skill_arm(values, (first_step or {}).get(name)) for name, values in table.items()}
    return study(arms, contrasts)


TEN = [0.10, 0.12, 0.08, 0.11, 0.09, 0.13, 0.10, 0.12, 0.11, 0.09]


def test_yes_only_when_significant_after_holm_and_favouring_pretrained() -> None:
    better = hand_summary({"nofreeze": [v + 0.05 for v in TEN], "baseline": TEN})
    head = report_headline(better)
    assert head.answer == YES and "nofreeze beats baseline" in head.text and not head.caveat
    worse = hand_summary({"nofreeze": [v - 0.05 for v in TEN], "baseline": TEN})
    assert report_headline(worse).answer == NO
    noise = hand_summary(
        {"nofreeze": [0.1, 0.2, 0.05, 0.15, 0.1, 0.12, 0.08, 0.11, 0.14, 0.07], "baseline": TEN}
    )
    assert report_headline(noise).answer == CANNOT_TELL


def test_holm_can_turn_a_raw_hit_into_cannot_tell() -> None:
    # 6 seeds, all Δ > 0: raw p = 2/64 = 0.031 < 0.05, but Holm over 3 contrasts needs 0.0167
    six = TEN[:6]
    table = {
        "nofreeze": [v + 0.05 for v in six],
        "baseline": six,
        "frozen_all": six,
        "frozen_random": six,
        "freeze": six,
    }
    summary = hand_summary(table, FAMILY)
    row = next(r for r in summary.contrasts.results if r.role == "primary" and r.metric == "test_skill")
    assert row.p < 0.05 and row.p_adjusted > 0.05 and not row.can_reach_after_holm
    head = report_headline(summary)
    assert head.answer == CANNOT_TELL and "no result could be significant" in head.text
    alone = hand_summary({"nofreeze": [v + 0.05 for v in six], "baseline": six})
    assert report_headline(alone).answer == YES


def test_three_seeds_cannot_reach_significance_whatever_the_numbers() -> None:
    summary = hand_summary({"nofreeze": [0.9, 0.91, 0.92], "baseline": [0.1, 0.11, 0.12]})
    head = report_headline(summary)
    assert head.answer == CANNOT_TELL
    assert "smallest attainable p is 0.25" in head.text
    topics = {c.topic: c.text for c in write_conclusions(summary)}
    assert "NOT reachable whatever the numbers" in topics["What this number of units can show"]


def test_caveat_when_no_variant_beats_naive() -> None:
    summary = hand_summary({"nofreeze": [-v for v in TEN], "baseline": [-v - 0.05 for v in TEN]})
    head = report_headline(summary)
    assert head.answer == YES and "no variant beats the strongest naive predictor" in head.caveat
    assert NOTHING_BEYOND_NAIVE in naive_check(summary).text


def test_skipped_contrast_is_reported_and_not_in_the_family() -> None:
    summary = hand_summary({"nofreeze": TEN, "baseline": TEN}, FAMILY)
    block = summary.contrasts
    assert {s.a for s in block.skipped} == {"frozen_all", "freeze"}
    assert all(r.holm_family_size == 1 for r in block.results if r.n)  # (MAE: no values here)
    text = write_conclusions(summary)[0].text
    assert "skipped: frozen_all and frozen_random not enabled in this study" in text
    missing = hand_summary({"baseline": TEN})
    assert report_headline(missing).answer == CANNOT_TELL


def test_censored_first_step_never_is_worst_and_lower_is_better() -> None:
    steps: dict[str, list[int | str | None]] = {"nofreeze": [10] * 10, "baseline": ["never"] * 10}
    summary = hand_summary({"nofreeze": TEN, "baseline": TEN}, PRIMARY, steps)
    row = next(r for r in summary.contrasts.results if r.metric == "first_step_beats_naive")
    assert row.direction == "lower" and row.mean_delta is None and row.deltas == [None] * 10
    assert row.b_values == ["never"] * 10 and "pooled ranks" in row.test
    assert row.significant and row.favours == "a"  # nofreeze reaches naive, baseline never does
    assert row.prob_improvement == 1.0 and row.paired_share == 1.0
    auc = next(r for r in summary.contrasts.results if r.metric == "auc_val_loss")
    assert auc.direction == "lower" and auc.mean_delta == 0.0 and not auc.significant


def test_run_health_lists_failed_runs() -> None:
    runs = [
        RunStatus("baseline", "s", 0, 0, "completed"),
        RunStatus("baseline", "s", 0, 1, "failed", "CUDA out of memory"),
    ]
    text = run_health(runs).text
    assert "1 of 2 planned runs did not finish" in text and "CUDA out of memory" in text
    assert "baseline s fold 0 seed 1 (failed" in text  # the run named by its unit
    assert "All 1 planned runs finished" in run_health(runs[:1]).text


def test_power_sentences_state_the_power_of_the_test_that_runs() -> None:
    """The MDE and units-needed sentences give the exact test's simulated power, not a formula's 80%."""
    from workflow_scripts.reporting import power

    noisy = [0.1, 0.2, 0.05, 0.15, 0.1, 0.12, 0.08, 0.11, 0.14, 0.07]
    summary = hand_summary({"nofreeze": noisy, "baseline": TEN})
    row = next(r for r in summary.contrasts.results if r.role == "primary" and r.metric == "test_skill")
    assert power.power_method(row.n) == power.SIMULATED and 0.8 <= row.mde_power < 0.81
    effect = abs(row.mean_delta) / row.sd_delta
    assert row.units_needed == power.units_needed(row.mean_delta, row.sd_delta)
    assert row.units_needed_power == power.sign_flip_power(effect, row.units_needed) >= 0.8
    text = {c.topic: c.text for c in write_conclusions(summary)}["What this number of units can show"]
    mde = f"{row.mde:.3f}"
    assert (
        f"The minimum detectable effect (power {row.mde_power:.2f} at α/m = 0.05, Holm's first step; "
        f"{power.SIMULATED}; observed sd of Δ" in text
    )
    assert f") is {mde}." in text
    method = power.power_method(row.units_needed)
    assert (
        f"About {row.units_needed} units would detect the observed Δ at that level "
        f"(power {row.units_needed_power:.2f}; {method}), e.g. more seeds or folds." in text
    )
    assert "80% power" not in text and "noncentral-t approximation" not in text
