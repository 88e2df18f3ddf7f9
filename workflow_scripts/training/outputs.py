"""What a run writes for people and for collect: metrics.csv, TensorBoard, summary.json.

metrics.csv is rewritten whole (atomically) after every epoch from the run's history,
so a resumed run's file is the same as an uninterrupted run's. TensorBoard is a
directory output that Snakemake deletes before a rerun, so after a resume the earlier
epochs are written again from the same history.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workflow_scripts.jobs.io_utils import atomic_write_text
from workflow_scripts.run_contract import METRIC_COLUMNS

#: Columns that depend on the machine's speed; every other column is deterministic on CPU.
TIMING_COLUMNS = ("epoch_time_s", "samples_per_s")

_TB_SCALARS = {
    "train_loss": "train/loss",
    "grad_norm": "train/grad_norm",
    "val_loss": "val/loss",
    "val_correlation": "val/correlation",
    "val_mae": "val/mae",
    "val_skill": "val/skill",
    "lr": "lr/new_layers",
    "encoder_lr": "lr/encoder",
    "encoder_frozen": "encoder/frozen",
    "epoch_time_s": "time/epoch_s",
    "samples_per_s": "time/samples_per_s",
}


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form: the file holds the exact value
    return str(value)


def metrics_csv_text(history: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for row in history:
        writer.writerow([_cell(row.get(column, "")) for column in METRIC_COLUMNS])
    return buffer.getvalue()


def write_metrics_csv(path: Path, history: Sequence[Mapping[str, Any]]) -> None:
    atomic_write_text(path, metrics_csv_text(history))


class TensorBoardLog:
    """Scalars per epoch and the run's hparams, in ``directory`` (cleared first)."""

    def __init__(self, directory: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("events.out.tfevents.*"):
            stale.unlink()
        self._writer = SummaryWriter(log_dir=str(directory))

    def epoch(self, row: Mapping[str, Any], naive: Mapping[str, Mapping[str, float]]) -> None:
        step = int(row["epoch"])
        for column, tag in _TB_SCALARS.items():
            self._writer.add_scalar(tag, float(row[column]), step)
        for name, values in naive.items():
            self._writer.add_scalar(f"naive/{name}/val_correlation", values["val_correlation"], step)
        self._writer.flush()

    def hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """The run's flattened settings next to its best metrics (TensorBoard's HPARAMS tab)."""
        from torch.utils.tensorboard.summary import hparams

        experiment, start, end = hparams(dict(params), dict(metrics))
        file_writer = self._writer._get_file_writer()
        for summary in (experiment, start, end):
            file_writer.add_summary(summary)
        for key, value in metrics.items():
            self._writer.add_scalar(key, value)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def flatten_hparams(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested variant params -> flat ``train.learning_rate``-style keys with TB-storable values."""
    flat: dict[str, Any] = {}
    for key, value in sorted(params.items()):
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_hparams(value, f"{name}."))
        elif isinstance(value, bool | str) or (isinstance(value, int | float) and math.isfinite(value)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat
