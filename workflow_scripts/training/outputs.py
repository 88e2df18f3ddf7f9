"""What a run writes for people and for collect: metrics.csv, TensorBoard, summary.json, weights.

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
from typing import Any, cast

import torch

from workflow_scripts.jobs.io_utils import atomic_write_json, atomic_write_text
from workflow_scripts.jobs.typed_json import encode
from workflow_scripts.training.build import Run
from workflow_scripts.training.device import describe_device
from workflow_scripts.training.evaluation import budget_curve, convergence, learning_speed
from workflow_scripts.training.identity import RunIdentity
from workflow_scripts.training.model import parameter_counts
from workflow_scripts.training.resume import save_weights
from workflow_scripts.training.run_contract import (
    METRIC_COLUMNS,
    EpochScores,
    FinalScores,
    LearningSpeed,
    RunConvergence,
    RunSummary,
    Selection,
    TestScores,
)

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
        # imported here: tensorboard is slow to import and only a training run writes events
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
        from torch.utils.tensorboard.summary import hparams  # slow to import, as in __init__

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


#: The per-epoch keys summary.json copies for the kept (best) and the last epoch.
EPOCH_KEYS = ("val_loss", "val_skill", "val_correlation", "val_mae")


def run_summary(
    run: Run,
    history: list[dict[str, Any]],
    best_epoch: int,
    test: TestScores | None,
    naive: dict[str, dict[str, float]],
    identity: RunIdentity,
    *,
    resumed_from: int | None,
    runtime_s: float,
) -> RunSummary:
    """summary.json's content (``run_contract.RunSummary``; docs/training.md lists every key)."""
    cfg = run.cfg
    best, final = history[best_epoch - 1], history[-1]
    train_time = sum(row["train_time_s"] for row in history)
    return RunSummary(
        variant=run.variant.name,
        series=identity.series,
        fold=identity.fold,
        seed=run.seed,
        status="completed" if len(history) == cfg.epochs else "early_stopped",
        task=cfg.task,
        normalisation=cfg.normalisation,
        epochs_completed=len(history),
        best_epoch=best_epoch,
        selection=Selection("val_loss", best_epoch),
        best=EpochScores(**{k: best[k] for k in EPOCH_KEYS}),
        final=FinalScores(**{k: final[k] for k in ("train_loss", *EPOCH_KEYS)}),
        test=test,
        learning=LearningSpeed(**learning_speed(history, run.steps, cfg.epochs)),
        convergence=RunConvergence(**convergence(history)),
        budget_curve=budget_curve(history),
        naive_baselines=naive,
        runtime_s=runtime_s,
        samples_per_s=len(history) * run.steps * cfg.batch_size / train_time if train_time > 0 else 0.0,
        **parameter_counts(run.model),
        embedding_scale=float(cast(torch.Tensor, run.model.embedding.scale)),
        device=describe_device(run.device),
        precision=run.precision.name,
        resumed_from_epoch=resumed_from,
        config_hash=identity.config_hash,
        model_hash=identity.model_hash,
        data_hash=identity.data_hash,
        description=run.variant.description,
    )


def write_outputs(
    out_dir: Path,
    tensorboard: TensorBoardLog,
    run: Run,
    history: list[dict[str, Any]],
    summary: RunSummary,
    best_tensors: dict[str, torch.Tensor] | None,
) -> None:
    """A finished run's files: best.safetensors (with ``best_tensors``; a tuning run writes no
    weights), metrics.csv, summary.json, then TensorBoard's hparams (after a test pass) and close."""
    best_epoch = summary.best_epoch
    if best_tensors is not None:
        metadata = {
            "variant": run.variant.name,
            "series": summary.series,
            "fold": str(summary.fold),
            "seed": str(run.seed),
            "epoch": str(best_epoch),
            "val_loss": repr(history[best_epoch - 1]["val_loss"]),
            "config_hash": summary.config_hash,
        }
        save_weights(out_dir / "best.safetensors", best_tensors, metadata)
    write_metrics_csv(out_dir / "metrics.csv", history)
    atomic_write_json(out_dir / "summary.json", encode(summary))
    if summary.test is not None:
        tensorboard.hparams(
            {**flatten_hparams(run.variant.to_params()), "seed": run.seed},
            {
                "hparam/test_skill": summary.test.skill,
                "hparam/best_val_loss": summary.best.val_loss,
            },
        )
    tensorboard.close()
