"""Results into words: every Δ/interval/p sentence the report writes comes from here.

The statistics (:mod:`~workflow_scripts.reporting.stats`, :mod:`~workflow_scripts.reporting.paired`,
:mod:`~workflow_scripts.reporting.power`, and the rows :mod:`~workflow_scripts.reporting.contrasts`
and :mod:`~workflow_scripts.reporting.budget` build from them) return numbers; these functions
turn them into text. One Δ/interval formatter, :func:`delta_text`, writes the mean paired
difference with its interval for the headline, the control lines, the conclusions and the
budget-curve cells, each in its :class:`DeltaStyle`; one p formatter,
:func:`~workflow_scripts.reporting.formatting.fmt_p`, writes every p. All functions are pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from workflow_scripts.reporting.contrast_results import ContrastResult, PeriodDelta, SkippedContrast
from workflow_scripts.reporting.formatting import fmt_p, fmt_value, period_name
from workflow_scripts.reporting.measures import METRICS
from workflow_scripts.reporting.paired import TransferRatio
from workflow_scripts.reporting.results import BudgetPoint
from workflow_scripts.reporting.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, SummaryStats
from workflow_scripts.training.run_contract import CONVERGED_GAIN

YES, NO, CANNOT_TELL = "Yes", "No", "Cannot tell at this number of units"
NAIVE_CAVEAT = (
    "Caveat: no variant beats the strongest naive predictor on the held-out test split "
    "(mean test skill ≤ 0), so neither arm learned anything useful beyond naive."
)


@dataclass(frozen=True)
class Headline:
    """The answer the report opens with: Yes / No / Cannot tell, its sentence, and the lines
    that qualify it (the naive caveat, the controls' warnings, the budget it holds at)."""

    answer: str
    text: str
    caveat: str = ""
    warning: str = ""
    budget: str = ""
    #: which sources of variance the interval covers: seeds, and the mask draws held fixed
    variance: str = ""
    #: whether the sign holds in every test period, with the interaction test
    periods: str = ""
    #: the same question answered on absolute errors, and whether the two answers agree
    second_metric: str = ""
    #: which claim the answer makes (these units, or new periods and series) and how it holds
    #: across series and folds (reporting.breadth_lines)
    breadth: str = ""


@dataclass(frozen=True)
class DeltaStyle:
    """How :func:`delta_text` writes a mean with its interval.

    ``lead`` comes before the mean (``{title}`` is the metric's title); ``interval`` and
    ``no_interval`` follow it (``{low}``, ``{high}``, ``{n}``, ``{level}`` and ``{extra}``
    are filled in); ``undefined`` stands for a mean that does not exist.
    """

    lead: str
    number: Callable[[float], str]
    interval: str
    no_interval: str
    undefined: str


def _signed(value: float) -> str:
    return f"{value:+.3g}"


#: the headline and the control lines: "Δ test skill = +0.2 (95% CI +0.1 to +0.3, n=10)"
HEADLINE = DeltaStyle(
    "Δ {title} = ", _signed, " ({level}% CI {low} to {high}, n={n}{extra})", " (n={n}, no interval)",
    "mean Δ not defined",
)  # fmt: skip
#: the conclusions: "mean Δ 0.200 (95% CI 0.100 to 0.300, n=10)"
CONCLUSION = DeltaStyle(
    "mean Δ ", fmt_value, " ({level}% CI {low} to {high}, n={n}{extra})", " (n={n}, no interval)",
    "mean Δ not defined (a run never reached it; tested on ranks)",
)  # fmt: skip
#: a budget-curve cell: "+0.200 [+0.100, +0.300]"
CELL = DeltaStyle("", "{:+.3f}".format, " [{low}, {high}]", "", "—")
#: one variant's mean inside a sentence: "0.312 (95% CI 0.291 to 0.333, n=3)"
MEAN = DeltaStyle(
    "", fmt_value, " ({level}% CI {low} to {high}, n={n}{extra})", " (n={n}, no confidence interval)",
    "no finite value",
)  # fmt: skip


def delta_text(
    mean: float | None,
    low: float | None,
    high: float | None,
    n: int,
    style: DeltaStyle,
    *,
    title: str = "",
    extra: str = "",
    level: int = 95,
) -> str:
    """``mean`` with its ``level``% interval ``[low, high]`` over ``n`` units, in ``style``."""
    if mean is None:
        return style.undefined
    head = style.lead.format(title=title) + style.number(mean)
    if low is None or high is None:
        return head + style.no_interval.format(n=n)
    return head + style.interval.format(
        low=style.number(low), high=style.number(high), n=n, extra=extra, level=level
    )


def row_delta(row: ContrastResult, style: DeltaStyle, extra: str = "") -> str:
    """A contrast row's mean Δ and interval (see :func:`delta_text`)."""
    title = METRICS[row.metric].title
    return delta_text(row.mean_delta, row.ci_low, row.ci_high, row.n, style, title=title, extra=extra)


def stats_text(stats: SummaryStats) -> str:
    """One variant's mean with its confidence interval, for a sentence."""
    level = round(stats.confidence * 100)
    return delta_text(stats.mean, stats.ci_low, stats.ci_high, stats.n, MEAN, level=level)


def numbers_text(row: ContrastResult, *, detailed: bool = True) -> str:
    """One contrast's Δ, interval and adjusted p for a sentence; ``detailed`` adds the
    metric's direction and the test's name (the headline has room for them, control lines not)."""
    direction = f", {METRICS[row.metric].direction} is better" if detailed else ""
    test = f" ({row.test})" if detailed else ""
    return f"{row_delta(row, HEADLINE, direction)}, Holm-adjusted p = {fmt_p(row.p_adjusted)}{test}"


def headline(
    row: ContrastResult | None, skipped: Sequence[SkippedContrast], any_beats_naive: bool | None
) -> Headline:
    """The report's opening answer to "Does the pretrained encoder help?" from the primary
    contrast ``row`` (``None`` when it was not computed; ``skipped`` says why), with a caveat
    when no variant beats the strongest naive predictor.

    Yes only when the primary contrast is significant after Holm and favours ``a`` (the
    pretrained arm); No when significant the other way; Cannot tell otherwise, saying when
    the number of units cannot reach significance at all.
    """
    caveat = NAIVE_CAVEAT if any_beats_naive is False else ""
    if row is None:
        why = f" ({skipped[0].reason})" if skipped else " (no primary contrast is declared)"
        return Headline(CANNOT_TELL, f"The primary contrast was not computed{why}.", caveat)
    answer, lead = verdict(row)
    return Headline(answer, f"{row.label}: {lead}; {numbers_text(row)}.", caveat)


def verdict(row: ContrastResult) -> tuple[str, str]:
    """(Yes / No / Cannot tell, the reason in words) of one contrast: Yes only when it is
    significant after Holm and favours ``a``; No when significant the other way."""
    if row.significant and row.favours == "a":
        return YES, f"{row.a} beats {row.b}"
    if row.significant and row.favours == "b":
        return NO, f"{row.a} does worse than {row.b}"
    if not row.can_reach_after_holm:
        return CANNOT_TELL, (
            f"with {row.n} units the smallest attainable p is {row.min_attainable_p:.3g}, above "
            f"α/m = {row.alpha:g}/{row.holm_family_size}, so no result could be significant"
        )
    return CANNOT_TELL, f"the difference between {row.a} and {row.b} is not significant after Holm"


def variance_line(row: ContrastResult, n_draws: int) -> str:
    """Which sources of variance the headline's interval covers: the units (series, fold, seed);
    the mask draws are averaged within each unit and held fixed, so their spread is stated
    beside the units'."""
    within = row.within_test
    if within is None or n_draws < 2 or within.draw_sd is None:
        return (
            f"The interval covers the {row.n} units (series, fold, seed), scored on one draw of test "
            "masks; another draw would move Δ by an amount this interval does not include."
        )
    moved = within.draw_sd / math.sqrt(n_draws)
    units = "not defined" if row.sd_delta is None else f"{row.sd_delta:.3g}"
    return (
        f"Δ is the mean over {n_draws} draws of test masks within each unit; its interval covers the "
        f"{row.n} units (series, fold, seed) and holds those draws fixed. A unit's Δ moves between draws "
        f"with sd {within.draw_sd:.3g}, against {units} between units: another set of {n_draws} draws "
        f"would move Δ by about {moved:.3g} (sd), which the interval does not include."
    )


def periods_line(row: ContrastResult) -> str:
    """Whether the primary Δ keeps its sign in every test period, with the interaction test."""
    within = row.within_test
    if within is None or len(within.periods) < 2:
        return ""
    cells = ", ".join(
        f"{period_name(p.start, p.end)}: {'—' if p.mean_delta is None else f'{p.mean_delta:+.3g}'}"
        for p in within.periods
    )
    test = (
        "not testable (too few units)"
        if within.heterogeneity_p is None
        else f"within-unit permutation test of arm × period p = {fmt_p(within.heterogeneity_p)}"
    )
    if within.sign_holds:
        lead = f"The sign of Δ holds in every one of the {len(within.periods)} test periods"
    else:
        lead = f"The sign of Δ does NOT hold in every one of the {len(within.periods)} test periods"
    return f"{lead} ({cells}); does the effect differ between periods: {test}."


def second_metric_line(primary: ContrastResult, mae: ContrastResult | None) -> str:
    """The question answered again on absolute errors, and whether the two answers agree."""
    if mae is None or mae.n == 0:
        return ""
    first, _ = verdict(primary)
    second, lead = verdict(mae)
    agree = "the same answer" if first == second else f"a different answer ({second} instead of {first})"
    return (
        f"On absolute errors (test skill = 1 − MAE / MAE of the strongest naive, chosen on validation "
        f"MAE): {agree}: {lead}; {numbers_text(mae, detailed=False)}."
    )


def contrast_sentence(row: ContrastResult) -> str:
    """One planned contrast in words: who is ahead (only if significant after Holm), Δ with
    its interval, the adjusted p and the test, d_z and the probability of improvement."""
    spec = METRICS[row.metric]
    a, b = row.a, row.b
    poi = fmt_value(row.prob_improvement, 2)
    stats = (
        f"p = {fmt_p(row.p)}, Holm-adjusted {fmt_p(row.p_adjusted)} ({row.test}); "
        f"d_z {fmt_value(row.d_z, 2)}; P({a} better) {poi}"
    )
    if row.significant:
        winner, loser = (a, b) if row.favours == "a" else (b, a)
        verdict = f"{winner} is better than {loser} on {spec.title}"
    elif not row.can_reach_after_holm:
        verdict = (
            f"{a} vs {b} on {spec.title} cannot be significant with {row.n} units "
            f"(smallest attainable p {row.min_attainable_p:.3g})"
        )
    else:
        verdict = f"no difference between {a} and {b} on {spec.title} can be shown with {row.n} units"
    return f"{row.label}: {verdict}; {row_delta(row, CONCLUSION)}, {spec.direction} is better; {stats}."


def positive_control_line(name: str, row: ContrastResult, detected: bool, status: str = "") -> str:
    """The line under the headline for a positive control that ran: its verdict (``status``,
    "detected" by default when ``detected``), then what squared errors say (``row``) and why."""
    numbers = numbers_text(row, detailed=False)
    label = status or ("detected" if detected else "not detected")
    shown = label if label == "detected" else f"**{label}**"
    if detected:
        return f"{name}: {shown} — {row.a} beats {row.b}; {numbers}."
    reason = (
        f"with {row.n} units no result could be significant after Holm"
        if not row.can_reach_after_holm
        else f"{row.a} vs {row.b} is not significantly better after Holm"
    )
    return f"{name}: {shown} — {reason}; {numbers}."


def control_mae_clause(mae: ContrastResult, detected: bool) -> str:
    """What the absolute errors say about a positive control (the line's verdict covers both)."""
    said = "detected" if detected else "not detected"
    return f"On absolute errors: {said}; {numbers_text(mae, detailed=False)}."


def negative_control_line(row: ContrastResult) -> str:
    """A negative control on the primary metric: declared (a false alarm) or not."""
    numbers = numbers_text(row, detailed=False)
    if row.significant:
        return (
            f"Negative control: FALSE ALARM — the statistics declare {row.a} vs {row.b} "
            f"(two draws of the same arm) different; {numbers}. Treat every "
            "significant contrast of this study with suspicion."
        )
    return (
        f"Negative control: no difference declared between {row.a} and {row.b} "
        f"(two draws of the same arm), as expected; {numbers}."
    )


def ratio_text(primary: ContrastResult, control: ContrastResult, ratio: TransferRatio | None) -> str:
    """The transfer ratio over a detected encoder-only control (``ratio`` as
    :func:`workflow_scripts.reporting.controls.transfer_ratio` returns it)."""
    quotient = f"({primary.a} − {primary.b}) / ({control.a} − {control.b})"
    if ratio is None:
        return f"Transfer ratio {quotient} not shown: fewer than 2 shared units or a control Δ of 0."
    if math.isinf(ratio.low):
        return (
            f"Text transfer vs in-domain encoder transfer: {quotient} = {ratio.ratio:.2f}, but its "
            "interval is unbounded: the control's Δ changes sign in more than 2.5% of the bootstrap "
            "resamples."
        )
    return (
        f"Text transfer vs in-domain encoder transfer: {quotient} = {ratio.ratio:.2f} "
        f"(95% paired bootstrap interval {ratio.low:.2f} to {ratio.high:.2f}, "
        f"{BOOTSTRAP_RESAMPLES} resamples of {ratio.n} units, seed {BOOTSTRAP_SEED}); 1 = the text "
        "encoder helps as much as an encoder pretrained on bars behind the same interface, 0 = not at all."
    )


def ratio_not_shown(primary: ContrastResult, control: ContrastResult | None) -> str:
    """Why the transfer ratio is not a number: the encoder-only control did not run
    (``control`` is ``None``) or was not detected."""
    if control is None:
        return (
            "Transfer ratio not shown: the encoder-only positive control (role encoder_control) was not "
            "run, so there is no in-domain encoder transfer to compare text transfer with."
        )
    quotient = f"({primary.a} − {primary.b}) / ({control.a} − {control.b})"
    return (
        "This study cannot see encoder transfer at this budget: the encoder-only positive control was "
        f"not detected, so the transfer ratio {quotient} is not shown as a number."
    )


def budget_cell(point: BudgetPoint) -> str:
    """One budget's Δ [95% CI], its unadjusted p and a star when significant."""
    delta = delta_text(point.mean_delta, point.ci_low, point.ci_high, point.n, CELL)
    mark = " *" if point.significant else ""
    return f"{delta}, p = {fmt_p(point.p)}{mark}"


def period_cell(point: PeriodDelta) -> str:
    """One test period's Δ [95% CI] and its sign-flip p (unadjusted)."""
    delta = delta_text(point.mean_delta, point.ci_low, point.ci_high, point.n, CELL)
    return f"{delta}, p = {fmt_p(point.p)}"


def sign_of(point: BudgetPoint) -> int:
    """+1 / −1 where the budget's Δ is significant (unadjusted) that way, 0 where it is level."""
    if not point.significant or point.mean_delta is None:
        return 0
    return 1 if point.mean_delta > 0 else -1


def curve_phrase(points: Sequence[BudgetPoint]) -> str:
    """The contrast along the budget in words: where the sign is significant and where it changes,
    e.g. "behind at 25–100 steps, level at 125–200 steps"."""
    words = {1: "ahead", -1: "behind", 0: "level"}
    runs: list[tuple[int, list[int]]] = []
    for point in points:
        sign = sign_of(point)
        if runs and runs[-1][0] == sign:
            runs[-1][1].append(point.step)
        else:
            runs.append((sign, [point.step]))
    parts = []
    for sign, steps in runs:
        where = f"{steps[0]:,} steps" if len(steps) == 1 else f"{steps[0]:,}–{steps[-1]:,} steps"
        parts.append(f"{words[sign]} at {where}")
    return ", ".join(parts)


def budget_note(arms: tuple[str, str], open_arms: Sequence[str], at: str, along: str) -> str:
    """The line under the headline on convergence: both primary ``arms`` converged, or the
    answer holds ``at`` a budget because ``open_arms`` have not; ``along`` is the curve."""
    rule = f"{CONVERGED_GAIN:.0%}"
    if not open_arms:
        return f"Both {arms[0]} and {arms[1]} converged (every run's last-quarter gain < {rule}).{along}"
    unconverged = " and ".join(open_arms)
    return (
        f"This answer holds {at}: {unconverged} {'has' if len(open_arms) == 1 else 'have'} not converged "
        f"(validation loss still fell ≥ {rule} over the last quarter on some run), so it is about early "
        f"learning, not about what either arm can learn.{along}"
    )
