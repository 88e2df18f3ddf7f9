"""The columns of a training run's metrics.csv, shared by the writer and the readers.

Kept free of heavy imports: ``collect`` and ``report`` run without torch.
"""

#: metrics.csv columns, in DESIGN.md's order.
METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_correlation",
    "val_mae",
    "val_mae_price",
    "grad_norm",
    "lr",
    "encoder_lr",
    "encoder_frozen",
    "epoch_time_s",
    "samples_per_s",
)
