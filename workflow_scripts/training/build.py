"""A run at step 0: one variant with one seed on one dataset, every weight in place.

``build_run`` makes the record ``loop.fit`` trains: ``Run`` holds what a training step
reads (model, optimizer, scaler, schedule, precision, freezing, the train source and its
masking) and ``Scoring``, what scores the model (the validation split with its naive
baselines, the test split built on first use, skill against the strongest naive). They
are records, not a trainer: the step, the epoch and the run's state live in ``loop``,
read top to bottom. Construction draws every random number of the build in a fixed
order: the encoder and the new layers from the seed, then the fixed validation masks.
Nothing here trains.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workflow_scripts.config.base import TrainConfig, VariantConfig
from workflow_scripts.data.protocol import DatasetLike
from workflow_scripts.data.timeframes import parse_timeframe
from workflow_scripts.models import loading
from workflow_scripts.training.batches import WindowSource, make_source
from workflow_scripts.training.device import configure_backends, resolve_device
from workflow_scripts.training.evaluation import (
    EvalSplit,
    Scorer,
    build_eval_split,
    channel_skill,
    feature_groups,
    make_scorer,
    skill_scores,
    strongest_naive,
)
from workflow_scripts.training.final_test import strongest_naive_mae
from workflow_scripts.training.freezing import FreezeState
from workflow_scripts.training.model import ModelShape, PatchEncoderModel, build_model, choose_encoder
from workflow_scripts.training.normalisation import Batch
from workflow_scripts.training.optim import Schedule, build_optimizer
from workflow_scripts.training.precision import PrecisionPolicy, resolve_precision
from workflow_scripts.training.running_scores import MetricResult

__all__ = ["Masking", "Run", "Scoring", "build_run"]

#: (mask_ratio, mask_span, bar length per timeframe in ns): how a reconstruct run hides bars.
Masking = tuple[float, int, list[int]]


@dataclass
class Scoring:
    """How a run is scored, built once: every score is against the same fixed windows and masks.

    The strongest naive baseline per feature group is chosen on validation
    (``naive_choice``) and is the yardstick of every skill, on validation and on test. The
    test split is built on first use only, so a tuning run never reads it.
    """

    scorer: Scorer
    val: EvalSplit
    naive_val: dict[str, MetricResult]
    naive_choice: dict[str, str]
    groups: dict[str, list[int]]
    #: ``{timeframe}.{feature}`` per channel, for the test pass's skill per channel
    channel_names: list[str]
    #: the test split under mask draw d (draw 0: the budget curve's), built on first use only
    build_test_draw: Callable[[int], EvalSplit]
    #: the test samples' end times, for the test periods (read only by the final test pass)
    test_end_times: Callable[[], np.ndarray]
    #: the strongest naive per feature group by validation MAE, the yardstick of the MAE skill
    naive_choice_mae: dict[str, str]
    _test: tuple[EvalSplit, dict[str, MetricResult]] | None = field(default=None, init=False, repr=False)

    def test_split(self) -> tuple[EvalSplit, dict[str, MetricResult]]:
        """The test split's fixed batches and masks with the naive baselines on them, built once:
        the budget curve and the final test pass score exactly the same windows."""
        if self._test is None:
            test = self.build_test_draw(0)
            self._test = test, self.scorer.naive(test)
        return self._test

    def test_draws(self, draws: int) -> list[EvalSplit]:
        """The test split under ``draws`` mask draws, draw 0 the one built for the budget curve."""
        return [self.test_split()[0], *(self.build_test_draw(d) for d in range(1, draws))]

    def skill(self, result: MetricResult, naive: dict[str, MetricResult]) -> dict[str, float | None]:
        """Skill of ``result`` against the strongest naive predictor chosen on validation."""
        return skill_scores(result, naive, self.naive_choice, self.groups)

    def channel_skill(self, result: MetricResult, naive: dict[str, MetricResult]) -> dict[str, float | None]:
        """Skill per channel against the naive predictor chosen for its feature group."""
        return channel_skill(result, naive, self.naive_choice, self.groups, self.channel_names)


@dataclass(frozen=True)
class Run:
    """One variant with one seed on one dataset at step 0: what ``loop.fit`` trains.

    The record is fixed; the objects it holds (model, optimizer, scaler, freezing, scoring's
    caches) change in place as the run trains and resumes.
    """

    variant: VariantConfig
    seed: int
    device: torch.device
    precision: PrecisionPolicy
    model: PatchEncoderModel
    #: the model's forward, compiled when ``train.compile`` is on
    forward: Callable[..., torch.Tensor]
    optimizer: torch.optim.AdamW
    scaler: torch.amp.GradScaler | None
    schedule: Schedule
    freezing: FreezeState
    train_source: WindowSource
    #: None for forecast: nothing is hidden, the targets are the bars after the window
    masking: Masking | None
    scoring: Scoring
    #: the encoder in words, for the log
    encoder_description: str

    @property
    def cfg(self) -> TrainConfig:
        return self.variant.train

    @property
    def steps(self) -> int:
        """Optimiser steps per epoch."""
        return self.cfg.steps_per_epoch

    def predict(self, batch: Batch, _idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The model's prediction of ``batch`` in window units, under the run's autocast (``_idx``:
        the sample indices a scorer may pass; the model does not read them)."""
        with self.precision.autocast(self.device):
            return {"model": self.forward(batch.inputs, batch.mask)}

    @contextlib.contextmanager
    def scoring_mode(self) -> Iterator[None]:
        """The model in eval mode for a scoring pass, back in train mode however the pass ends."""
        self.model.eval()
        try:
            yield
        finally:
            self.model.train()

    def evaluate(self, split: EvalSplit) -> MetricResult:
        """The model's metrics on ``split`` (masked positions only for reconstruct), in window units."""
        with self.scoring_mode():
            return self.scoring.scorer.score(split, self.predict)["model"]


def build_run(
    variant: VariantConfig,
    seed: int,
    dataset: DatasetLike,
    model_dir: Path,
    *,
    patch_len: int,
    load_encoder: Callable[..., Any] | None = None,
    device: torch.device | None = None,
    experiment_rms: float | None = None,
) -> Run:
    """Encoder, new layers, precision, freezing, optimizer, schedule, then the data, in this order."""
    cfg = variant.train
    device = device or resolve_device(cfg.device)
    configure_backends(device)
    timeframes = tuple(dataset.timeframes)
    shape = ModelShape(
        n_timeframes=len(timeframes),
        n_features=len(dataset.feature_names),
        seq_len=int(dataset.seq_len),
        patch_len=int(patch_len),
        task=cfg.task,
        horizon=cfg.horizon if cfg.task == "forecast" else 0,
        tokens=cfg.tokens,
    )
    shape.validate()
    model, precision, description = _model(
        variant, seed, shape, Path(model_dir), load_encoder or loading.load_encoder, device, experiment_rms
    )
    schedule = Schedule(cfg.epochs * cfg.steps_per_epoch, cfg.warmup_steps, cfg.min_lr_ratio)
    freezing = FreezeState(model, min(variant.freeze_epochs, cfg.epochs), variant.trainable_while_frozen)
    freezing.apply(1)
    optimizer = build_optimizer(
        model,
        learning_rate=cfg.learning_rate,
        encoder_learning_rate=cfg.encoder_learning_rate,
        weight_decay=cfg.weight_decay,
        unfreeze_step=freezing.epochs * cfg.steps_per_epoch,
        trainable_while_frozen=variant.trainable_while_frozen,
        fused=device.type == "cuda",
    )
    scaler = precision.grad_scaler(device)
    forward: Callable[..., torch.Tensor] = torch.compile(model) if cfg.compile else model
    bar_ns = [parse_timeframe(tf, "data.timeframes").ns for tf in timeframes]
    masking = (cfg.mask_ratio, cfg.mask_span, bar_ns) if shape.task == "reconstruct" else None
    train_source = make_source(
        dataset.split("train"),
        timeframes,
        shape.seq_len,
        horizon=shape.horizon,
        device=device,
        split_name="train",
        bar_ns=bar_ns if masking is not None else None,
    )
    return Run(
        variant=variant,
        seed=seed,
        device=device,
        precision=precision,
        model=model,
        forward=forward,
        optimizer=optimizer,
        scaler=scaler,
        schedule=schedule,
        freezing=freezing,
        train_source=train_source,
        masking=masking,
        scoring=_scoring(dataset, cfg, shape, device, masking),
        encoder_description=description,
    )


def _model(
    variant: VariantConfig,
    seed: int,
    shape: ModelShape,
    model_dir: Path,
    load_encoder: Callable[..., Any],
    device: torch.device,
    experiment_rms: float | None,
) -> tuple[PatchEncoderModel, PrecisionPolicy, str]:
    """The encoder and the new layers from ``seed``, on ``device``; the precision; the encoder in words."""
    cfg = variant.train
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
    precision = resolve_precision(
        cfg.precision, device, model_type=choice.model_type, force_fp16=cfg.force_fp16
    )
    model = build_model(
        shape, choice, embedding_scale=cfg.embedding_scale, seed=seed, experiment_rms=experiment_rms
    ).to(device)
    return model, precision, choice.description


def _scoring(
    dataset: DatasetLike, cfg: TrainConfig, shape: ModelShape, device: torch.device, masking: Masking | None
) -> Scoring:
    """The validation split (its masks drawn now) with its naive baselines; the test split's recipe."""
    timeframes = tuple(dataset.timeframes)
    split = partial(_eval_split, dataset, timeframes, shape, device, cfg.eval_batch_size, masking)
    val = split("val", cfg.max_eval_batches)
    features = list(dataset.feature_names)
    groups = feature_groups(len(timeframes), features)
    scorer = make_scorer(
        dataset,
        task=shape.task,
        horizon=shape.horizon,
        normalisation=cfg.normalisation,
        device=device,
        bar_ns=masking[2] if masking is not None else None,
    )
    naive_val = scorer.naive(val)
    return Scoring(
        scorer=scorer,
        val=val,
        naive_val=naive_val,
        naive_choice=strongest_naive(naive_val, groups),
        groups=groups,
        channel_names=[f"{tf}.{name}" for tf in timeframes for name in features],
        build_test_draw=partial(split, "test", cfg.max_test_batches),
        test_end_times=lambda: np.asarray(dataset.split("test").end_times),
        naive_choice_mae=strongest_naive_mae(naive_val, groups),
    )


def _eval_split(
    dataset: DatasetLike,
    timeframes: Sequence[str],
    shape: ModelShape,
    device: torch.device,
    batch_size: int,
    masking: Masking | None,
    name: str,
    max_batches: int | None,
    draw: int = 0,
) -> EvalSplit:
    """Split ``name`` of ``dataset`` in fixed batches, with its fixed masks (reconstruct; ``draw``
    picks one of the split's independent mask draws)."""
    return build_eval_split(
        name,
        dataset.split(name),
        timeframes,
        seq_len=shape.seq_len,
        horizon=shape.horizon,
        device=device,
        batch_size=batch_size,
        max_batches=max_batches,
        masking=masking,
        draw=draw,
    )
