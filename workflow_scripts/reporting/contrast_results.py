"""The planned contrasts' results, typed: the ``contrasts`` block of results/summary.json.

One :class:`ContrastResult` per planned contrast and metric, with its paired comparison over
units (:class:`PairedComparison`), its spread inside the test split (:class:`WithinTest`) and
across series and folds (:class:`Breadth`); :class:`ContrastFamily` holds them all with the
skipped ones. Split from :mod:`~workflow_scripts.reporting.results`, which holds the study, its
arms and runs, and the paired unit itself (:class:`~workflow_scripts.reporting.results.Unit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workflow_scripts.jobs.typed_json import OMIT_WHEN_NONE
from workflow_scripts.reporting.random_effects import RandomEffects
from workflow_scripts.reporting.units import Unit


@dataclass(frozen=True)
class PeriodDelta:
    """A contrast's paired Δ in one test period: mean over units, t interval, sign-flip p."""

    start: str
    end: str
    n: int
    mean_delta: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None


@dataclass(frozen=True)
class WithinTest:
    """Where a test-metric contrast varies inside the test: between mask draws, between periods."""

    #: mean over units of the SD of a unit's Δ across the draws (what one draw's luck moves)
    draw_sd: float | None
    n_draws: int
    periods: list[PeriodDelta]
    #: the arm × period interaction test (reporting.heterogeneity); None: too few units or periods
    heterogeneity_p: float | None
    #: True when every period's mean Δ has the sign of the overall mean Δ
    sign_holds: bool | None


@dataclass(frozen=True)
class GroupDelta:
    """A contrast's paired Δ within one series or one fold: mean over its units, t interval."""

    name: str
    n: int
    mean_delta: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Breadth:
    """How a contrast holds across series and folds, and what it predicts for new ones.

    The pooled test (the contrast's own p) is a claim about these units. ``new_period`` is the
    random-effects estimate over the (series, fold) cells: the Δ to expect in a new period of
    these series; ``new_series`` over the series: the Δ to expect on a new instrument. Each is
    None with fewer than two groups (``reporting.random_effects``)."""

    series: list[GroupDelta]
    folds: list[GroupDelta]
    new_period: RandomEffects | None
    new_series: RandomEffects | None


@dataclass(frozen=True)
class PairedComparison:
    """Every number of one paired contrast ``a vs b`` on one metric, before Holm."""

    metric: str
    direction: str
    censored_metric: bool
    n: int
    units: list[Unit]
    a_values: list[float | str]
    b_values: list[float | str]
    #: per unit a − b (``None`` where a run never reached a censored metric)
    deltas: list[float | None]
    mean_delta: float | None
    sd_delta: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    #: the name of the test that gave p (sign-flip: exact, or Monte Carlo above 20 units)
    test: str
    d_z: float | None
    prob_improvement: float | None
    paired_share: float | None
    #: the mean Δ (mean rank difference for a censored metric) oriented so > 0 favours a
    improvement: float | None
    min_attainable_p: float


@dataclass(frozen=True)
class ContrastResult(PairedComparison):
    """One planned paired contrast: its comparison, Holm-adjusted within its metric, with its power."""

    name: str
    a: str
    b: str
    role: str
    label: str
    p_adjusted: float | None
    holm_family_size: int
    alpha: float
    can_reach_significance: bool
    can_reach_after_holm: bool
    power_alpha: float
    #: None when unknown (n < 2) or when the exact test cannot reach power_alpha (mde_unreachable)
    mde: float | None
    mde_power: float | None
    units_needed: int | None
    units_needed_power: float | None
    significant: bool
    favours: str | None
    mde_unreachable: bool
    #: for the test metrics only: the spread between draws and the contrast per test period
    within_test: WithinTest | None = field(default=None, metadata=OMIT_WHEN_NONE)
    #: for the test metrics only: the contrast per series and per fold, and the new-unit estimates
    breadth: Breadth | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True)
class SkippedContrast:
    """A planned contrast that could not run, and why."""

    name: str
    a: str
    b: str
    role: str
    label: str
    reason: str


@dataclass(frozen=True)
class ContrastFamily:
    """Every planned contrast on every contrast metric; Holm runs per metric over them."""

    alpha: float
    primary_metric: str
    results: list[ContrastResult]
    skipped: list[SkippedContrast]

    def of_role(self, role: str, metric: str | None = None) -> ContrastResult | None:
        """The first contrast of ``role`` on ``metric`` (the primary metric by default)."""
        wanted = metric or self.primary_metric
        return next((r for r in self.results if r.role == role and r.metric == wanted), None)

    def on(self, *metrics: str) -> list[ContrastResult]:
        """The contrasts on the given metrics, in the order they were planned."""
        return [r for r in self.results if r.metric in metrics]

    def skipped_of(self, role: str) -> list[SkippedContrast]:
        return [s for s in self.skipped if s.role == role]
