"""The columns of a training run's metrics.csv, shared by the writer and the readers.

Kept free of heavy imports: ``collect`` and ``report`` run without torch.
"""

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
