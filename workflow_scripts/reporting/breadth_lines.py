"""The headline's breadth line: which claim the answer makes, and how far it carries.

The pooled sign-flip test over every unit (series, fold, seed) answers "did the pretrained
encoder help on these series in these periods?". A reader who will use the model on a later
period or another instrument needs the random-effects estimates (:mod:`.breadth`), whose
intervals include the spread between periods or series. This line names the first claim,
lists the Δ per series and per fold, and gives the second where the study can estimate it, or
says why it cannot. Numbers come from the typed :class:`~.results.Breadth`; nothing is
computed here.
"""

from __future__ import annotations

from workflow_scripts.reporting.contrast_results import ContrastResult, GroupDelta
from workflow_scripts.reporting.formatting import fmt_p
from workflow_scripts.reporting.random_effects import MIN_GROUPS, RandomEffects
from workflow_scripts.reporting.results import StudyResult


def _delta(value: float | None) -> str:
    return "—" if value is None else f"{value:+.3g}"


def _groups(groups: list[GroupDelta]) -> str:
    return ", ".join(f"{group.name} {_delta(group.mean_delta)}" for group in groups)


def _count(n: int, noun: tuple[str, str]) -> str:
    """``1 fold``, ``3 folds``: ``noun`` is (singular, plural)."""
    return f"{n} {noun[0] if n == 1 else noun[1]}"


def estimate_text(
    estimate: RandomEffects | None, what: str, noun: tuple[str, str], count: int, seeds: int
) -> str:
    """One random-effects estimate in words, or why there is none."""
    if estimate is None:
        if count < 2:
            why = "a single group has no spread between groups to estimate"
        else:
            why = "one seed each: no group has a within-group variance" if seeds < 2 else "too few units"
        return f"No estimate for {what} ({_count(count, noun)}: {why})."
    text = (
        f"For {what} the random-effects estimate is Δ = {_delta(estimate.mean)} "
        f"(95% CI {_delta(estimate.ci_low)} to {_delta(estimate.ci_high)}; {_count(estimate.k, noun)}, "
        f"sd between them τ = {estimate.tau2**0.5:.3g}; {estimate.method})"
    )
    if not estimate.informative:
        return text + f"; with fewer than {MIN_GROUPS} {noun[1]} this interval is too wide to inform."
    return text + "."


def breadth_line(row: ContrastResult, study: StudyResult) -> str:
    """The claim the primary contrast's test makes, and what it predicts beyond these units."""
    breadth = row.breadth
    if breadth is None:
        return ""
    seeds = len(study.seeds)
    parts = [
        f"The test above is a claim about these {row.n} units ({len(study.series)} series × "
        f"{_count(study.folds, ('fold', 'folds'))} × {_count(seeds, ('seed', 'seeds'))}), pooled by the "
        f"{row.test} over all of them (p = {fmt_p(row.p)}, before Holm)."
    ]
    if len(breadth.series) > 1:
        parts.append(f"Δ per series: {_groups(breadth.series)}.")
    if len(breadth.folds) > 1:
        parts.append(f"Δ per fold: {_groups(breadth.folds)}.")
    cells = len(study.series) * study.folds
    noun = ("fold", "folds") if len(study.series) == 1 else ("series × fold cell", "series × fold cells")
    if study.folds == 1:
        parts.append("No estimate for a new period (one fold: each series has a single test period).")
    else:
        parts.append(estimate_text(breadth.new_period, "a new period", noun, cells, seeds))
    if len(study.series) > 1:
        parts.append(
            estimate_text(breadth.new_series, "a new series", ("series", "series"), len(study.series), seeds)
        )
    else:
        parts.append("With one series, the study says nothing about another instrument.")
    return " ".join(parts)
