"""Scoring: evaluation splits, naive baselines, skill, and the one pass over the test split.

* **Units.** Every prediction (model and naive) is scored in window units on the masked
  positions (``normalisation``), with the same streaming metric code.
* **The bar to clear.** For each feature group (prices, other) the naive baseline with
  the lowest validation MSE is chosen; combined, they are the *strongest naive*
  predictor. That choice is made on validation and frozen before the test split is read.
* **Skill** = 1 - MSE(model) / MSE(strongest naive), pooled over the masked cells of a
  group or of all channels: > 0 means better than the best cheap rule, 1 is perfect.
* **The primary number.** The checkpoint is chosen on validation loss, then scored once
  on the **test** split, which selected nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workflow_scripts.data.protocol import DatasetLike
from workflow_scripts.training.batches import SplitLike, WindowSource, eval_subset, make_source
from workflow_scripts.training.masking import evaluation_masks
from workflow_scripts.training.naive import OHLC, forecast_baselines, reconstruct_baselines, season_length
from workflow_scripts.training.normalisation import Batch, make_batch
from workflow_scripts.training.run_contract import CONVERGED_GAIN, BudgetScore
from workflow_scripts.training.running_scores import (
    MetricResult,
    StreamingMetrics,
    cell_weights,
    to_channels,
)

PRICE_GROUP = "price"
OTHER_GROUP = "other"

Predict = Callable[[Batch], dict[str, torch.Tensor]]


def feature_groups(n_timeframes: int, feature_names: Sequence[str]) -> dict[str, list[int]]:
    """Channel indices (timeframe-major, as ``to_channels``) of each non-empty feature group."""
    f = len(feature_names)
    price = [j * f + i for j in range(n_timeframes) for i, name in enumerate(feature_names) if name in OHLC]
    other = [c for c in range(n_timeframes * f) if c not in set(price)]
    return {name: channels for name, channels in ((PRICE_GROUP, price), (OTHER_GROUP, other)) if channels}


def strongest_naive(naive: Mapping[str, MetricResult], groups: Mapping[str, Sequence[int]]) -> dict[str, str]:
    """Per group, the baseline with the lowest pooled MSE (ties: the first in ``naive``'s order)."""
    return {
        group: min(naive, key=lambda name: naive[name].group_mse(channels))
        for group, channels in groups.items()
    }


def skill(model_mse: float, naive_mse: float) -> float:
    """1 - model / naive: 0 = as good as the naive predictor, 1 = perfect, < 0 = worse."""
    if not naive_mse > 0:
        return float("nan")
    return 1.0 - model_mse / naive_mse


def skill_scores(
    model: MetricResult,
    naive: Mapping[str, MetricResult],
    choice: Mapping[str, str],
    groups: Mapping[str, Sequence[int]],
) -> dict[str, float | None]:
    """skill over every channel, per group (``skill_price``, ``skill_other``), and the naive MSE.

    The combined naive predictor uses ``choice[group]`` on that group's channels.
    """
    naive_sse = sum(
        naive[choice[g]].group_mse(channels) * _cells(model, channels) for g, channels in groups.items()
    )
    all_channels = [c for channels in groups.values() for c in channels]
    naive_mse = naive_sse / _cells(model, all_channels)
    scores: dict[str, float | None] = {
        "skill": skill(model.group_mse(all_channels), naive_mse),
        "naive_loss": naive_mse,
    }
    for group in (PRICE_GROUP, OTHER_GROUP):
        channels = groups.get(group)
        scores[f"skill_{group}"] = (
            None
            if not channels
            else skill(model.group_mse(channels), naive[choice[group]].group_mse(channels))
        )
    return scores


def channel_skill(
    model: MetricResult,
    naive: Mapping[str, MetricResult],
    choice: Mapping[str, str],
    groups: Mapping[str, Sequence[int]],
    names: Sequence[str],
) -> dict[str, float | None]:
    """Skill per channel (``"w.close"``: a timeframe and a field) against the strongest naive
    of the channel's group: where the model's headroom lives."""
    scores: dict[str, float | None] = {}
    for group, channels in groups.items():
        for c in channels:
            value = skill(model.group_mse([c]), naive[choice[group]].group_mse([c]))
            scores[names[c]] = value if math.isfinite(value) else None
    return {name: scores[name] for name in names if name in scores}


def _cells(result: MetricResult, channels: Sequence[int]) -> float:
    return sum(result.channel_count[c] for c in channels)


@dataclass
class EvalSplit:
    """A split's windows to score, in fixed batches with fixed masks."""

    name: str
    source: WindowSource
    batches: list[tuple[torch.Tensor, torch.Tensor | None]]

    @property
    def n_samples(self) -> int:
        return sum(int(idx.numel()) for idx, _ in self.batches)


def build_eval_split(
    name: str,
    split: SplitLike,
    timeframes: Sequence[str],
    *,
    seq_len: int,
    horizon: int,
    device: torch.device,
    batch_size: int,
    max_batches: int | None,
    masking: tuple[float, int, Sequence[int]] | None,
    draw: int = 0,
) -> EvalSplit:
    """Batches of ``split`` (all windows, or an evenly spaced subset of ``max_batches``).

    ``masking`` = (mask_ratio, mask_span, bar_ns) for reconstruct: the split's masks are
    drawn once from its fixed seed (``draw`` picks one of its independent draws), the same
    for every run.
    """
    source = make_source(split, timeframes, seq_len, horizon=horizon, device=device, split_name=name)
    subset = torch.from_numpy(eval_subset(source.n_samples, batch_size, max_batches))
    masks = None
    if masking is not None:
        ratio, span, bar_ns = masking
        times = source.window_times(subset.to(source.storage)).cpu()
        masks = evaluation_masks(times, bar_ns, ratio, span, name, draw)
    batches = []
    for start in range(0, len(subset), batch_size):
        idx = subset[start : start + batch_size].to(source.storage)
        mask = None if masks is None else masks[start : start + batch_size].to(device)
        batches.append((idx, mask))
    return EvalSplit(name, source, batches)


@dataclass
class Scorer:
    """Scores predictions on an ``EvalSplit`` in window units (the model's and the naive ones)."""

    task: str
    horizon: int
    normalisation: Any
    n_features: int
    device: torch.device
    to_prices: tuple[torch.Tensor, torch.Tensor] | None
    ohlc_columns: Sequence[int] | None
    seasons: Sequence[int]
    #: bar length per timeframe (ns), for the naive baseline that reads bar times
    bar_ns: Sequence[int] | None = None

    def batches(self, split: EvalSplit) -> Iterator[tuple[Batch, torch.Tensor]]:
        """Each batch of ``split`` with its sample indices."""
        for idx, mask in split.batches:
            future = split.source.targets(idx) if self.task == "forecast" else None
            yield make_batch(split.source.windows(idx), mask, future, self.normalisation), idx

    def score(self, split: EvalSplit, predict: Predict) -> dict[str, MetricResult]:
        """Metrics per name returned by ``predict``, over every batch of ``split``."""
        return self.score_indexed(split, lambda batch, _idx: predict(batch))

    def score_indexed(
        self, split: EvalSplit, predict: Callable[[Batch, torch.Tensor], dict[str, torch.Tensor]]
    ) -> dict[str, MetricResult]:
        """``score`` for a ``predict`` that also reads the batch's sample indices."""
        metrics: dict[str, StreamingMetrics] = {}
        with torch.inference_mode():
            for batch, idx in self.batches(split):
                predictions = predict(batch, idx)
                target = to_channels(batch.target)
                weight = None if batch.mask is None else cell_weights(batch.mask, self.n_features)
                for name, pred in predictions.items():
                    tracker = metrics.setdefault(name, StreamingMetrics(target.shape[1], self.device))
                    tracker.update(to_channels(pred.float()), target, weight)
        return {name: tracker.result() for name, tracker in metrics.items()}

    def naive(self, split: EvalSplit) -> dict[str, MetricResult]:
        """Every naive baseline on ``split``, in window units."""
        return self.score_indexed(split, self.naive_predictor(split))

    def naive_predictor(self, split: EvalSplit) -> Callable[[Batch, torch.Tensor], dict[str, torch.Tensor]]:
        """Every naive baseline's prediction of a batch of ``split`` (by sample indices), in
        window units: what :meth:`naive` scores, for a pass that scores them beside a model."""

        def predict(batch: Batch, idx: torch.Tensor) -> dict[str, torch.Tensor]:
            if batch.mask is not None:
                timed = self.bar_ns is not None and split.source.times is not None
                raw = reconstruct_baselines(
                    batch.windows,
                    batch.mask,
                    batch.loc,
                    to_prices=self.to_prices,
                    ohlc_columns=self.ohlc_columns,
                    open_times=split.source.window_times(idx) if timed else None,
                    bar_ns=self.bar_ns,
                )
            else:
                raw = forecast_baselines(batch.windows, self.horizon, self.seasons)
            return {name: batch.to_window_units(values) for name, values in raw.items()}

        return predict


def make_scorer(
    dataset: DatasetLike,
    *,
    task: str,
    horizon: int,
    normalisation: Any,
    device: torch.device,
    bar_ns: Sequence[int] | None,
) -> Scorer:
    """The scorer of a dataset: its train-z to price map (``stats``), OHLC columns and seasons
    (measured on the train split's bar times). Shared by the runs and the learned reference."""
    features = list(dataset.feature_names)
    timeframes = list(dataset.timeframes)
    stats = getattr(dataset, "stats", None)
    to_prices = None
    if stats and "mean" in stats and "std" in stats:
        mean, std = (
            torch.tensor([stats[part][tf] for tf in timeframes], dtype=torch.float32, device=device)
            for part in ("mean", "std")
        )
        to_prices = (mean, std)
    train_times = getattr(dataset.split("train"), "times", {}) or {}
    return Scorer(
        task=task,
        horizon=horizon,
        normalisation=normalisation,
        n_features=len(features),
        device=device,
        to_prices=to_prices,
        ohlc_columns=[features.index(name) for name in OHLC] if set(OHLC) <= set(features) else None,
        seasons=[
            season_length(tf, int(dataset.seq_len), max(1, horizon), train_times.get(tf)) for tf in timeframes
        ],
        bar_ns=bar_ns,
    )


def metric_row(result: MetricResult, skill_value: float, prefix: str) -> dict[str, float]:
    """The metrics.csv / summary.json numbers of one evaluation."""
    return {
        f"{prefix}_loss": result.loss,
        f"{prefix}_skill": skill_value,
        f"{prefix}_correlation": result.correlation,
        f"{prefix}_mae": result.mae,
    }


def naive_report(
    val: Mapping[str, MetricResult],
    test: Mapping[str, MetricResult] | None,
    groups: Mapping[str, Sequence[int]],
) -> dict[str, dict[str, float]]:
    """summary.json's ``naive_baselines``: each baseline's validation (and test) loss, per group too."""
    report: dict[str, dict[str, float]] = {}
    for name, result in val.items():
        entry = {"val_loss": result.loss, "val_correlation": result.correlation, "val_mae": result.mae}
        for group, channels in groups.items():
            entry[f"val_loss_{group}"] = result.group_mse(channels)
        if test is not None and name in test:
            entry["test_loss"] = test[name].loss
            for group, channels in groups.items():
                entry[f"test_loss_{group}"] = test[name].group_mse(channels)
        report[name] = entry
    return report


def learning_speed(history: Sequence[Mapping[str, Any]], steps_per_epoch: int, epochs: int) -> dict[str, Any]:
    """How fast a run learned, from its per-epoch validation rows.

    * ``auc_val_loss``: the area under the validation-loss curve over the planned steps,
      divided by their number (a step-weighted mean of the loss; lower = learned faster).
      Epochs after an early stop count at the kept checkpoint's loss, which is what the
      run delivers from then on.
    * ``first_step_beats_naive``: the first evaluated step (end of an epoch) whose
      validation skill is above 0; None when the run never beat the strongest naive
      predictor (censored).
    """
    losses = [float(row["val_loss"]) for row in history]
    if not losses:
        return {"auc_val_loss": None, "first_step_beats_naive": None, "total_steps": epochs * steps_per_epoch}
    kept = min(losses)
    padded = losses + [kept] * max(0, epochs - len(losses))
    first = next(
        (
            int(row["epoch"]) * steps_per_epoch
            for row in history
            if math.isfinite(row["val_skill"]) and row["val_skill"] > 0
        ),
        None,
    )
    return {
        "auc_val_loss": float(np.mean(padded)),
        "first_step_beats_naive": first,
        "total_steps": epochs * steps_per_epoch,
    }


#: Relative validation-loss gain over the last quarter below which a run counts as converged.


def convergence(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whether a run had stopped improving: the answer's budget needs this (docs/report.md).

    * ``last_quarter_gain`` = (best val loss up to epoch k − best val loss overall) / best
      val loss up to epoch k, with k = ⌊¾·E⌋ of the E epochs trained: how much the last
      quarter of training still bought. None with fewer than 2 epochs.
    * ``best_in_last_quarter``: the lowest validation loss came after epoch k.
    * ``converged``: the gain is below ``CONVERGED_GAIN`` (2%).
    """
    losses = [float(row["val_loss"]) for row in history]
    if len(losses) < 2:
        return {
            "last_quarter_gain": None,
            "best_in_last_quarter": None,
            "converged": False,
            "quarter_from": None,
        }
    k = max(1, (3 * len(losses)) // 4)
    before, best = min(losses[:k]), min(losses)
    gain = (before - best) / before if before > 0 else 0.0
    return {
        "last_quarter_gain": gain,
        "best_in_last_quarter": best < before,
        "converged": gain < CONVERGED_GAIN,
        "quarter_from": int(history[k - 1]["step"]),
    }


def budget_curve(history: Sequence[Mapping[str, Any]]) -> list[BudgetScore]:
    """The rows scored on the test split along the run: (step, test skill, test loss, val loss)."""
    return [
        BudgetScore(
            step=int(row["step"]),
            test_skill=float(row["budget_test_skill"]),
            test_loss=float(row["budget_test_loss"]),
            val_loss=float(row["val_loss"]),
        )
        for row in history
        if "budget_test_skill" in row
    ]
