"""The learned reference end to end: fit the ridge on train, choose λ on val, score test once.

Scored exactly like a run: the same fixed evaluation masks, window units, metric code and
strongest naive per feature group (chosen on validation), so its skill sits in the same
table as the arms'. The train split's masks are drawn once from their own fixed seed.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from workflow_scripts.config.base import TrainConfig
from workflow_scripts.data.protocol import DatasetLike
from workflow_scripts.data.timeframes import parse_timeframe
from workflow_scripts.training import ridge
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
from workflow_scripts.training.normalisation import Batch

NAME = "ridge on visible neighbours"
DESCRIPTION = (
    "Ridge regression of each masked bar on its visible neighbours (the values on each side, the "
    "interpolations across every timeframe, its place in the gap, the window's visible volatility), "
    "one per timeframe and field, fitted on the train split with λ chosen on validation."
)


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


def fit_reference(dataset: DatasetLike, cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """The reference's summary: validation and test skill (overall, per group, per channel), λ."""
    if cfg.task != "reconstruct":
        raise ValueError(f"the ridge reference is defined for task reconstruct, not {cfg.task!r}")
    timeframes = tuple(dataset.timeframes)
    bar_ns = [parse_timeframe(tf, "data.timeframes").ns for tf in timeframes]
    scorer = make_scorer(
        dataset, task="reconstruct", horizon=0, normalisation=cfg.normalisation, device=device, bar_ns=bar_ns
    )

    def split(name: str, max_batches: int | None) -> EvalSplit:
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
        )

    train, val, test = (
        split("train", None),
        split("val", cfg.max_eval_batches),
        split("test", cfg.max_test_batches),
    )
    train_cells, val_cells = collect_cells(scorer, train), collect_cells(scorer, val)
    fits, lambdas = [], []
    for c in range(len(train_cells.features)):
        fit, _losses = ridge.choose_lambda(
            (train_cells.features[c], train_cells.targets[c]), (val_cells.features[c], val_cells.targets[c])
        )
        fits.append(fit)
        lambdas.append(fit.lam)
    features = list(dataset.feature_names)
    groups = feature_groups(len(timeframes), features)
    names = [f"{tf}.{name}" for tf in timeframes for name in features]
    naive_val = scorer.naive(val)
    choice = strongest_naive(naive_val, groups)

    def predict(batch: Batch, idx: torch.Tensor, on: EvalSplit) -> dict[str, torch.Tensor]:
        assert batch.mask is not None
        return {"ridge": ridge.predict_cells(fits, _features(scorer, on, batch, idx), batch.mask)}

    val_result = scorer.score_indexed(val, lambda b, i: predict(b, i, val))["ridge"]
    test_result = scorer.score_indexed(test, lambda b, i: predict(b, i, test))["ridge"]
    naive_test = scorer.naive(test)
    test_scores = skill_scores(test_result, naive_test, choice, groups)
    return {
        "name": NAME,
        "description": DESCRIPTION,
        "features": list(ridge.FEATURES),
        "lambda": dict(zip(names, lambdas, strict=True)),
        "train_cells": int(sum(t.numel() for t in train_cells.targets)),
        "val_skill": _finite(skill_scores(val_result, naive_val, choice, groups)["skill"]),
        "val_loss": val_result.loss,
        "test_skill": _finite(test_scores["skill"]),
        "test_skill_price": _finite(test_scores["skill_price"]),
        "test_loss": test_result.loss,
        "naive_test_loss": test_scores["naive_loss"],
        "strongest_naive": dict(choice),
        "channel_skill": channel_skill(test_result, naive_test, choice, groups, names),
        "n_test_windows": test.n_samples,
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
