"""The learned reference end to end: fit the ridge on train, choose λ on val, score test once.

Scored exactly like a run, through the runs' own ``Scorer``: the same fixed evaluation
masks, window units, metric code and strongest naive per feature group (chosen on
validation), so its skill sits in the same table as the arms'. The train split's masks
are drawn once from their own fixed seed.

The fit (``fit_ridges``) and the scoring (``score``) are apart: a fitted reference scores
any ``EvalSplit``, so scoring the arms under other mask draws or per test sub-period scores
it the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workflow_scripts.config.base import TrainConfig
from workflow_scripts.data.protocol import DatasetLike
from workflow_scripts.data.timeframes import parse_timeframe
from workflow_scripts.jobs.typed_json import encode
from workflow_scripts.training import ridge
from workflow_scripts.training.evaluation import (
    EvalSplit,
    MetricResult,
    Scorer,
    build_eval_split,
    feature_groups,
    make_scorer,
    skill_scores,
    strongest_naive,
)
from workflow_scripts.training.final_test import (
    NaiveChoices,
    cut_periods,
    final_test_pass,
    strongest_naive_mae,
)
from workflow_scripts.training.normalisation import Batch

NAME = "ridge on visible neighbours"
DESCRIPTION = (
    "Ridge regression of each masked bar on its visible neighbours (every field of the visible bar "
    "on each side: open, high, low, close and range; the interpolations across every timeframe; its "
    "place in the gap; the window's visible volatility), one per timeframe and field, fitted on the "
    "train split with λ chosen on validation."
)

#: The name the reference's predictions carry through ``Scorer.score_indexed``.
PREDICTION = "ridge"


@dataclass(frozen=True)
class ReferenceFit:
    """The fitted reference: one ridge per channel (timeframe-major, as ``to_channels``)."""

    fits: tuple[ridge.RidgeFit, ...]
    feature_names: tuple[str, ...]
    train_cells: int

    @property
    def lambdas(self) -> list[float]:
        return [fit.lam for fit in self.fits]


def _features(scorer: Scorer, split: EvalSplit, batch: Batch, idx: torch.Tensor) -> torch.Tensor:
    if scorer.to_prices is None or scorer.ohlc_columns is None or scorer.bar_ns is None:
        raise ValueError("the ridge reference needs OHLC prices with bar times (data.kind ohlc)")
    return ridge.cell_features(
        batch,
        to_prices=scorer.to_prices,
        ohlc_columns=scorer.ohlc_columns,
        open_times=split.source.window_times(idx),
        bar_ns=scorer.bar_ns,
    )


def collect_cells(scorer: Scorer, split: EvalSplit) -> ridge.Cells:
    """Every masked cell of ``split``, per channel."""
    parts = []
    with torch.inference_mode():
        for batch, idx in scorer.batches(split):
            assert batch.mask is not None
            parts.append(ridge.masked_cells(_features(scorer, split, batch, idx), batch.target, batch.mask))
    return ridge.concat(parts)


def fit_ridges(scorer: Scorer, train: EvalSplit, val: EvalSplit, fields: tuple[str, ...]) -> ReferenceFit:
    """One ridge per channel on ``train``'s masked cells, λ chosen on ``val``'s."""
    train_cells, val_cells = collect_cells(scorer, train), collect_cells(scorer, val)
    fits = tuple(
        ridge.choose_lambda((x, y), (val_x, val_y))[0]
        for x, y, val_x, val_y in zip(
            train_cells.features, train_cells.targets, val_cells.features, val_cells.targets, strict=True
        )
    )
    return ReferenceFit(fits, ridge.feature_names(fields), int(sum(t.numel() for t in train_cells.targets)))


def predictor(
    scorer: Scorer, fit: ReferenceFit, split: EvalSplit, name: str = PREDICTION
) -> Callable[[Batch, torch.Tensor], dict[str, torch.Tensor]]:
    """The reference as a ``Scorer.score_indexed`` prediction on ``split``, under ``name`` (a pass
    that scores a model as ``"model"`` can score the reference in its place). It reads the
    batch's sample indices: the time interpolation needs the windows' bar times."""

    def predict(batch: Batch, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        assert batch.mask is not None
        return {name: ridge.predict_cells(fit.fits, _features(scorer, split, batch, idx), batch.mask)}

    return predict


def score(scorer: Scorer, fit: ReferenceFit, split: EvalSplit) -> MetricResult:
    """The fitted reference's metrics on ``split`` (any masks the split carries)."""
    return scorer.score_indexed(split, predictor(scorer, fit, split))[PREDICTION]


def fit_reference(dataset: DatasetLike, cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """The reference's summary: validation and test skill (overall, per group, per channel), λ."""
    if cfg.task != "reconstruct":
        raise ValueError(f"the ridge reference is defined for task reconstruct, not {cfg.task!r}")
    timeframes = tuple(dataset.timeframes)
    bar_ns = [parse_timeframe(tf, "data.timeframes").ns for tf in timeframes]
    scorer = make_scorer(
        dataset, task="reconstruct", horizon=0, normalisation=cfg.normalisation, device=device, bar_ns=bar_ns
    )

    def split(name: str, max_batches: int | None, draw: int = 0) -> EvalSplit:
        return build_eval_split(
            name,
            dataset.split(name),
            timeframes,
            seq_len=int(dataset.seq_len),
            horizon=0,
            device=device,
            batch_size=cfg.eval_batch_size,
            max_batches=max_batches,
            masking=(cfg.mask_ratio, cfg.mask_span, bar_ns),
            draw=draw,
        )

    val = split("val", cfg.max_eval_batches)
    fields = tuple(dataset.feature_names)
    fit = fit_ridges(scorer, split("train", None), val, fields)
    groups = feature_groups(len(timeframes), fields)
    names = [f"{tf}.{name}" for tf in timeframes for name in fields]
    naive_val = scorer.naive(val)
    choices = NaiveChoices(strongest_naive(naive_val, groups), strongest_naive_mae(naive_val, groups))
    val_result = score(scorer, fit, val)
    # scored like every arm: the same draws of test masks, the same periods, both metrics
    test = final_test_pass(
        scorer,
        [split("test", cfg.max_test_batches, draw) for draw in range(cfg.test_mask_draws)],
        lambda draw_split: predictor(scorer, fit, draw_split, name="model"),
        cut_periods(np.asarray(dataset.split("test").end_times), cfg.test_periods),
        choices,
        groups,
        names,
    )
    return {
        "name": NAME,
        "description": DESCRIPTION,
        "features": list(fit.feature_names),
        "lambda": dict(zip(names, fit.lambdas, strict=True)),
        "train_cells": fit.train_cells,
        "val_skill": _finite(skill_scores(val_result, naive_val, choices.mse, groups)["skill"]),
        "val_loss": val_result.loss,
        "test_skill": _finite(test.skill),
        "test_skill_price": _finite(test.skill_price),
        "test_skill_mae": _finite(test.skill_mae),
        "test_loss": test.loss,
        "naive_test_loss": test.naive_loss,
        "strongest_naive": dict(choices.mse),
        "channel_skill": test.channel_skill,
        "n_test_windows": test.n_windows,
        "test_draws": [encode(draw) for draw in test.draws],
        "test_periods": [encode(period) for period in test.periods],
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
