"""The training loop, ``fit``, read top to bottom: resume, epochs of steps, validation, budget
scores, checkpoint, early stopping, the test pass, the outputs.

It trains a ``build.Run``, the typed record of the run at step 0 (model, optimizer, scaler,
schedule, freezing, train source, and its ``Scoring``); the loop's own state (history, kept
epoch, patience, runtime) and the step itself (``train_step``) are here.

Each step masks a stretch of time in every timeframe (``masking``), scales each window by its
visible bars (``normalisation``) and minimises the MSE of the masked bars in those window
units. The kept checkpoint is the epoch with the lowest validation loss; patience counts
epochs without a lower one and restarts when a frozen encoder is unfrozen. Only the kept
checkpoint is scored, once, on the test split (``evaluation``). Every epoch commits its
state asynchronously (``resume.ResumeStore``), so a killed run resumes from its last
completed epoch. Speed rules (issues 7 and 20): a step reads nothing back from the device
(``steplog``), batches are gathered on the device and built several steps at a time
(``feed``), evaluation runs under ``torch.inference_mode`` and a frozen encoder has
``requires_grad=False``.

Reproducibility: all randomness of epoch ``e`` (batch order, masks, dropout) comes from
generators seeded with (seed, e) (``feed.epoch_generators``), so a run resumed after epoch
``k`` replays epoch ``k+1`` exactly as an uninterrupted run would.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from workflow_scripts.training.build import Run
from workflow_scripts.training.device import describe_device, synchronize
from workflow_scripts.training.evaluation import metric_row, naive_report
from workflow_scripts.training.feed import epoch_batches, epoch_generators
from workflow_scripts.training.final_test import NaiveChoices, cut_periods, final_test_pass
from workflow_scripts.training.identity import RunIdentity
from workflow_scripts.training.normalisation import Batch
from workflow_scripts.training.optim import clip_gradients, current_lr, set_learning_rates
from workflow_scripts.training.outputs import TensorBoardLog, run_summary, write_metrics_csv, write_outputs
from workflow_scripts.training.resume import ResumeStore, cpu_copy, model_tensors, restore_model
from workflow_scripts.training.run_contract import RunSummary, TestScores
from workflow_scripts.training.running_scores import MetricResult, masked_mse
from workflow_scripts.training.steplog import LOG_EVERY, NonFiniteError, Progress, StepLog

LOG = logging.getLogger(__name__)

__all__ = ["InjectedFailure", "NonFiniteError", "fit", "train_epoch"]


class InjectedFailure(RuntimeError):
    """Raised by ``train.inject_failure_at_epoch`` (test-only) to simulate a crash."""


def fit(
    run: Run,
    out_dir: Path,
    tensorboard_dir: Path,
    resume_dir: Path,
    identity: RunIdentity,
    *,
    with_test: bool = True,
) -> RunSummary:
    """Train every epoch (resuming committed ones), score the kept checkpoint on test, write outputs.

    ``with_test=False`` (a learning-rate tuning run, ``config.tune``): the test split is never
    built nor scored, summary.json's ``test`` is null, no weights are written and the runtime
    is that of the epochs (a full run's includes the test pass).
    """
    started = time.perf_counter()
    cfg, scoring = run.cfg, run.scoring
    budgets = frozenset(cfg.budget_steps())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ResumeStore(Path(resume_dir), identity.resume_key)
    state, best_tensors, resumed_from = _resume(run, store)
    history: list[dict[str, Any]] = state["history"]
    runtime_before = float(state["runtime_s"])
    _log_start(run)
    naive_log = naive_report(scoring.naive_val, None, scoring.groups)
    tensorboard = TensorBoardLog(Path(tensorboard_dir))
    try:
        for row in history:
            tensorboard.epoch(row, naive_log)
        epoch = len(history) + 1
        progress = Progress(cfg.epochs * run.steps, len(history) * run.steps)
        while not state["finished"] and epoch <= cfg.epochs:
            if epoch == run.freezing.epochs + 1 and run.freezing.epochs > 0:
                state["stale"] = 0  # patience restarts when the encoder is unfrozen
            row, _result = train_epoch(run, epoch, progress)
            if with_test and row["step"] in budgets:
                row.update(budget_scores(run, row["step"]))
            history.append(row)
            best = state["best_epoch"]
            improved = best == 0 or row["val_loss"] < history[best - 1]["val_loss"]
            if improved:
                state["best_epoch"], state["stale"] = epoch, 0
                best_tensors = model_tensors(run.model)
            else:
                state["stale"] += 1
            stop = cfg.early_stopping_patience > 0 and state["stale"] >= cfg.early_stopping_patience
            state["finished"] = stop or epoch == cfg.epochs
            write_metrics_csv(out_dir / "metrics.csv", history)
            tensorboard.epoch(row, naive_log)
            _log_epoch(run, history, state, stop)
            state["runtime_s"] = runtime_before + time.perf_counter() - started
            _commit(store, run, epoch, state, best_tensors if improved else None)
            epoch += 1
    except BaseException:
        _abandon(store, tensorboard)
        raise
    store.wait()
    if best_tensors is None or not history:
        raise RuntimeError("no epoch was trained")
    best_epoch = state["best_epoch"]
    test, naive_test = _final_test(run, best_tensors, history[best_epoch - 1]) if with_test else (None, None)
    run.freezing.apply(len(history))  # the summary's parameter counts: the last epoch's freezing
    summary = run_summary(
        run,
        history,
        best_epoch,
        test,
        naive_report(scoring.naive_val, naive_test, scoring.groups),
        identity,
        resumed_from=resumed_from,
        runtime_s=runtime_before + time.perf_counter() - started if with_test else float(state["runtime_s"]),
    )
    write_outputs(out_dir, tensorboard, run, history, summary, best_tensors if with_test else None)
    store.clear()
    _log_done(summary, history)
    return summary


def _resume(
    run: Run, store: ResumeStore
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None, int | None]:
    """The run's state (history, kept epoch, patience, runtime), the kept checkpoint's tensors and
    the epoch resumed from: those of the last committed epoch, restored into ``run``, if any."""
    state: dict[str, Any] = {"history": [], "best_epoch": 0, "stale": 0, "finished": False, "runtime_s": 0.0}
    restored = store.load()
    if restored is None:
        return state, None, None
    restore_model(run.model, restored.model)
    run.optimizer.load_state_dict(restored.optimizer)
    scaler_state = restored.state.get("scaler")
    if run.scaler is not None and scaler_state:
        run.scaler.load_state_dict(scaler_state)
    state.update({key: restored.state[key] for key in state})
    LOG.info("resuming from epoch %d (the last completed epoch of %d)", restored.epoch, run.cfg.epochs)
    return state, restored.best, restored.epoch


def _commit(
    store: ResumeStore,
    run: Run,
    epoch: int,
    state: dict[str, Any],
    best: dict[str, torch.Tensor] | None,
) -> None:
    """Commit ``epoch`` in the background: state, trained parameters, optimizer, kept checkpoint
    (``best`` None: unchanged)."""
    trained = {id(p) for p in run.optimizer.state}
    state["scaler"] = run.scaler.state_dict() if run.scaler is not None else None
    store.save_async(
        epoch,
        dict(state),
        model_tensors(run.model, only=trained),
        cpu_copy(run.optimizer.state_dict()),
        best,
    )


def _abandon(store: ResumeStore, tensorboard: TensorBoardLog) -> None:
    """On any error: keep the last committed epoch for the resume, close the event file."""
    try:
        store.wait()
    except RuntimeError as error:
        LOG.error("%s", error)
    tensorboard.close()


def train_step(run: Run, batch: Batch, log: StepLog, step: int, global_step: int) -> None:
    """One optimisation step on ``batch``; records loss and grad norm without a sync."""
    with run.precision.autocast(run.device):
        pred = run.forward(batch.inputs, batch.mask)
    loss = masked_mse(pred, batch.target, batch.mask)
    optimizer, scaler = run.optimizer, run.scaler
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    grad_norm = clip_gradients(run.freezing.trainable, run.cfg.grad_clip)
    set_learning_rates(optimizer, run.schedule, global_step)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    log.record(step, loss, grad_norm)


def train_epoch(
    run: Run, epoch: int, progress: Progress | None = None
) -> tuple[dict[str, Any], MetricResult]:
    """Train ``steps_per_epoch`` steps, validate, and return the metrics.csv row (plus train_time_s);
    ``progress`` logs the job's progress line at its steady interval."""
    cfg, steps, scoring = run.cfg, run.steps, run.scoring
    started = time.perf_counter()
    frozen = run.freezing.apply(epoch)
    order, mask_gen = epoch_generators(run, epoch)
    log = StepLog(steps, run.device, check_grad=run.scaler is None)
    run.model.train()
    bar = tqdm(
        total=steps,
        desc=f"epoch {epoch}/{cfg.epochs}",
        file=sys.stderr,
        mininterval=2.0,
        ascii=True,
        dynamic_ncols=False,
    )
    with bar:
        for step, batch in enumerate(epoch_batches(run, order, mask_gen)):
            train_step(run, batch, log, step, (epoch - 1) * steps + step)
            if cfg.inject_failure_at_epoch == epoch:
                raise InjectedFailure(
                    f"injected failure at epoch {epoch} (train.inject_failure_at_epoch, a test-only switch)"
                )
            bar.update(1)
            line = progress.step() if progress is not None else None
            if line is not None:
                LOG.info("%s", line)
            if (step + 1) % LOG_EVERY == 0 or step + 1 == steps:
                bar.set_postfix(loss=f"{log.check(step + 1, epoch, steps):.4g}", refresh=False)
    synchronize(run.device)
    train_time = time.perf_counter() - started
    result = run.evaluate(scoring.val)
    skill = scoring.skill(result, scoring.naive_val)["skill"]
    values = metric_row(result, float("nan") if skill is None else skill, "val")
    bad = [name for name, value in values.items() if not np.isfinite(value)]
    if bad:
        raise NonFiniteError(f"non-finite validation metrics {bad} at epoch {epoch}; the run is stopped")
    train_loss, grad_norm = log.means()
    row = {
        "epoch": epoch,
        "step": epoch * steps,
        "train_loss": train_loss,
        **values,
        "grad_norm": grad_norm,
        "lr": current_lr(run.optimizer, ["new"]),
        "encoder_lr": current_lr(run.optimizer, ["encoder", "encoder_early"]),
        "encoder_frozen": bool(frozen),
        "epoch_time_s": time.perf_counter() - started,
        "samples_per_s": steps * cfg.batch_size / train_time,
        "train_time_s": train_time,
    }
    return row, result


def budget_scores(run: Run, step: int) -> dict[str, float]:
    """The current model (that of ``step``) on the test split: one point of the budget curve.

    Reported along the run, never read by it: the kept checkpoint is chosen on validation.
    """
    scoring = run.scoring
    test, naive = scoring.test_split()
    result = run.evaluate(test)
    skill = scoring.skill(result, naive)["skill"]
    return {
        "budget_test_loss": result.loss,
        "budget_test_skill": float("nan") if skill is None else skill,
    }


def _final_test(
    run: Run, best_tensors: dict[str, torch.Tensor], best_row: dict[str, Any]
) -> tuple[TestScores, dict[str, MetricResult]]:
    """The kept checkpoint's test pass, noted on its metrics.csv row and in the log; with the
    naive baselines on draw 0 (summary.json's naive test losses)."""
    test = score_on_test(run, best_tensors)
    best_row.update(test_loss=test.loss, test_skill=test.skill)
    _log_test(test, int(best_row["epoch"]))
    return test, run.scoring.test_split()[1]


def score_on_test(run: Run, best_tensors: dict[str, torch.Tensor]) -> TestScores:
    """Load the kept checkpoint and score it on the test split under every mask draw, per test
    period, on squared and absolute errors, beside the naive baselines (``final_test``)."""
    scoring, cfg = run.scoring, run.cfg
    restore_model(run.model, best_tensors)
    with run.scoring_mode():
        return final_test_pass(
            scoring.scorer,
            scoring.test_draws(cfg.test_mask_draws),
            lambda _split: run.predict,
            cut_periods(scoring.test_end_times(), cfg.test_periods),
            NaiveChoices(scoring.naive_choice, scoring.naive_choice_mae),
            scoring.groups,
            scoring.channel_names,
        )


def _log_start(run: Run) -> None:
    LOG.info(
        "variant %s, seed %d: %s, task %s, %s normalisation, device %s, precision %s, %d val samples",
        run.variant.name,
        run.seed,
        run.encoder_description,
        run.cfg.task,
        run.cfg.normalisation,
        describe_device(run.device),
        run.precision.name,
        run.scoring.val.n_samples,
    )
    LOG.info("strongest naive per feature group (on validation): %s", run.scoring.naive_choice)


def _log_epoch(run: Run, history: list[dict[str, Any]], state: dict[str, Any], stop: bool) -> None:
    row, best_epoch, epochs = history[-1], state["best_epoch"], run.cfg.epochs
    LOG.info(
        "epoch %d/%d: train_loss %.4g, val_loss %.4g, val_skill %.4f (best val_loss %.4g at "
        "epoch %d), encoder %s, %.1f s, %.0f samples/s",
        row["epoch"],
        epochs,
        row["train_loss"],
        row["val_loss"],
        row["val_skill"],
        history[best_epoch - 1]["val_loss"],
        best_epoch,
        "frozen" if row["encoder_frozen"] else "training",
        row["epoch_time_s"],
        row["samples_per_s"],
    )
    if stop and row["epoch"] < epochs:
        LOG.info("early stopping: no lower validation loss for %d epochs", state["stale"])


def _log_test(test: TestScores, best_epoch: int) -> None:
    LOG.info(
        "test split (%d windows, checkpoint of epoch %d, %d mask draws): skill %.4f (draws %s; price %s, "
        "other %s), MAE skill %.4f, loss %.4g vs strongest naive %.4g",
        test.n_windows,
        best_epoch,
        len(test.draws),
        test.skill,
        ", ".join(f"{draw.skill:.4f}" for draw in test.draws),
        test.skill_price,
        test.skill_other,
        test.skill_mae,
        test.loss,
        test.naive_loss,
    )


def _log_done(summary: RunSummary, history: list[dict[str, Any]]) -> None:
    if summary.test is None:
        LOG.info("done (validation only, no test pass): final val_loss %.4g", history[-1]["val_loss"])
    else:
        LOG.info(
            "done: %s after %d epochs, test skill %.4f", summary.status, len(history), summary.test.skill
        )
