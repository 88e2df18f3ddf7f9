"""Conclusions written from the numbers and their uncertainty, never by hand.

Every sentence comes from the planned paired contrasts in results/summary.json (an exact
sign-flip test on the per-unit (series, fold, seed) differences, Holm-adjusted across the planned contrasts;
see :mod:`workflow_scripts.reporting.contrasts`) or from the per-variant statistics. No
variant is ranked on overlapping or separate intervals: only a significant paired
contrast names a winner. All functions are pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from workflow_scripts.reporting.aggregate import variant_order
from workflow_scripts.reporting.breadth_lines import breadth_line
from workflow_scripts.reporting.contrast_results import ContrastFamily
from workflow_scripts.reporting.controls import control_summary, with_control_warning
from workflow_scripts.reporting.formatting import UNIT_WORDS, fmt_value
from workflow_scripts.reporting.measures import MAE_METRIC, PRIMARY_METRIC, SPEED_METRICS
from workflow_scripts.reporting.power import POWER, power_method
from workflow_scripts.reporting.results import BudgetResult, StudyResult
from workflow_scripts.reporting.runs import OK_STATUSES, RunRecord
from workflow_scripts.reporting.sentences import (
    Headline,
    budget_note,
    contrast_sentence,
    curve_phrase,
    headline,
    periods_line,
    second_metric_line,
    stats_text,
    variance_line,
)
from workflow_scripts.reporting.uninformative import split_contrasts

NOTHING_BEYOND_NAIVE = "learned nothing beyond naive"


@dataclass(frozen=True)
class Conclusion:
    """One topic of the conclusions section and its sentences."""

    topic: str
    text: str
    #: the same sentences one by one, when the topic lists several (shown as a list)
    items: tuple[str, ...] = ()


def planned_contrasts(family: ContrastFamily) -> Conclusion:
    """Every planned contrast on the primary metric, and which were skipped and why."""
    sentences = [contrast_sentence(r) for r in family.on(PRIMARY_METRIC)]
    for skipped in family.skipped:
        sentences.append(f"{skipped.label} ({skipped.a} vs {skipped.b}) skipped: {skipped.reason}.")
    return _listed("Planned contrasts (test skill)", sentences, "No planned contrast.")


def learning_speed(family: ContrastFamily) -> Conclusion:
    """The paired learning-speed contrasts (area under the val-loss curve, first step past naive).

    A contrast that carries no information is not a sentence here: the line under the contrast
    table says it once for all of them (:mod:`workflow_scripts.reporting.uninformative`)."""
    rows = split_contrasts(family.on(*SPEED_METRICS)).informative
    sentences = [contrast_sentence(r) for r in rows if r.role == "primary"]
    sentences += [contrast_sentence(r) for r in rows if r.role != "primary" and r.significant]
    return _listed("Learning speed", sentences, "No learning-speed contrast could be computed.")


def _listed(topic: str, sentences: Sequence[str], empty: str) -> Conclusion:
    """A topic made of several sentences: the joined text, and the sentences as a list."""
    return Conclusion(topic, " ".join(sentences) or empty, tuple(sentences) if len(sentences) > 1 else ())


def power_statement(family: ContrastFamily) -> Conclusion:
    """What this number of paired units can and cannot show for the primary contrast."""
    topic = "What this number of units can show"
    row = family.of_role("primary", PRIMARY_METRIC)
    if row is None:
        return Conclusion(topic, "The primary contrast was not computed.")
    n, m, alpha = row.n, row.holm_family_size, row.alpha
    parts = [
        f"With {n} paired units ({UNIT_WORDS}) the smallest attainable sign-flip p is "
        f"{row.min_attainable_p:.3g}; "
        f"Holm's first step over {m} contrast(s) needs p ≤ {alpha / max(m, 1):.3g}, so significance is "
        + ("reachable." if row.can_reach_after_holm else "NOT reachable whatever the numbers.")
    ]
    if row.mde is not None:
        parts.append(
            f"The minimum detectable effect ({_power_words(row.mde_power)} at α/m = "
            f"{row.power_alpha:.3g}, Holm's first step; {power_method(row.n)}; "
            f"observed sd of Δ {fmt_value(row.sd_delta)}) is {fmt_value(row.mde)}."
        )
    elif row.mde_unreachable:
        parts.append(
            f"No minimum detectable effect: the exact test cannot reach p ≤ {row.power_alpha:.3g} (α/m) "
            f"with {row.n} units."
        )
    if row.units_needed is not None:
        method = power_method(row.units_needed)
        parts.append(
            f"About {row.units_needed} units would detect the observed Δ at that level "
            f"({_power_words(row.units_needed_power)}; {method}), e.g. more seeds or folds."
        )
    return Conclusion(topic, " ".join(parts))


def _power_words(value: float | None) -> str:
    """The power a number really has, as the simulation measured it."""
    return f"power ≥ {POWER:g}" if value is None else f"power {value:.2f}"


def any_beats_naive(study: StudyResult) -> bool | None:
    """Whether some variant's mean test skill is above 0 (better than the strongest naive
    predictor); ``None`` when no variant has a test skill."""
    flags = [arm.beats_naive for arm in study.variants.values()]
    known = [f for f in flags if f is not None]
    return None if not known else any(known)


def naive_check(study: StudyResult) -> Conclusion:
    """Flag variants whose mean test skill is not above 0 (not better than naive)."""
    topic = "Comparison with naive baselines"
    sentences = []
    clear: list[str] = []
    for name in variant_order(study.variants):
        stats = study.variants[name].metrics[PRIMARY_METRIC]
        if stats.mean is None:
            continue
        if stats.mean <= 0:
            sentences.append(
                f"{name} {NOTHING_BEYOND_NAIVE}: its test skill {stats_text(stats)} is not above 0 "
                "(0 = the strongest naive predictor)."
            )
        elif stats.ci_low is None or stats.ci_low <= 0:
            sentences.append(
                f"{name} beats the strongest naive predictor on the mean only: test skill "
                f"{stats_text(stats)} does not rule out 0."
            )
        else:
            clear.append(name)
    if clear:
        names = ", ".join(clear)
        sentences.insert(0, f"{names}: test skill above 0 with the whole 95% confidence interval.")
    return _listed(topic, sentences, "No variant has a test skill to compare with naive.")


def run_health(runs: Sequence[RunRecord]) -> Conclusion:
    """Say which runs are missing from the statistics, so a reader knows what N means."""
    topic = "Runs"
    bad = [r for r in runs if r.status not in OK_STATUSES]
    if not runs:
        return Conclusion(topic, "No runs were found.")
    if not bad:
        return Conclusion(topic, f"All {len(runs)} planned runs finished; every statistic uses all units.")
    listed = "; ".join(
        f"{r.variant} {r.unit.label} ({r.status}" + (f": {r.reason}" if r.reason else "") + ")" for r in bad
    )
    return Conclusion(
        topic,
        f"{len(bad)} of {len(runs)} planned runs did not finish: {listed}. Their numbers are absent "
        "(not zero); each variant's statistics use only its finished units.",
    )


def write_conclusions(study: StudyResult, runs: Sequence[RunRecord] = ()) -> list[Conclusion]:
    """All conclusion topics, in the order the study asks its questions."""
    return [
        planned_contrasts(study.contrasts),
        power_statement(study.contrasts),
        learning_speed(study.contrasts),
        naive_check(study),
        run_health(runs),
    ]


def qualify(answer: Headline, family: ContrastFamily, budget: BudgetResult) -> Headline:
    """The headline with the budget it holds at, when a primary arm has not converged.

    "Yes"/"No" stand unqualified only when both primary arms converged; otherwise the answer
    reads "No, at 200 steps" and the text says so, with the contrast along the budget when
    there is one. A study without convergence records leaves the headline as it is.
    """
    row = family.of_role("primary")
    if row is None or not budget.convergence:
        return replace(answer, budget="")
    primary = budget.curve_of("primary")
    arms = (row.a, row.b)
    open_arms = [arm for arm in arms if not (arm in budget.convergence and budget.convergence[arm].converged)]
    steps = primary.points[-1].step if primary else None
    along = f" Along the run, {row.a} vs {row.b}: {curve_phrase(primary.points)}." if primary else ""
    at = f"at {steps:,} steps" if steps else "at this budget"
    note = budget_note(arms, open_arms, at, along)
    if not open_arms:
        return replace(answer, budget=note)
    return replace(answer, answer=f"{answer.answer}, {at}", budget=note)


def report_headline(study: StudyResult) -> Headline:
    """The answer the report opens with (see :func:`sentences.headline`), with the positive
    control's warning when it was not detected and the false-alarm warning when the A/A
    control was declared (:mod:`workflow_scripts.reporting.controls`), and the budget it
    holds at (:func:`qualify`)."""
    family = study.contrasts
    controls = control_summary(family)
    primary = family.of_role("primary")
    answer = with_control_warning(
        headline(primary, family.skipped_of("primary"), any_beats_naive(study)),
        controls.status,
        controls.false_alarm,
    )
    if primary is not None:
        answer = replace(
            answer,
            variance=variance_line(primary, study.n_draws),
            periods=periods_line(primary),
            second_metric=second_metric_line(primary, family.of_role("primary", MAE_METRIC)),
            breadth=breadth_line(primary, study),
        )
    return qualify(answer, family, study.budget)
