"""Building a run: data sources, evaluation splits, model, freezing, optimizer and schedule.

``Trainer`` holds one variant with one seed on one dataset at step 0 (every weight in
place); ``loop.fit`` trains it. Construction draws every random number of the build in
a fixed order: the encoder and the new layers from the seed, then the fixed validation
masks. Nothing here trains.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from workflow_scripts.data.protocol import DatasetLike
from workflow_scripts.data.timeframes import parse_timeframe
from workflow_scripts.models import loading
from workflow_scripts.training.batches import make_source
from workflow_scripts.training.device import configure_backends, resolve_device
from workflow_scripts.training.evaluation import (
    EvalSplit,
    build_eval_split,
    feature_groups,
    make_scorer,
    skill_scores,
    strongest_naive,
)
from workflow_scripts.training.freezing import encoder_frozen_at, set_encoder_frozen
from workflow_scripts.training.model import ModelShape, build_model, choose_encoder
from workflow_scripts.training.normalisation import Batch
from workflow_scripts.training.optim import Schedule, build_optimizer
from workflow_scripts.training.precision import resolve_precision
from workflow_scripts.training.running_scores import MetricResult

__all__ = ["Trainer"]


class Trainer:
    """One variant with one seed on one dataset, built once; ``loop.fit`` trains it."""

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
        self._build_model(Path(model_dir), load_encoder or loading.load_encoder, experiment_rms)
        self._build_data()

    def _build_model(
        self, model_dir: Path, load_encoder: Callable[..., Any], experiment_rms: float | None
    ) -> None:
        """Encoder, new layers, precision, freezing, optimizer and schedule, in this order."""
        variant, cfg, seed = self.variant, self.cfg, self.seed
        choice = choose_encoder(
            variant.encoder,
            variant.init,
            model_dir,
            seed=seed,
            small_overrides=variant.small_encoder,
            load_encoder=load_encoder,
        )
        if experiment_rms is None and cfg.embedding_scale == "experiment":
            pretrained = variant.encoder == "checkpoint" and variant.init == "pretrained"
            experiment_rms = (
                choice.token_embedding_rms
                if pretrained
                else float(load_encoder(model_dir, "pretrained", seed=seed).token_embedding_rms)
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
        self.trainable: list[torch.nn.Parameter] = []
        self.apply_freeze(1)
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

    def _build_data(self) -> None:
        """The train source, the validation split with its naive baselines, the scorer."""
        cfg, shape = self.cfg, self.shape
        self.bar_ns = [parse_timeframe(tf, "data.timeframes").ns for tf in self.timeframes]
        self.masking = (cfg.mask_ratio, cfg.mask_span, self.bar_ns) if shape.task == "reconstruct" else None
        self.train_source = make_source(
            self.dataset.split("train"),
            self.timeframes,
            shape.seq_len,
            horizon=shape.horizon,
            device=self.device,
            split_name="train",
            bar_ns=self.bar_ns if self.masking is not None else None,
        )
        self.val = self.eval_split("val", cfg.max_eval_batches)
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
        self.budget_results: dict[int, MetricResult] = {}

    def eval_split(self, name: str, max_batches: int | None) -> EvalSplit:
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

    def test_split(self) -> tuple[EvalSplit, dict[str, MetricResult]]:
        """The test split's fixed batches and masks with the naive baselines on them, built once:
        the budget curve and the final test pass score exactly the same windows."""
        if self._test is None:
            test = self.eval_split("test", self.cfg.max_test_batches)
            self._test = test, self.scorer.naive(test)
        return self._test

    def apply_freeze(self, epoch: int) -> bool:
        """Freeze or unfreeze the encoder as ``epoch`` wants; whether it is frozen."""
        frozen = encoder_frozen_at(epoch, self.freeze_epochs) and self.model.encoder is not None
        if frozen != self._frozen:
            set_encoder_frozen(self.model, frozen, self.variant.trainable_while_frozen)
            self._frozen = frozen
            self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        return frozen

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
