"""One run from start to outputs: resume, epochs, early stopping, the test pass, summary.json.

``Trainer`` (``loop``) owns the model and the steps; this module owns the run around
them. The kept checkpoint is the epoch with the lowest validation loss; patience counts
epochs without a lower one and restarts when a frozen encoder is unfrozen. After the
last epoch the kept checkpoint is loaded and scored once on the test split. Every epoch
commits its state asynchronously (``checkpoint.ResumeStore``), so a run killed at any
point resumes from its last completed epoch and ends with the same metrics.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, cast

import torch

from workflow_scripts.io_utils import atomic_write_json
from workflow_scripts.training.device import describe_device
from workflow_scripts.training.evaluation import budget_curve, convergence, learning_speed, naive_report
from workflow_scripts.training.loop import RunIdentity, Trainer
from workflow_scripts.training.model import parameter_counts
from workflow_scripts.training.outputs import TensorBoardLog, flatten_hparams, write_metrics_csv
from workflow_scripts.training.resume import (
    ResumeState,
    ResumeStore,
    cpu_copy,
    model_tensors,
    restore_model,
    save_weights,
)

LOG = logging.getLogger(__name__)


def restore_run(trainer: Trainer, restored: ResumeState) -> None:
    """Model, optimizer and loss-scaler state of the last committed epoch."""
    restore_model(trainer.model, restored.model)
    trainer.optimizer.load_state_dict(restored.optimizer)
    scaler_state = restored.state.get("scaler")
    if trainer.scaler is not None and scaler_state:
        trainer.scaler.load_state_dict(scaler_state)


def fit(
    trainer: Trainer,
    out_dir: Path,
    tensorboard_dir: Path,
    resume_dir: Path,
    identity: RunIdentity,
    *,
    with_test: bool = True,
) -> dict[str, Any]:
    """Train every epoch (resuming committed ones), score the kept checkpoint on test, write outputs.

    ``with_test=False`` (a learning-rate tuning run, ``config_tune``): the test split is never
    built nor scored, summary.json's ``test`` is null and no weights are written.
    """
    started = time.perf_counter()
    cfg = trainer.cfg
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ResumeStore(Path(resume_dir), identity.resume_key)
    state: dict[str, Any] = {
        "history": [],
        "best_epoch": 0,
        "stale": 0,
        "finished": False,
        "runtime_s": 0.0,
    }
    best_tensors: dict[str, torch.Tensor] | None = None
    resumed_from: int | None = None
    restored = store.load()
    if restored is not None:
        restore_run(trainer, restored)
        state.update({key: restored.state[key] for key in state})
        best_tensors = restored.best
        resumed_from = restored.epoch
        LOG.info("resuming from epoch %d (the last completed epoch of %d)", restored.epoch, cfg.epochs)
    history: list[dict[str, Any]] = state["history"]
    runtime_before = float(state["runtime_s"])
    LOG.info(
        "variant %s, seed %d: %s, task %s, %s normalisation, device %s, precision %s, %d val samples",
        trainer.variant.name,
        trainer.seed,
        trainer.encoder_description,
        cfg.task,
        cfg.normalisation,
        describe_device(trainer.device),
        trainer.precision.name,
        trainer.val.n_samples,
    )
    LOG.info("strongest naive per feature group (on validation): %s", trainer.naive_choice)
    naive_log = naive_report(trainer.naive_val, None, trainer.groups)
    tensorboard = TensorBoardLog(Path(tensorboard_dir))
    try:
        for row in history:
            tensorboard.epoch(row, naive_log)
        epoch = len(history) + 1
        while not state["finished"] and epoch <= cfg.epochs:
            if epoch == trainer.freeze_epochs + 1 and trainer.freeze_epochs > 0:
                state["stale"] = 0  # patience restarts when the encoder is unfrozen
            row, _result = trainer.train_epoch(epoch)
            if with_test and row["step"] in trainer.budget_steps:
                row.update(trainer.budget_scores(row["step"]))
            history.append(row)
            best = state["best_epoch"]
            improved = best == 0 or row["val_loss"] < history[best - 1]["val_loss"]
            if improved:
                state["best_epoch"], state["stale"] = epoch, 0
                best_tensors = model_tensors(trainer.model)
            else:
                state["stale"] += 1
            stop = cfg.early_stopping_patience > 0 and state["stale"] >= cfg.early_stopping_patience
            state["finished"] = stop or epoch == cfg.epochs
            write_metrics_csv(out_dir / "metrics.csv", history)
            tensorboard.epoch(row, naive_log)
            LOG.info(
                "epoch %d/%d: train_loss %.4g, val_loss %.4g, val_skill %.4f (best val_loss %.4g at "
                "epoch %d), encoder %s, %.1f s, %.0f samples/s",
                epoch,
                cfg.epochs,
                row["train_loss"],
                row["val_loss"],
                row["val_skill"],
                history[state["best_epoch"] - 1]["val_loss"],
                state["best_epoch"],
                "frozen" if row["encoder_frozen"] else "training",
                row["epoch_time_s"],
                row["samples_per_s"],
            )
            if stop and epoch < cfg.epochs:
                LOG.info("early stopping: no lower validation loss for %d epochs", state["stale"])
            trained = {id(p) for p in trainer.optimizer.state}
            state["runtime_s"] = runtime_before + time.perf_counter() - started
            state["scaler"] = trainer.scaler.state_dict() if trainer.scaler is not None else None
            store.save_async(
                epoch,
                dict(state),
                model_tensors(trainer.model, only=trained),
                cpu_copy(trainer.optimizer.state_dict()),
                best_tensors if improved else None,
            )
            epoch += 1
    except BaseException:
        try:
            store.wait()  # keep the last committed epoch for the resume
        except RuntimeError as error:
            LOG.error("%s", error)
        tensorboard.close()
        raise
    store.wait()
    if best_tensors is None or not history:
        raise RuntimeError("no epoch was trained")
    best_epoch = state["best_epoch"]
    if not with_test:
        run = (history, best_epoch, resumed_from, float(state["runtime_s"]))
        return _validation_only(trainer, out_dir, tensorboard, store, identity, run)
    test, naive_test = trainer.test_pass(best_tensors, step=history[best_epoch - 1]["step"])
    history[best_epoch - 1].update(test_loss=test["loss"], test_skill=test["skill"])
    LOG.info(
        "test split (%d windows, checkpoint of epoch %d): skill %.4f (price %s, other %s), loss %.4g vs "
        "strongest naive %.4g",
        test["n_windows"],
        best_epoch,
        test["skill"],
        test["skill_price"],
        test["skill_other"],
        test["loss"],
        test["naive_loss"],
    )
    summary = run_summary(
        trainer,
        history,
        best_epoch,
        test,
        naive_report(trainer.naive_val, naive_test, trainer.groups),
        identity,
        resumed_from=resumed_from,
        runtime_s=runtime_before + time.perf_counter() - started,
    )
    save_weights(
        out_dir / "best.safetensors",
        best_tensors,
        {
            "variant": trainer.variant.name,
            "seed": str(trainer.seed),
            "epoch": str(best_epoch),
            "val_loss": repr(history[best_epoch - 1]["val_loss"]),
            "config_hash": identity.config_hash,
        },
    )
    write_metrics_csv(out_dir / "metrics.csv", history)
    atomic_write_json(out_dir / "summary.json", summary)
    tensorboard.hparams(
        {**flatten_hparams(trainer.variant.to_params()), "seed": trainer.seed},
        {"hparam/test_skill": test["skill"], "hparam/best_val_loss": summary["best"]["val_loss"]},
    )
    tensorboard.close()
    store.clear()
    LOG.info("done: %s after %d epochs, test skill %.4f", summary["status"], len(history), test["skill"])
    return summary


def _validation_only(
    trainer: Trainer,
    out_dir: Path,
    tensorboard: TensorBoardLog,
    store: ResumeStore,
    identity: RunIdentity,
    run: tuple[list[dict[str, Any]], int, int | None, float],
) -> dict[str, Any]:
    """Outputs of a run that must not see the test split: metrics.csv and summary.json only.

    ``run``: the history, the kept epoch, the epoch resumed from and the runtime.
    """
    history, best_epoch, resumed_from, runtime_s = run
    summary = run_summary(
        trainer,
        history,
        best_epoch,
        None,
        naive_report(trainer.naive_val, None, trainer.groups),
        identity,
        resumed_from=resumed_from,
        runtime_s=runtime_s,
    )
    write_metrics_csv(out_dir / "metrics.csv", history)
    atomic_write_json(out_dir / "summary.json", summary)
    tensorboard.close()
    store.clear()
    LOG.info("done (validation only, no test pass): final val_loss %.4g", history[-1]["val_loss"])
    return summary


#: The per-epoch keys summary.json copies for the kept (best) and the last epoch.
EPOCH_KEYS = ("val_loss", "val_skill", "val_correlation", "val_mae")


def run_summary(
    trainer: Trainer,
    history: list[dict[str, Any]],
    best_epoch: int,
    test: dict[str, Any] | None,
    naive: dict[str, dict[str, float]],
    identity: RunIdentity,
    *,
    resumed_from: int | None,
    runtime_s: float,
) -> dict[str, Any]:
    """summary.json's content (docs/training.md lists every key)."""
    cfg = trainer.cfg
    best, final = history[best_epoch - 1], history[-1]
    trainer._apply_freeze(len(history))
    train_time = sum(row["train_time_s"] for row in history)
    return {
        "variant": trainer.variant.name,
        "seed": trainer.seed,
        "status": "completed" if len(history) == cfg.epochs else "early_stopped",
        "task": cfg.task,
        "normalisation": cfg.normalisation,
        "epochs_completed": len(history),
        "best_epoch": best_epoch,
        "selection": {"metric": "val_loss", "epoch": best_epoch},
        "best": {k: best[k] for k in EPOCH_KEYS},
        "final": {k: final[k] for k in ("train_loss", *EPOCH_KEYS)},
        "test": test,
        "learning": learning_speed(history, trainer.steps, cfg.epochs),
        "convergence": convergence(history),
        "budget_curve": budget_curve(history),
        "naive_baselines": naive,
        "runtime_s": runtime_s,
        "samples_per_s": len(history) * trainer.steps * cfg.batch_size / train_time
        if train_time > 0
        else 0.0,
        **parameter_counts(trainer.model),
        "embedding_scale": float(cast(torch.Tensor, trainer.model.embedding.scale)),
        "device": describe_device(trainer.device),
        "precision": trainer.precision.name,
        "resumed_from_epoch": resumed_from,
        "config_hash": identity.config_hash,
        "model_hash": identity.model_hash,
        "data_hash": identity.data_hash,
        "description": trainer.variant.description,
    }
