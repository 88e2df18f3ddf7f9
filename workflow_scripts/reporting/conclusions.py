"""Conclusions written from the numbers and their uncertainty, never by hand.

The original study left "[fill in the analysis by hand]" and compared single runs whose
difference was within noise. Every sentence here is derived from per-variant statistics:
two variants are only ranked when their 95% confidence intervals do not overlap; otherwise
the sentence says they are "not distinguishable with N seeds". All functions are pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workflow_scripts.reporting.aggregate import PRIMARY_METRIC, variant_order
from workflow_scripts.reporting.formatting import fmt_stats_sentence, fmt_value, seeds_phrase
from workflow_scripts.reporting.stats import SummaryStats, intervals_overlap

METRIC_LABEL = "best validation correlation"
NOTHING_BEYOND_NAIVE = "learned nothing beyond naive"

Verdict = Literal["better", "worse", "indistinguishable", "unavailable"]


@dataclass(frozen=True)
class Outcome:
    """What the conclusions need to know about one variant.

    ``stats`` describes the primary metric (higher is better) over the finished seeds;
    ``naive`` is the best naive baseline's (name, correlation) on the same windows.
    """

    name: str
    stats: SummaryStats
    n_runs: int
    naive: tuple[str, float] | None = None
    n_ok: int | None = None


@dataclass(frozen=True)
class Comparison:
    """``a`` relative to ``b``: the verdict and the sentence that states it with its numbers."""

    verdict: Verdict
    text: str


@dataclass(frozen=True)
class Conclusion:
    """One topic of the conclusions section and its sentences."""

    topic: str
    text: str


@dataclass(frozen=True)
class RunStatus:
    """A run that is listed in the conclusions when it did not finish."""

    variant: str
    seed: int
    status: str
    reason: str = ""


def _unavailable_reason(name: str, outcome: Outcome | None) -> str | None:
    if outcome is None:
        return f"{name} is not part of this experiment"
    if outcome.stats.n > 0:
        return None
    if outcome.n_ok:
        return (
            f"{name}'s {outcome.n_ok} finished run(s) reported no finite {METRIC_LABEL} "
            "(a constant prediction, for example, has no defined correlation)"
        )
    return f"{name} has no successful run ({outcome.n_runs} planned run(s) failed or are missing)"


def compare(a_name: str, a: Outcome | None, b_name: str, b: Outcome | None) -> Comparison:
    """Rank ``a`` against ``b`` only when their confidence intervals are separate."""
    reason = _unavailable_reason(a_name, a) or _unavailable_reason(b_name, b)
    if reason is not None or a is None or b is None:
        return Comparison("unavailable", f"{a_name} vs {b_name} cannot be assessed: {reason}.")
    seeds = seeds_phrase(a.stats.n, b.stats.n)
    numbers = f"{a_name} {fmt_stats_sentence(a.stats)} vs {b_name} {fmt_stats_sentence(b.stats)}"
    if not (a.stats.has_ci and b.stats.has_ci):
        return Comparison(
            "indistinguishable",
            f"{numbers}: not distinguishable with {seeds} (a single seed gives no confidence interval).",
        )
    if intervals_overlap(a.stats, b.stats):
        return Comparison(
            "indistinguishable",
            f"{numbers}: not distinguishable with {seeds} (the 95% confidence intervals overlap).",
        )
    a_mean, b_mean = _mean(a), _mean(b)
    winner, loser = (a_name, b_name) if a_mean > b_mean else (b_name, a_name)
    verdict: Verdict = "better" if a_mean > b_mean else "worse"
    return Comparison(
        verdict,
        f"{winner} is ahead of {loser} on {METRIC_LABEL}: {numbers}; the 95% confidence "
        "intervals do not overlap.",
    )


def pretrained_effect(outcomes: Mapping[str, Outcome]) -> Conclusion:
    """frozen_all vs baseline: pretrained features that are never trained, against a
    randomly initialised encoder of the same architecture."""
    comparison = compare("frozen_all", outcomes.get("frozen_all"), "baseline", outcomes.get("baseline"))
    meaning = {
        "better": "The pretrained representations help on their own, without any fine-tuning.",
        "worse": "Frozen pretrained representations do worse than training the same architecture "
        "from random initialisation.",
        "indistinguishable": "No effect of the pretrained representations can be shown at this "
        "number of seeds.",
        "unavailable": "",
    }[comparison.verdict]
    return Conclusion("Pure effect of pretrained representations", _join(comparison.text, meaning))


def fine_tuning_value(outcomes: Mapping[str, Outcome]) -> Conclusion:
    """freeze and nofreeze vs frozen_all: what training the pretrained encoder adds."""
    sentences = []
    for name in ("freeze", "nofreeze"):
        comparison = compare(name, outcomes.get(name), "frozen_all", outcomes.get("frozen_all"))
        meaning = {
            "better": f"Fine-tuning the encoder ({name}) adds value over keeping it frozen.",
            "worse": f"Fine-tuning the encoder ({name}) hurts compared with keeping it frozen.",
            "indistinguishable": f"No added value of fine-tuning ({name}) can be shown.",
            "unavailable": "",
        }[comparison.verdict]
        sentences.append(_join(comparison.text, meaning))
    return Conclusion("Added value of fine-tuning", " ".join(sentences))


def best_strategy(outcomes: Mapping[str, Outcome]) -> Conclusion:
    """The variant with the highest mean, and which rivals it is (not) clearly ahead of."""
    topic = "Best adaptation strategy"
    ranked = sorted(
        (o for o in outcomes.values() if o.stats.mean is not None),
        key=lambda o: (-_mean(o), o.name),
    )
    if not ranked:
        return Conclusion(
            topic,
            f"No variant has a finished run with a finite {METRIC_LABEL}, so no strategy can be recommended.",
        )
    leader = ranked[0]
    lead = f"{leader.name} has the highest mean {METRIC_LABEL}: {fmt_stats_sentence(leader.stats)}."
    if len(ranked) == 1:
        return Conclusion(topic, f"{lead} It is the only variant with a value to compare.")
    ahead = [o for o in ranked[1:] if compare(leader.name, leader, o.name, o).verdict == "better"]
    tied = [o for o in ranked[1:] if o not in ahead]
    if not tied:
        return Conclusion(
            topic,
            f"{lead} Its 95% confidence interval lies above those of {_names(ahead)}, so {leader.name} "
            "is the best strategy in this experiment.",
        )
    tied_text = ", ".join(
        f"{o.name} ({fmt_value(o.stats.mean)}, "
        f"not distinguishable with {seeds_phrase(leader.stats.n, o.stats.n)})"
        for o in tied
    )
    tail = f" It is clearly ahead of {_names(ahead)}." if ahead else ""
    return Conclusion(
        topic,
        f"{lead}{tail} It cannot be separated from {tied_text}, so no single best strategy can be "
        "named; more seeds would be needed.",
    )


def naive_check(outcomes: Mapping[str, Outcome]) -> Conclusion:
    """Flag variants whose correlation does not beat the best naive baseline."""
    topic = "Comparison with naive baselines"
    sentences = []
    clear: list[str] = []
    for name in variant_order(outcomes):
        outcome = outcomes[name]
        if outcome.stats.mean is None:
            continue
        if outcome.naive is None:
            sentences.append(f"{name} has no naive baseline to compare with.")
            continue
        naive_name, naive_value = outcome.naive
        bar = f"the best naive baseline ({naive_name}, {fmt_value(naive_value)})"
        if outcome.stats.mean <= naive_value:
            sentences.append(
                f"{name} {NOTHING_BEYOND_NAIVE}: its {METRIC_LABEL} "
                f"{fmt_stats_sentence(outcome.stats)} does not exceed {bar}."
            )
        elif outcome.stats.ci_low is None or outcome.stats.ci_low <= naive_value:
            sentences.append(
                f"{name} beats {bar} on the mean only: its {METRIC_LABEL} "
                f"{fmt_stats_sentence(outcome.stats)} does not rule out the naive level, so the margin "
                "is within noise."
            )
        else:
            clear.append(name)
    if clear:
        verb = "beats" if len(clear) == 1 else "beat"
        sentences.insert(
            0,
            f"{_names(clear)} {verb} the best naive baseline with the whole 95% confidence "
            "interval above it.",
        )
    if not sentences:
        sentences.append("No variant has a finite value to compare with the naive baselines.")
    return Conclusion(topic, " ".join(sentences))


def run_health(runs: Sequence[RunStatus]) -> Conclusion:
    """Say which runs are missing from the statistics, so a reader knows what N means."""
    topic = "Runs"
    bad = [r for r in runs if r.status not in ("completed", "early_stopped")]
    if not runs:
        return Conclusion(topic, "No runs were found.")
    if not bad:
        return Conclusion(topic, f"All {len(runs)} planned runs finished; every statistic uses all seeds.")
    listed = "; ".join(
        f"{r.variant} seed {r.seed} ({r.status}" + (f": {r.reason}" if r.reason else "") + ")" for r in bad
    )
    return Conclusion(
        topic,
        f"{len(bad)} of {len(runs)} planned runs did not finish: {listed}. Their numbers are absent "
        "(not zero); each variant's statistics use only its finished seeds.",
    )


def write_conclusions(outcomes: Mapping[str, Outcome], runs: Sequence[RunStatus] = ()) -> list[Conclusion]:
    """All conclusion topics, in the order the study asks its questions."""
    return [
        pretrained_effect(outcomes),
        fine_tuning_value(outcomes),
        best_strategy(outcomes),
        naive_check(outcomes),
        run_health(runs),
    ]


def outcomes_from_summary(summary: Mapping[str, Any], metric: str = PRIMARY_METRIC) -> dict[str, Outcome]:
    """Rebuild the conclusions' inputs from results/summary.json."""
    outcomes = {}
    for name, block in summary["variants"].items():
        best = block.get("best_naive")
        naive = None if not best else (str(best["name"]), float(best["val_correlation"]))
        outcomes[name] = Outcome(
            name=name,
            stats=SummaryStats.from_dict(block["metrics"][metric]),
            n_runs=int(block["n_runs"]),
            naive=naive,
            n_ok=int(block["n_ok"]),
        )
    return outcomes


def _mean(outcome: Outcome) -> float:
    """The mean of an outcome already known to have values (never a stand-in zero)."""
    if outcome.stats.mean is None:
        raise ValueError(f"{outcome.name} has no value to rank")
    return outcome.stats.mean


def _names(outcomes: Sequence[Outcome] | Sequence[str]) -> str:
    names = [o if isinstance(o, str) else o.name for o in outcomes]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)
