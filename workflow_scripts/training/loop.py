"""The training loop: epochs of steps, validation, best checkpoint, early stopping, resume.

Each step masks a stretch of time in every timeframe (``masking``), scales each window
by its visible bars (``normalisation``) and minimises the MSE of the masked bars in
those window units. After each epoch the model is scored on the validation split; the
kept checkpoint is the epoch with the lowest validation loss, and only that checkpoint
is scored, once, on the test split (``evaluation``).

Speed rules (issue 7): a step reads nothing back from the device (``steplog``).
Batches are gathered on the device (``batches``), evaluation runs under
``torch.inference_mode``, and a frozen encoder has ``requires_grad=False``, so autograd
computes no weight gradients for it.

Reproducibility: all randomness of epoch ``e`` (batch order, masks, dropout) comes
from generators seeded with (seed, e). A run resumed after epoch ``k`` therefore
replays epoch ``k+1`` exactly as an uninterrupted run would, given the model and
optimizer state committed after epoch ``k``.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from workflow_scripts.data.protocol import DatasetLike
from workflow_scripts.data.timeframes import parse_timeframe
from workflow_scripts.training.batches import epoch_order, make_source
from workflow_scripts.training.device import configure_backends, resolve_device, synchronize
from workflow_scripts.training.evaluation import (
    EvalSplit,
    build_eval_split,
    channel_skill,
    feature_groups,
    make_scorer,
    metric_row,
    skill_scores,
    strongest_naive,
)
from workflow_scripts.training.freezing import encoder_frozen_at, set_encoder_frozen
from workflow_scripts.training.masking import owner_span_masks
from workflow_scripts.training.model import ModelShape, build_model, choose_encoder
from workflow_scripts.training.normalisation import Batch, make_batch
from workflow_scripts.training.optim import Schedule, build_optimizer, current_lr, set_learning_rates
from workflow_scripts.training.precision import resolve_precision
from workflow_scripts.training.resume import (
    restore_model,
)
from workflow_scripts.training.steplog import LOG_EVERY, NonFiniteError, StepLog
from workflow_scripts.training.streaming_metrics import MetricResult, masked_mse

LOG = logging.getLogger(__name__)

__all__ = ["InjectedFailure", "NonFiniteError", "RunIdentity", "Trainer", "derived_seed"]


class InjectedFailure(RuntimeError):
    """Raised by ``train.inject_failure_at_epoch`` (test-only) to simulate a crash."""


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
        experiment_rms: float | None = None,
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
            tokens=cfg.tokens,
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
        if experiment_rms is None and cfg.embedding_scale == "experiment":
            pretrained = variant.encoder == "checkpoint" and variant.init == "pretrained"
            experiment_rms = (
                choice.token_embedding_rms
                if pretrained
                else float(load_encoder(Path(model_dir), "pretrained", seed=seed).token_embedding_rms)
            )
        self.encoder_description = choice.description
        self.precision = resolve_precision(
            cfg.precision, self.device, model_type=choice.model_type, force_fp16=cfg.force_fp16
        )
        self.model = build_model(
            self.shape, choice, embedding_scale=cfg.embedding_scale, seed=seed, experiment_rms=experiment_rms
        ).to(self.device)
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
        self.bar_ns = [parse_timeframe(tf, "data.timeframes").ns for tf in self.timeframes]
        self.masking = (cfg.mask_ratio, cfg.mask_span, self.bar_ns) if shape.task == "reconstruct" else None
        train_split = self.dataset.split("train")
        self.train_source = make_source(
            train_split,
            self.timeframes,
            shape.seq_len,
            horizon=shape.horizon,
            device=self.device,
            split_name="train",
            bar_ns=self.bar_ns if self.masking is not None else None,
        )
        self.val = self._eval_split("val", cfg.max_eval_batches)
        features = list(self.dataset.feature_names)
        self.groups = feature_groups(len(self.timeframes), features)
        self.channel_names = [f"{tf}.{name}" for tf in self.timeframes for name in features]
        self.scorer = make_scorer(
            self.dataset,
            task=shape.task,
            horizon=shape.horizon,
            normalisation=cfg.normalisation,
            device=self.device,
            bar_ns=self.bar_ns if self.masking is not None else None,
        )
        self.naive_val = self.scorer.naive(self.val)
        self.naive_choice = strongest_naive(self.naive_val, self.groups)
        self.budget_steps = frozenset(cfg.budget_steps())
        self._test: tuple[EvalSplit, dict[str, MetricResult]] | None = None
        #: the budget curve's test results by step, so the final pass of a kept checkpoint that
        #: is a budget's model reuses its score instead of running the same pass again
        self._budget_results: dict[int, MetricResult] = {}

    def test_split(self) -> tuple[EvalSplit, dict[str, MetricResult]]:
        """The test split's fixed batches and masks with the naive baselines on them, built once:
        the budget curve and the final test pass score exactly the same windows."""
        if self._test is None:
            test = self._eval_split("test", self.cfg.max_test_batches)
            self._test = test, self.scorer.naive(test)
        return self._test

    def _eval_split(self, name: str, max_batches: int | None) -> EvalSplit:
        return build_eval_split(
            name,
            self.dataset.split(name),
            self.timeframes,
            seq_len=self.shape.seq_len,
            horizon=self.shape.horizon,
            device=self.device,
            batch_size=self.cfg.eval_batch_size,
            max_batches=max_batches,
            masking=self.masking,
        )

    # ------------------------------------------------------------------ steps

    def _apply_freeze(self, epoch: int) -> bool:
        frozen = encoder_frozen_at(epoch, self.freeze_epochs) and self.model.encoder is not None
        if frozen != self._frozen:
            set_encoder_frozen(self.model, frozen, self.variant.trainable_while_frozen)
            self._frozen = frozen
            self._trainable = [p for p in self.model.parameters() if p.requires_grad]
        return frozen

    def train_batch(self, idx: torch.Tensor, mask_generator: torch.Generator) -> Batch:
        """Training samples ``idx`` with fresh leak-free masks, in window units.

        The step's only random work is here: the mask draws (on the model's device). The
        bars' owners were computed with the source; the windows are one gather.
        """
        cfg, source = self.cfg, self.train_source
        mask = None
        if self.masking is not None:
            mask = owner_span_masks(
                source.owner_index(idx),
                source.seq_len,
                cfg.mask_ratio,
                cfg.mask_span,
                self.bar_ns,
                generator=mask_generator,
            )
        future = source.targets(idx) if self.shape.task == "forecast" else None
        return make_batch(source.windows(idx), mask, future, cfg.normalisation)

    def train_step(
        self, idx: torch.Tensor, mask_generator: torch.Generator, log: StepLog, step: int, global_step: int
    ) -> None:
        """One optimisation step on samples ``idx``; records loss and grad norm without a sync."""
        cfg = self.cfg
        batch = self.train_batch(idx, mask_generator)
        with self.precision.autocast(self.device):
            pred = self.forward(batch.inputs, batch.mask)
        loss = masked_mse(pred, batch.target, batch.mask)
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

    def epoch_generators(self, epoch: int) -> tuple[torch.Tensor, torch.Generator]:
        """(sample order ``[steps, batch]``, mask generator) of ``epoch``, from (seed, epoch) only."""
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
        order, mask_gen = self.epoch_generators(epoch)
        log = StepLog(self.steps, self.device, check_grad=self.scaler is None)
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
        result = self.evaluate(self.val)
        skill = self.skill(result, self.naive_val)["skill"]
        values = metric_row(result, float("nan") if skill is None else skill, "val")
        bad = [name for name, value in values.items() if not np.isfinite(value)]
        if bad:
            raise NonFiniteError(f"non-finite validation metrics {bad} at epoch {epoch}; the run is stopped")
        train_loss, grad_norm = log.means()
        row = {
            "epoch": epoch,
            "step": epoch * self.steps,
            "train_loss": train_loss,
            **values,
            "grad_norm": grad_norm,
            "lr": current_lr(self.optimizer, ["new"]),
            "encoder_lr": current_lr(self.optimizer, ["encoder", "encoder_early"]),
            "encoder_frozen": bool(frozen),
            "epoch_time_s": time.perf_counter() - started,
            "samples_per_s": self.steps * cfg.batch_size / train_time,
            "train_time_s": train_time,
        }
        return row, result

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, split: EvalSplit) -> MetricResult:
        """The model's metrics on ``split`` (masked positions only for reconstruct), in window units."""
        self.model.eval()

        def predict(batch: Batch) -> dict[str, torch.Tensor]:
            with self.precision.autocast(self.device):
                return {"model": self.forward(batch.inputs, batch.mask)}

        try:
            return self.scorer.score(split, predict)["model"]
        finally:
            self.model.train()

    def skill(self, result: MetricResult, naive: dict[str, MetricResult]) -> dict[str, float | None]:
        """Skill of ``result`` against the strongest naive predictor chosen on validation."""
        return skill_scores(result, naive, self.naive_choice, self.groups)

    def budget_scores(self, step: int) -> dict[str, float]:
        """The current model (that of ``step``) on the test split: one point of the budget curve.

        Reported along the run, never read by it: the kept checkpoint is chosen on validation.
        """
        test, naive = self.test_split()
        result = self._budget_results[step] = self.evaluate(test)
        skill = self.skill(result, naive)["skill"]
        return {
            "budget_test_loss": result.loss,
            "budget_test_skill": float("nan") if skill is None else skill,
        }

    def test_pass(
        self, best_tensors: dict[str, torch.Tensor], step: int | None = None
    ) -> tuple[dict[str, Any], dict[str, MetricResult]]:
        """Load the kept checkpoint and score it once on the test split (with the naive baselines).

        ``step``: the kept checkpoint's step; when this run scored that step for the budget
        curve (same model, same masks), that result is the test pass.
        """
        restore_model(self.model, best_tensors)
        test, naive = self.test_split()
        cached = self._budget_results.get(step) if step is not None else None
        result = cached if cached is not None else self.evaluate(test)
        scores = self.skill(result, naive)
        return {
            "loss": result.loss,
            "correlation": result.correlation,
            "mae": result.mae,
            **scores,
            "n_windows": test.n_samples,
            "strongest_naive": dict(self.naive_choice),
            "channel_skill": channel_skill(result, naive, self.naive_choice, self.groups, self.channel_names),
        }, naive

    def fit(
        self,
        out_dir: Path,
        tensorboard_dir: Path,
        resume_dir: Path,
        identity: RunIdentity,
        *,
        with_test: bool = True,
    ) -> dict[str, Any]:
        """Train every epoch (resuming committed ones), score the kept checkpoint on test (unless
        ``with_test`` is False: a tuning run), write outputs."""
        from workflow_scripts.training.run import fit

        return fit(
            self, Path(out_dir), Path(tensorboard_dir), Path(resume_dir), identity, with_test=with_test
        )
