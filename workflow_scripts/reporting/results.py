"""The study's results, typed: what results/summary.json holds, field by field.

``collect`` builds a :class:`StudyResult` from the finished runs and writes it with
:func:`write_study`; ``report`` reads it back with :func:`read_study` into the same types,
so a missing, renamed or mistyped field stops the report naming its key path
(:mod:`workflow_scripts.jobs.typed_json`). Every number the report shows travels from here
as a field; no module below the report reaches into summary.json by string.

Numbers only (and the names of the tests that gave them): every sentence is written at report
time (:mod:`~workflow_scripts.reporting.sentences`, :mod:`~workflow_scripts.reporting.conclusions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflow_scripts.jobs.io_utils import atomic_write_json
from workflow_scripts.jobs.typed_json import OMIT_WHEN_NONE, ResultFormatError, decode, encode
from workflow_scripts.reporting.contrast_results import ContrastFamily
from workflow_scripts.reporting.stats import SummaryStats
from workflow_scripts.reporting.units import Unit

#: A run's value of a metric: a number, ``None`` (no value) or ``"never"`` (censored).
MetricValue = float | str | None


@dataclass(frozen=True)
class PeriodSpan:
    """One contiguous sub-period of the test split."""

    start: str
    end: str
    n_windows: int


@dataclass(frozen=True)
class RunEntry:
    """One planned (series, fold, variant, seed) run: its status and, only if it finished, its
    numbers.

    The seven metric fields are :data:`~workflow_scripts.reporting.measures.MEASURES`' names
    (a test checks they match), so ``getattr(entry, name)`` reads any of them.
    """

    series: str
    fold: int
    seed: int
    status: str
    reason: str
    test_skill: MetricValue = None
    test_skill_mae: MetricValue = None
    test_skill_price: MetricValue = None
    test_skill_other: MetricValue = None
    auc_val_loss: MetricValue = None
    first_step_beats_naive: MetricValue = None
    best_val_loss: MetricValue = None
    best_val_correlation: MetricValue = None
    epochs_completed: int | None = None
    best_epoch: int | None = None
    resumed_from_epoch: int | None = None
    peak_rss_mb: float | None = None
    benchmark_s: float | None = None
    epochs_logged: int | None = None
    runtime_s: float | None = None
    samples_per_s: float | None = None
    params_total: float | None = None
    params_trainable: float | None = None
    params_encoder: float | None = None
    config_hash: str | None = None
    model_hash: str | None = None
    data_hash: str | None = None
    device: str | None = None
    precision: str | None = None
    #: {step: test skill of that step's model} (the budget curve)
    budget_curve: dict[int, float | None] = field(default_factory=dict)
    last_quarter_gain: float | None = None
    best_in_last_quarter: bool | None = None
    #: {"w.close": test skill of that timeframe and field}
    channel_skill: dict[str, float | None] = field(default_factory=dict)
    #: the test skill (MSE, MAE) under each draw of test masks, in draw order
    test_skill_draws: list[float] = field(default_factory=list)
    test_skill_mae_draws: list[float] = field(default_factory=list)
    #: the test skill (MSE, MAE) in each test period, in time order (mean over the draws)
    test_skill_periods: list[float | None] = field(default_factory=list)
    test_skill_mae_periods: list[float | None] = field(default_factory=list)
    #: the test periods those skills belong to
    period_spans: list[PeriodSpan] = field(default_factory=list)

    @property
    def unit(self) -> Unit:
        return Unit(self.series, self.fold, self.seed)

    def value(self, metric: str) -> MetricValue:
        """The run's value of ``metric`` (one of the metric fields)."""
        return getattr(self, metric)  # type: ignore[no-any-return]

    def draws(self, metric: str) -> list[float]:
        """A test metric (``TEST_METRICS``) under each mask draw."""
        return getattr(self, f"{metric}_draws")  # type: ignore[no-any-return]

    def periods(self, metric: str) -> list[float | None]:
        """A test metric (``TEST_METRICS``) in each test period."""
        return getattr(self, f"{metric}_periods")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class IqmStats:
    """Interquartile mean over seeds with its percentile-bootstrap interval."""

    iqm: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


@dataclass(frozen=True)
class NaiveChoice:
    """The strongest naive baseline, chosen on validation loss; ``loss`` is its test loss
    (its validation loss where no run reports a test loss)."""

    name: str
    chosen_on: str
    val_loss: float
    test_loss: float | None
    loss: float


@dataclass(frozen=True)
class ArmConvergence:
    """An arm has converged when every finished run's last-quarter gain is below the rule."""

    converged: bool
    n_runs: int
    n_converged: int
    max_last_quarter_gain: float | None
    mean_last_quarter_gain: float | None
    best_in_last_quarter: int


#: {baseline name: {"val_loss": mean, "test_loss_price": mean, ...}}
NaiveMeans = dict[str, dict[str, float | None]]


@dataclass(frozen=True)
class ArmResult:
    """One variant (arm) over its units: statistics of its finished runs, plus every run."""

    description: str
    task: str | None
    n_runs: int
    n_ok: int
    runs: list[RunEntry]
    metrics: dict[str, SummaryStats]
    iqm: dict[str, IqmStats]
    never: dict[str, int]
    runtime_s: SummaryStats
    samples_per_s: SummaryStats
    peak_rss_mb: SummaryStats
    peak_rss_mb_max: float | None
    params_total: int | None
    params_trainable: int | None
    naive_baselines: NaiveMeans
    best_naive: NaiveChoice | None
    beats_naive: bool | None
    beats_naive_clearly: bool | None
    convergence: ArmConvergence | None = None
    channel_skill: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class BudgetPoint:
    """A contrast's paired Δ test skill at one scored budget (unadjusted sign-flip p)."""

    step: int
    n: int
    mean_delta: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    significant: bool


@dataclass(frozen=True)
class ArmBudgetPoint:
    """An arm's mean test skill at one budget with its Student-t interval over units."""

    step: int
    mean: float
    ci_low: float | None
    ci_high: float | None
    n: int


@dataclass(frozen=True)
class BudgetCurve:
    """One primary or control contrast along the budget."""

    a: str
    b: str
    role: str
    label: str
    points: list[BudgetPoint]


@dataclass(frozen=True)
class BudgetResult:
    """The answer along the run: the curves and each arm's convergence."""

    contrasts: list[BudgetCurve]
    arms: dict[str, list[ArmBudgetPoint]]
    convergence: dict[str, ArmConvergence]
    alpha: float

    def curve_of(self, role: str) -> BudgetCurve | None:
        return next((c for c in self.contrasts if c.role == role), None)


@dataclass(frozen=True)
class RuleTime:
    """One rule's jobs: the plan's seconds (results/plan.json) beside Snakemake's benchmark files.

    Seconds are job-seconds (summed over the rule's jobs), not wall time."""

    rule: str
    planned_jobs: int
    planned_s: float
    measured_jobs: int
    #: None: Snakemake keeps no benchmark file for this rule's jobs
    measured_s: float | None
    #: measured over planned seconds of the jobs both planned and measured (None: none is both)
    ratio: float | None


@dataclass(frozen=True)
class StudyCompute:
    """The plan checked against the truth: the plan's wall time and slots (None: no plan) and
    each rule's planned and measured seconds."""

    planned_wall_s: float | None = None
    plan_cores: int | None = None
    plan_gpu: int | None = None
    plan_device: str | None = None
    rules: list[RuleTime] = field(default_factory=list)


@dataclass(frozen=True)
class StudyResult:
    """results/summary.json: every arm, the pooled naive baselines, the planned contrasts,
    the budget curve and (when the reference rule ran) the learned reference's summary."""

    confidence: float
    primary_metric: str
    metric_directions: dict[str, str]
    #: the units' axes: the series (by name), folds per series, seeds
    series: list[str]
    folds: int
    seeds: list[int]
    variant_order: list[str]
    variants: dict[str, ArmResult]
    naive_baselines: NaiveMeans
    best_naive: NaiveChoice | None
    contrasts: ContrastFamily
    budget: BudgetResult
    #: the test periods (start, end, windows), in time order, as the runs cut them
    periods: list[PeriodSpan]
    #: independent draws of test masks each run's test skill averages
    n_draws: int
    #: planned (results/plan.json, when it existed) and measured seconds per rule
    compute: StudyCompute
    #: the learned reference (fit_reference) pooled over its (series, fold) cells
    #: (reporting.reference_pool)
    reference: dict[str, Any] | None = field(default=None, metadata=OMIT_WHEN_NONE)


def write_study(path: Path, study: StudyResult) -> None:
    """results/summary.json, atomically."""
    atomic_write_json(path, encode(study))


def study_from_json(data: Any) -> StudyResult:
    """The typed study from parsed JSON; :class:`ResultFormatError` names the first bad key."""
    return decode(StudyResult, data)  # type: ignore[no-any-return]


def read_study(path: Path) -> StudyResult:
    """results/summary.json as a :class:`StudyResult`; ``ValueError`` naming the file and key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFormatError(f"{path}: not readable JSON ({exc}).") from exc
    try:
        return study_from_json(data)
    except ResultFormatError as exc:
        raise ResultFormatError(f"{path}: {exc}") from exc
