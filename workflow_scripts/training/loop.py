"""The training loop: epochs of steps, validation, best checkpoint, early stopping, resume.

Speed rules (issue 7): a step reads nothing back from the device. Loss and gradient
norm stay in device tensors and are read every ``LOG_EVERY`` steps and at the end of
the epoch, which is also when a non-finite value is reported, naming the first step
that produced it. Batches are gathered on the device (``batches``), evaluation runs
under ``torch.inference_mode``, and a frozen encoder has ``requires_grad=False``, so
autograd computes no weight gradients for it.

Reproducibility: all randomness of epoch ``e`` (batch order, masks, dropout) comes
from generators seeded with (seed, e). A run resumed after epoch ``k`` therefore
replays epoch ``k+1`` exactly as an uninterrupted run would, given the model and
optimizer state committed after epoch ``k``.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from workflow_scripts.io_utils import atomic_write_json
from workflow_scripts.training.batches import SplitLike, WindowSource, epoch_order, eval_subset, make_source
from workflow_scripts.training.checkpoint import (
    ResumeState,
    ResumeStore,
    cpu_copy,
    model_tensors,
    restore_model,
    save_weights,
)
from workflow_scripts.training.device import configure_backends, describe_device, resolve_device, synchronize
from workflow_scripts.training.freezing import encoder_frozen_at, set_encoder_frozen
from workflow_scripts.training.masking import sample_span_masks, validation_masks
from workflow_scripts.training.metrics import MetricResult, StreamingMetrics, masked_mse, to_channels
from workflow_scripts.training.model import ModelShape, build_model, choose_encoder, parameter_counts
from workflow_scripts.training.naive import (
    FORECAST_BASELINES,
    RECONSTRUCT_BASELINES,
    forecast_baselines,
    reconstruct_baselines,
    season_length,
)
from workflow_scripts.training.optim import Schedule, build_optimizer, current_lr, set_learning_rates
from workflow_scripts.training.outputs import TensorBoardLog, flatten_hparams, write_metrics_csv
from workflow_scripts.training.precision import resolve_precision

LOG = logging.getLogger(__name__)

#: Steps between reads of the loss from the device (progress bar and non-finite check).
LOG_EVERY = 25


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN or infinite; the message names the epoch and step."""


class InjectedFailure(RuntimeError):
    """Raised by ``train.inject_failure_at_epoch`` (test-only) to simulate a crash."""


class DatasetLike(Protocol):
    """What the loop uses of workflow_scripts.data.derived.DerivedDataset."""

    @property
    def timeframes(self) -> tuple[str, ...]: ...
    @property
    def feature_names(self) -> tuple[str, ...]: ...
    @property
    def seq_len(self) -> int: ...
    def split(self, name: str) -> SplitLike: ...
    def denormalise(self, tf: str, values: np.ndarray, feature_axis: int = -1) -> np.ndarray: ...


@dataclass(frozen=True)
class RunIdentity:
    """Hashes reported in summary.json; ``resume_key`` decides whether saved state may be resumed."""

    config_hash: str
    model_hash: str
    data_hash: str
    resume_key: str


def derived_seed(seed: int, epoch: int, purpose: str) -> int:
    """A 63-bit seed for one purpose in one epoch, independent of every other (seed, epoch, purpose)."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class _StepLog:
    """Per-step loss and gradient norm, kept on the device until a log point reads them."""

    def __init__(self, steps: int, device: torch.device, *, check_grad: bool) -> None:
        self.loss = torch.zeros(steps, device=device)
        self.grad_norm = torch.zeros(steps, device=device)
        self.check_grad = check_grad

    def record(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        self.loss[step] = loss.detach()
        self.grad_norm[step] = grad_norm.detach()

    def check(self, done: int, epoch: int, steps: int) -> float:
        """Raise NonFiniteError at the first non-finite step of ``[0, done)``; return their mean loss."""
        loss = self.loss[:done].cpu()
        norm = self.grad_norm[:done].cpu()
        finite = torch.isfinite(loss) & (torch.isfinite(norm) if self.check_grad else True)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0])
            what, value = (
                ("loss", loss[first]) if not torch.isfinite(loss[first]) else ("gradient norm", norm[first])
            )
            global_step = (epoch - 1) * steps + first + 1
            raise NonFiniteError(
                f"non-finite training {what} ({float(value)}) at epoch {epoch}, step {first + 1} of {steps} "
                f"(global step {global_step}); the run is stopped. Lower the learning rate, use bf16 or "
                "fp32 instead of fp16, or check the input data for NaN/inf."
            )
        return float(loss.mean())

    def means(self) -> tuple[float, float]:
        """(mean loss, mean finite gradient norm) over the epoch."""
        loss = self.loss.cpu().double()
        norm = self.grad_norm.cpu().double()
        finite = torch.isfinite(norm)
        return float(loss.mean()), float(norm[finite].mean()) if bool(finite.any()) else 0.0


class Trainer:
    """One variant with one seed on one dataset: build once, then ``fit``."""

    def __init__(
        self,
        variant: Any,
        seed: int,
        dataset: DatasetLike,
        model_dir: Path,
        *,
        patch_len: int,
        load_encoder: Callable[..., Any] | None = None,
        device: torch.device | None = None,
    ) -> None:
        if load_encoder is None:
            from workflow_scripts.models import loading

            load_encoder = loading.load_encoder
        self.variant = variant
        self.cfg = cfg = variant.train
        self.seed = seed
        self.dataset = dataset
        self.device = device or resolve_device(cfg.device)
        configure_backends(self.device)
        self.timeframes = tuple(dataset.timeframes)
        self.n_features = len(dataset.feature_names)
        self.shape = ModelShape(
            n_timeframes=len(self.timeframes),
            n_features=self.n_features,
            seq_len=int(dataset.seq_len),
            patch_len=int(patch_len),
            task=cfg.task,
            horizon=cfg.horizon if cfg.task == "forecast" else 0,
        )
        self.shape.validate()
        choice = choose_encoder(
            variant.encoder,
            variant.init,
            Path(model_dir),
            seed=seed,
            small_overrides=variant.small_encoder,
            load_encoder=load_encoder,
        )
        self.encoder_description = choice.description
        self.precision = resolve_precision(
            cfg.precision, self.device, model_type=choice.model_type, force_fp16=cfg.force_fp16
        )
        self.model = build_model(self.shape, choice, embedding_scale=cfg.embedding_scale, seed=seed).to(
            self.device
        )
        self.steps = cfg.steps_per_epoch
        self.freeze_epochs = min(variant.freeze_epochs, cfg.epochs)
        self.schedule = Schedule(cfg.epochs * self.steps, cfg.warmup_steps, cfg.min_lr_ratio)
        self._frozen: bool | None = None
        self._trainable: list[torch.nn.Parameter] = []
        self._apply_freeze(1)
        self.optimizer = build_optimizer(
            self.model,
            learning_rate=cfg.learning_rate,
            encoder_learning_rate=cfg.encoder_learning_rate,
            weight_decay=cfg.weight_decay,
            unfreeze_step=self.freeze_epochs * self.steps,
            trainable_while_frozen=variant.trainable_while_frozen,
            fused=self.device.type == "cuda",
        )
        self.scaler = self.precision.grad_scaler(self.device)
        self.forward: Callable[..., torch.Tensor] = torch.compile(self.model) if cfg.compile else self.model
        self._build_data()

    # ------------------------------------------------------------------ data

    def _build_data(self) -> None:
        cfg, shape = self.cfg, self.shape
        self.train_source = make_source(
            self.dataset.split("train"),
            self.timeframes,
            shape.seq_len,
            horizon=shape.horizon,
            device=self.device,
            split_name="train",
        )
        val_split = self.dataset.split("val")
        self.val_source = make_source(
            val_split,
            self.timeframes,
            shape.seq_len,
            horizon=shape.horizon,
            device=self.device,
            split_name="val",
        )
        subset = eval_subset(self.val_source.n_samples, cfg.eval_batch_size, cfg.max_eval_batches)
        masks = None
        if shape.task == "reconstruct":
            all_masks = validation_masks(len(val_split.ends), shape.seq_len, cfg.mask_ratio, cfg.mask_span)
            masks = all_masks[torch.from_numpy(self.val_source.sample_ids[subset])]
        self.val_batches: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        for start in range(0, len(subset), cfg.eval_batch_size):
            idx = torch.from_numpy(subset[start : start + cfg.eval_batch_size]).to(self.val_source.storage)
            mask = None if masks is None else masks[start : start + cfg.eval_batch_size].to(self.device)
            self.val_batches.append((idx, mask))
        self.val_samples = len(subset)
        self.price_scale = np.concatenate(
            [
                np.abs(
                    self.dataset.denormalise(tf, np.ones((1, self.n_features)))
                    - self.dataset.denormalise(tf, np.zeros((1, self.n_features)))
                )[0]
                for tf in self.timeframes
            ]
        )
        train_times = getattr(self.dataset.split("train"), "times", {}) or {}
        self.seasons = [
            season_length(tf, shape.seq_len, max(1, shape.horizon), train_times.get(tf))
            for tf in self.timeframes
        ]

    # ------------------------------------------------------------------ steps

    def _apply_freeze(self, epoch: int) -> bool:
        frozen = encoder_frozen_at(epoch, self.freeze_epochs) and self.model.encoder is not None
        if frozen != self._frozen:
            set_encoder_frozen(self.model, frozen, self.variant.trainable_while_frozen)
            self._frozen = frozen
            self._trainable = [p for p in self.model.parameters() if p.requires_grad]
        return frozen

    def _batch(self, source: WindowSource, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input windows, target) of samples ``idx``: the windows themselves, or the next bars."""
        windows = source.windows(idx)
        target = windows if self.shape.task == "reconstruct" else source.targets(idx)
        return windows, target

    def train_step(
        self, idx: torch.Tensor, mask_generator: torch.Generator, log: _StepLog, step: int, global_step: int
    ) -> None:
        """One optimisation step on samples ``idx``; records loss and grad norm without a sync."""
        cfg = self.cfg
        windows, target = self._batch(self.train_source, idx)
        mask = None
        if self.shape.task == "reconstruct":
            mask = sample_span_masks(
                windows.shape[0],
                self.shape.seq_len,
                cfg.mask_ratio,
                cfg.mask_span,
                generator=mask_generator,
                device=self.device,
            )
        with self.precision.autocast(self.device):
            pred = self.forward(windows, mask)
        loss = masked_mse(pred, target, mask)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if cfg.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self._trainable, cfg.grad_clip)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self._trainable if p.grad is not None])
        set_learning_rates(self.optimizer, self.schedule, global_step)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        log.record(step, loss, grad_norm)

    def _epoch_generators(self, epoch: int) -> tuple[torch.Tensor, torch.Generator]:
        torch.manual_seed(derived_seed(self.seed, epoch, "dropout"))
        order_gen = torch.Generator(device="cpu").manual_seed(derived_seed(self.seed, epoch, "order"))
        order = epoch_order(self.train_source.n_samples, self.steps, self.cfg.batch_size, order_gen)
        if self.train_source.storage.type == "cuda":
            order = order.pin_memory()
        order = order.to(self.train_source.storage, non_blocking=True)
        mask_gen = torch.Generator(device=self.device).manual_seed(derived_seed(self.seed, epoch, "mask"))
        return order, mask_gen

    def train_epoch(self, epoch: int) -> tuple[dict[str, Any], MetricResult]:
        """Train ``steps_per_epoch`` steps, validate, and return the metrics.csv row (plus train_time_s)."""
        cfg = self.cfg
        started = time.perf_counter()
        frozen = self._apply_freeze(epoch)
        order, mask_gen = self._epoch_generators(epoch)
        log = _StepLog(self.steps, self.device, check_grad=self.scaler is None)
        self.model.train()
        bar = tqdm(
            total=self.steps,
            desc=f"epoch {epoch}/{cfg.epochs}",
            file=sys.stderr,
            mininterval=2.0,
            ascii=True,
            dynamic_ncols=False,
        )
        with bar:
            for step in range(self.steps):
                self.train_step(order[step], mask_gen, log, step, (epoch - 1) * self.steps + step)
                if cfg.inject_failure_at_epoch == epoch:
                    raise InjectedFailure(
                        f"injected failure at epoch {epoch} "
                        "(train.inject_failure_at_epoch, a test-only switch)"
                    )
                bar.update(1)
                if (step + 1) % LOG_EVERY == 0 or step + 1 == self.steps:
                    bar.set_postfix(loss=f"{log.check(step + 1, epoch, self.steps):.4g}", refresh=False)
        synchronize(self.device)
        train_time = time.perf_counter() - started
        result = self.evaluate()
        values = result.as_dict()
        bad = [name for name, value in values.items() if not np.isfinite(value)]
        if bad:
            raise NonFiniteError(f"non-finite validation metrics {bad} at epoch {epoch}; the run is stopped")
        train_loss, grad_norm = log.means()
        epoch_time = time.perf_counter() - started
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            **values,
            "grad_norm": grad_norm,
            "lr": current_lr(self.optimizer, ["new"]),
            "encoder_lr": current_lr(self.optimizer, ["encoder", "encoder_early"]),
            "encoder_frozen": bool(frozen),
            "epoch_time_s": epoch_time,
            "samples_per_s": self.steps * cfg.batch_size / train_time,
            "train_time_s": train_time,
        }
        return row, result

    # ------------------------------------------------------------------ evaluation

    def _score(
        self, predict: Callable[[torch.Tensor, torch.Tensor | None], dict[str, torch.Tensor]]
    ) -> dict[str, MetricResult]:
        """Run ``predict`` over the validation batches; metrics per returned name."""
        n_channels = self.shape.n_timeframes * self.n_features
        metrics: dict[str, StreamingMetrics] = {}
        with torch.inference_mode():
            for idx, mask in self.val_batches:
                windows, target = self._batch(self.val_source, idx)
                weight = None if mask is None else mask.reshape(-1)
                target_channels = to_channels(target)
                for name, pred in predict(windows, mask).items():
                    tracker = metrics.setdefault(name, StreamingMetrics(n_channels, self.device))
                    tracker.update(to_channels(pred.float()), target_channels, weight)
        return {name: tracker.result(self.price_scale) for name, tracker in metrics.items()}

    def evaluate(self) -> MetricResult:
        """The model's metrics on the validation windows (masked positions only for reconstruct)."""
        self.model.eval()

        def predict(windows: torch.Tensor, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
            with self.precision.autocast(self.device):
                return {"model": self.forward(windows, mask)}

        try:
            return self._score(predict)["model"]
        finally:
            self.model.train()

    def naive_baselines(self) -> dict[str, dict[str, float]]:
        """Naive baselines on exactly the validation windows and masks of ``evaluate``."""
        if self.shape.task == "reconstruct":

            def predict(windows: torch.Tensor, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
                assert mask is not None  # reconstruct batches always carry their masks
                return reconstruct_baselines(windows, mask)

            results = self._score(predict)
            names = RECONSTRUCT_BASELINES
        else:
            results = self._score(lambda w, m: forecast_baselines(w, self.shape.horizon, self.seasons))
            names = FORECAST_BASELINES
        return {
            name: {
                "val_correlation": results[name].correlation,
                "val_loss": results[name].loss,
                "val_mae": results[name].mae,
            }
            for name in names
        }

    # ------------------------------------------------------------------ the run

    def _restore(self, restored: ResumeState) -> None:
        restore_model(self.model, restored.model)
        self.optimizer.load_state_dict(restored.optimizer)
        scaler_state = restored.state.get("scaler")
        if self.scaler is not None and scaler_state:
            self.scaler.load_state_dict(scaler_state)

    def fit(
        self, out_dir: Path, tensorboard_dir: Path, resume_dir: Path, identity: RunIdentity
    ) -> dict[str, Any]:
        """Train every epoch (resuming committed ones), write the outputs, return summary.json's content."""
        started = time.perf_counter()
        cfg = self.cfg
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        store = ResumeStore(Path(resume_dir), identity.resume_key)
        history: list[dict[str, Any]] = []
        best_epoch = 0
        stale = 0
        finished = False
        runtime_before = 0.0
        best_tensors: dict[str, torch.Tensor] | None = None
        resumed_from: int | None = None
        restored = store.load()
        if restored is not None:
            self._restore(restored)
            history = restored.state["history"]
            best_epoch = restored.state["best_epoch"]
            stale = restored.state["stale"]
            finished = restored.state["finished"]
            runtime_before = restored.state["runtime_s"]
            best_tensors = restored.best
            resumed_from = restored.epoch
            LOG.info("resuming from epoch %d (the last completed epoch of %d)", restored.epoch, cfg.epochs)
        LOG.info(
            "variant %s, seed %d: %s, %s, device %s, precision %s, %d val samples",
            self.variant.name,
            self.seed,
            self.encoder_description,
            f"task {cfg.task}",
            describe_device(self.device),
            self.precision.name,
            self.val_samples,
        )
        naive = self.naive_baselines()
        for name, values in naive.items():
            LOG.info(
                "naive baseline %s: val_correlation %.4f, val_loss %.4g", name, *list(values.values())[:2]
            )
        tensorboard = TensorBoardLog(Path(tensorboard_dir))
        try:
            for row in history:
                tensorboard.epoch(row, naive)
            epoch = len(history) + 1
            while not finished and epoch <= cfg.epochs:
                if epoch == self.freeze_epochs + 1 and self.freeze_epochs > 0:
                    stale = 0  # patience restarts when the encoder is unfrozen
                row, _result = self.train_epoch(epoch)
                history.append(row)
                improved = (
                    best_epoch == 0 or row["val_correlation"] > history[best_epoch - 1]["val_correlation"]
                )
                if improved:
                    best_epoch, stale = epoch, 0
                    best_tensors = model_tensors(self.model)
                else:
                    stale += 1
                stop = cfg.early_stopping_patience > 0 and stale >= cfg.early_stopping_patience
                finished = stop or epoch == cfg.epochs
                write_metrics_csv(out_dir / "metrics.csv", history)
                tensorboard.epoch(row, naive)
                LOG.info(
                    "epoch %d/%d: train_loss %.4g, val_loss %.4g, val_correlation %.4f "
                    "(best %.4f at epoch %d), encoder %s, %.1f s, %.0f samples/s",
                    epoch,
                    cfg.epochs,
                    row["train_loss"],
                    row["val_loss"],
                    row["val_correlation"],
                    history[best_epoch - 1]["val_correlation"],
                    best_epoch,
                    "frozen" if row["encoder_frozen"] else "training",
                    row["epoch_time_s"],
                    row["samples_per_s"],
                )
                if stop and epoch < cfg.epochs:
                    LOG.info("early stopping: no improvement for %d epochs", stale)
                trained = {id(p) for p in self.optimizer.state}
                state = {
                    "history": history,
                    "best_epoch": best_epoch,
                    "stale": stale,
                    "finished": finished,
                    "runtime_s": runtime_before + time.perf_counter() - started,
                    "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                }
                store.save_async(
                    epoch,
                    state,
                    model_tensors(self.model, only=trained),
                    cpu_copy(self.optimizer.state_dict()),
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
        summary = self._summary(history, best_epoch, naive, identity, resumed_from, runtime_before, started)
        save_weights(
            out_dir / "best.safetensors",
            best_tensors,
            {
                "variant": self.variant.name,
                "seed": str(self.seed),
                "epoch": str(best_epoch),
                "val_correlation": repr(history[best_epoch - 1]["val_correlation"]),
                "config_hash": identity.config_hash,
            },
        )
        write_metrics_csv(out_dir / "metrics.csv", history)
        atomic_write_json(out_dir / "summary.json", summary)
        tensorboard.hparams(
            {**flatten_hparams(self.variant.to_params()), "seed": self.seed},
            {f"hparam/best_{k}": v for k, v in summary["best"].items()},
        )
        tensorboard.close()
        store.clear()
        LOG.info(
            "done: %s after %d epochs, best val_correlation %.4f at epoch %d",
            summary["status"],
            len(history),
            summary["best"]["val_correlation"],
            best_epoch,
        )
        return summary

    def _summary(
        self,
        history: list[dict[str, Any]],
        best_epoch: int,
        naive: Mapping[str, Mapping[str, float]],
        identity: RunIdentity,
        resumed_from: int | None,
        runtime_before: float,
        started: float,
    ) -> dict[str, Any]:
        cfg = self.cfg
        best, final = history[best_epoch - 1], history[-1]
        self._apply_freeze(len(history))
        train_time = sum(row["train_time_s"] for row in history)
        return {
            "variant": self.variant.name,
            "seed": self.seed,
            "status": "completed" if len(history) == cfg.epochs else "early_stopped",
            "task": cfg.task,
            "epochs_completed": len(history),
            "best_epoch": best_epoch,
            "best": {k: best[k] for k in ("val_correlation", "val_loss", "val_mae", "val_mae_price")},
            "final": {
                k: final[k] for k in ("train_loss", "val_correlation", "val_loss", "val_mae", "val_mae_price")
            },
            "naive_baselines": {name: dict(values) for name, values in naive.items()},
            "runtime_s": runtime_before + time.perf_counter() - started,
            "samples_per_s": len(history) * self.steps * cfg.batch_size / train_time
            if train_time > 0
            else 0.0,
            **parameter_counts(self.model),
            "device": describe_device(self.device),
            "precision": self.precision.name,
            "resumed_from_epoch": resumed_from,
            "config_hash": identity.config_hash,
            "model_hash": identity.model_hash,
            "data_hash": identity.data_hash,
            "description": self.variant.description,
        }


# ---------------------------------------------------------------------- benchmark hooks


def make_step_fn(trainer: Trainer, epoch: int = 1) -> Callable[[], None]:
    """One call = one training step of the project loop (gather, mask, forward, backward,
    clip, schedule, AdamW, on-device bookkeeping), as ``train_epoch`` runs it.

    For ``workflow_scripts.bench``: time it against ``make_bare_step_fn`` (synchronise
    the device around the timed calls, e.g. with ``time_steps``).
    """
    trainer._apply_freeze(epoch)
    trainer.model.train()
    order, mask_gen = trainer._epoch_generators(epoch)
    log = _StepLog(trainer.steps, trainer.device, check_grad=trainer.scaler is None)
    counter = itertools.count()

    def step() -> None:
        i = next(counter) % trainer.steps
        trainer.train_step(order[i], mask_gen, log, i, (epoch - 1) * trainer.steps + i)

    return step


def make_bare_step_fn(trainer: Trainer, epoch: int = 1) -> Callable[[], None]:
    """One call = the same model, batch size and precision in a bare PyTorch step.

    The batch is built once and stays on the device; the step is forward, MSE on the
    masked positions, backward and AdamW, with nothing else.
    """
    trainer._apply_freeze(epoch)
    trainer.model.train()
    order, mask_gen = trainer._epoch_generators(epoch)
    windows, target = trainer._batch(trainer.train_source, order[0])
    mask = None
    if trainer.shape.task == "reconstruct":
        cfg = trainer.cfg
        mask = sample_span_masks(
            windows.shape[0], trainer.shape.seq_len, cfg.mask_ratio, cfg.mask_span, generator=mask_gen
        )
    model, optimizer, scaler, precision, device = (
        trainer.forward,
        trainer.optimizer,
        trainer.scaler,
        trainer.precision,
        trainer.device,
    )

    def step() -> None:
        with precision.autocast(device):
            pred = model(windows, mask)
        loss = masked_mse(pred, target, mask)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    return step


def time_steps(step: Callable[[], None], device: torch.device, *, warmup: int = 3, iters: int = 20) -> float:
    """Mean seconds per call of ``step`` after ``warmup`` calls, with the device synchronised."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(iters):
        step()
    synchronize(device)
    return (time.perf_counter() - started) / iters
