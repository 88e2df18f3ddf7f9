"""What a training run leaves for its readers: metrics.csv's columns and summary.json's fields.

Kept free of heavy imports: ``collect`` and ``report`` run without torch.
"""

from dataclasses import dataclass

#: The convergence rule, in one place: a run has converged when its best validation loss
#: improved by less than this share over the last quarter of its epochs (the run's own flag,
#: collect's per-arm verdict and every sentence of the report read it from here).
CONVERGED_GAIN = 0.02

#: metrics.csv columns, in DESIGN.md's order. ``step`` is the global step at the end of the
#: epoch; ``test_loss`` and ``test_skill`` are filled only on the row of the kept (lowest
#: validation loss) epoch, the one checkpoint scored on the test split, and empty elsewhere.
#: ``budget_test_loss`` and ``budget_test_skill`` are the model *of that epoch* scored on the
#: test split at the steps of ``train.test_budgets`` (the budget curve; nothing is chosen on them).
METRIC_COLUMNS = (
    "epoch",
    "step",
    "train_loss",
    "val_loss",
    "val_skill",
    "val_correlation",
    "val_mae",
    "grad_norm",
    "lr",
    "encoder_lr",
    "encoder_frozen",
    "epoch_time_s",
    "samples_per_s",
    "test_loss",
    "test_skill",
    "budget_test_loss",
    "budget_test_skill",
)


@dataclass(frozen=True)
class EpochScores:
    """An epoch's validation numbers (window units): the kept epoch's, or the last one's."""

    val_loss: float
    val_skill: float | None
    val_correlation: float | None
    val_mae: float | None


@dataclass(frozen=True)
class FinalScores(EpochScores):
    """The last epoch's numbers, with its training loss."""

    train_loss: float


@dataclass(frozen=True)
class DrawScores:
    """The kept checkpoint's skill under one draw of test masks."""

    skill: float
    skill_mae: float


@dataclass(frozen=True)
class PeriodScores:
    """The kept checkpoint's skill in one contiguous sub-period of the test split (mean over
    the draws; None where the period left a channel unscored)."""

    #: end time of the period's first and last window (ISO 8601, UTC)
    start: str
    end: str
    n_windows: int
    skill: float | None
    skill_mae: float | None


@dataclass(frozen=True)
class TestScores:
    """The kept checkpoint scored on the test split beside the strongest naive rules (chosen
    per feature group on validation) on the same cells, under every draw of test masks
    (``training.test_pass``): each number is the mean over the draws."""

    loss: float
    correlation: float | None
    mae: float | None
    #: 1 − MSE / MSE of the strongest naive (by validation MSE), mean over the draws
    skill: float
    skill_price: float | None
    skill_other: float | None
    naive_loss: float
    n_windows: int
    strongest_naive: dict[str, str]
    #: {"w.close": skill of that timeframe and field}
    channel_skill: dict[str, float | None]
    #: 1 − MAE / MAE of the strongest naive (by validation MAE), mean over the draws
    skill_mae: float
    strongest_naive_mae: dict[str, str]
    draws: list[DrawScores]
    periods: list[PeriodScores]


@dataclass(frozen=True)
class LearningSpeed:
    """How fast a run learned: area under its validation-loss curve, first step past naive."""

    auc_val_loss: float | None
    #: None: the run never beat the strongest naive predictor (censored)
    first_step_beats_naive: int | None
    total_steps: int


@dataclass(frozen=True)
class RunConvergence:
    """Whether the run had stopped improving (the rule: :data:`CONVERGED_GAIN`)."""

    last_quarter_gain: float | None
    best_in_last_quarter: bool | None
    converged: bool
    quarter_from: int | None


@dataclass(frozen=True)
class BudgetScore:
    """The model of one step scored on the test split (the budget curve)."""

    step: int
    test_skill: float
    test_loss: float
    val_loss: float


@dataclass(frozen=True)
class Selection:
    """How the kept checkpoint was chosen: the metric, on validation, and its epoch."""

    metric: str
    epoch: int


@dataclass(frozen=True)
class RunSummary:
    """A finished run's summary.json, field by field: the train job writes it through this
    type (``training.outputs``) and collect reads it back into it (``reporting.runs``), so
    the two ends cannot drift apart. ``test`` is null for a validation-only (tuning) run."""

    variant: str
    #: the unit (series, fold, seed) this run trained and was scored on
    series: str
    fold: int
    seed: int
    status: str
    task: str
    normalisation: str
    epochs_completed: int
    best_epoch: int
    selection: Selection
    best: EpochScores
    final: FinalScores
    test: TestScores | None
    learning: LearningSpeed
    convergence: RunConvergence
    budget_curve: list[BudgetScore]
    #: {baseline: {"val_loss": ..., "val_loss_price": ..., "test_loss": ...}}, same cells as the run
    naive_baselines: dict[str, dict[str, float]]
    runtime_s: float
    samples_per_s: float
    params_total: int
    params_trainable: int
    params_encoder: int
    embedding_scale: float
    device: str
    precision: str
    resumed_from_epoch: int | None
    config_hash: str
    model_hash: str
    data_hash: str
    description: str
