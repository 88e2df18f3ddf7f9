"""The final test pass: the kept checkpoint under several mask draws, per test period, on two metrics.

One draw of test masks, one metric and the test split taken whole make every number hang on
which bars that draw hid, on the heavy tails MSE weighs most, and on the test years pooled.
So the kept checkpoint (and every naive baseline, on the very same cells) is scored

* under ``draws`` independent mask draws of the test split (``masking.evaluation_masks``;
  every run gets the same draws, each follows the leak-free rule): the run's test skill is
  the **mean over the draws**, and each draw's skill is kept for the draw-to-draw spread;
* in ``periods`` contiguous sub-periods of the test split, equal in windows, cut by the
  samples' end times (:func:`cut_periods`): each period's skill, averaged over the draws;
* on squared errors (``skill``: 1 − MSE / MSE of the strongest naive, chosen per feature
  group on validation MSE) and on absolute errors (``skill_mae``: 1 − MAE / MAE of the
  strongest naive chosen per group on validation MAE).

The budget curve keeps the single draw 0 (its points are descriptive and a pass per draw
at every budget would cost as many passes again); the final pass is where the draws pay.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from workflow_scripts.training.evaluation import EvalSplit, Scorer, channel_skill, skill, skill_scores
from workflow_scripts.training.normalisation import Batch
from workflow_scripts.training.run_contract import DrawScores, PeriodScores, TestScores
from workflow_scripts.training.running_scores import MetricResult, StreamingMetrics, cell_weights, to_channels

#: The predictions on a batch (and its sample indices), by name ("model"), in window units.
BatchPredict = Callable[[Batch, torch.Tensor], dict[str, torch.Tensor]]
#: The prediction on one draw's split: a model ignores the split, the ridge reference reads
#: its bar times.
PredictFor = Callable[[EvalSplit], BatchPredict]
#: One part's results: the model's, and every naive baseline's on the same cells.
PartResults = tuple[MetricResult, dict[str, MetricResult]]


@dataclass(frozen=True)
class PeriodCut:
    """The test split cut into contiguous sub-periods of (about) equal numbers of windows."""

    #: period of each sample of the split, by sample index
    ids: np.ndarray
    #: (first, last) end time of each period's samples, ns since the epoch (UTC)
    bounds: list[tuple[int, int]]


def cut_periods(end_times: np.ndarray, periods: int) -> PeriodCut:
    """Sample ``i`` of ``n`` (in time order) falls in period ``⌊periods · i / n⌋``: contiguous
    stretches of time, each with ``n / periods`` windows (±1). Fewer samples than periods
    gives one period per sample."""
    n = len(end_times)
    count = max(1, min(periods, n))
    ids = (np.arange(n) * count) // max(n, 1)
    bounds = [(int(end_times[ids == p][0]), int(end_times[ids == p][-1])) for p in range(count)]
    return PeriodCut(ids.astype(np.int64), bounds)


def strongest_naive_mae(
    naive: Mapping[str, MetricResult], groups: Mapping[str, Sequence[int]]
) -> dict[str, str]:
    """Per group, the baseline with the lowest pooled MAE (ties: the first in ``naive``'s order)."""
    return {
        group: min(naive, key=lambda name: naive[name].group_mae(channels))
        for group, channels in groups.items()
    }


def mae_skill(
    model: MetricResult,
    naive: Mapping[str, MetricResult],
    choice: Mapping[str, str],
    groups: Mapping[str, Sequence[int]],
) -> float:
    """``1 − MAE(model) / MAE(naive)`` over every scored cell, the naive predictor using
    ``choice[group]`` (chosen on validation MAE) on each group's channels."""
    cells = {g: sum(model.channel_count[c] for c in channels) for g, channels in groups.items()}
    naive_sae = sum(naive[choice[g]].group_mae(channels) * cells[g] for g, channels in groups.items())
    all_channels = [c for channels in groups.values() for c in channels]
    total = sum(cells.values())
    return skill(model.group_mae(all_channels), naive_sae / total) if total > 0 else math.nan


def score_parts(
    scorer: Scorer,
    split: EvalSplit,
    predict: BatchPredict,
    part_of: torch.Tensor,
    parts: int,
) -> list[dict[str, MetricResult] | None]:
    """The model's and every naive baseline's metrics on ``split``, whole and per part:
    ``[whole, part 0, ..., part parts−1]``; ``None`` for a part with a channel it never scored.

    ``part_of[i]`` is sample ``i``'s part. One forward pass per batch serves every part: a
    part's cells are the batch's scored cells weighted by membership.
    """
    trackers: list[dict[str, StreamingMetrics]] = [{} for _ in range(parts + 1)]
    naive_predict = scorer.naive_predictor(split)
    with torch.inference_mode():
        for batch, idx in scorer.batches(split):
            predicted = {**predict(batch, idx), **naive_predict(batch, idx)}
            predictions = {name: to_channels(pred.float()) for name, pred in predicted.items()}
            target = to_channels(batch.target)
            weight = (
                torch.ones_like(target) if batch.mask is None else cell_weights(batch.mask, scorer.n_features)
            )
            owner = part_of.to(idx.device)[idx].to(weight.device)
            rows = owner.repeat_interleave(target.shape[0] // owner.shape[0])
            for part in range(parts + 1):
                cells = weight if part == 0 else weight * (rows == part - 1)[:, None].to(weight.dtype)
                for name, pred in predictions.items():
                    tracker = trackers[part].setdefault(
                        name, StreamingMetrics(target.shape[1], scorer.device)
                    )
                    tracker.update(pred, target, cells)
    return [_results(part) for part in trackers]


def _results(trackers: Mapping[str, StreamingMetrics]) -> dict[str, MetricResult] | None:
    try:
        return {name: tracker.result() for name, tracker in trackers.items()}
    except ValueError:  # a channel with no scored cell in this part
        return None


@dataclass(frozen=True)
class NaiveChoices:
    """The strongest naive per feature group, chosen on validation: by MSE and by MAE."""

    mse: dict[str, str]
    mae: dict[str, str]


@dataclass(frozen=True)
class PartScore:
    """One part (the whole split or a period) of one draw, scored both ways."""

    model: MetricResult
    #: skill_scores' numbers: skill, naive_loss, skill_price, skill_other
    mse: dict[str, float | None]
    mae: float


def score_part(
    results: Mapping[str, MetricResult], choices: NaiveChoices, groups: Mapping[str, Sequence[int]]
) -> PartScore:
    """The model's skill on squared and on absolute errors against the strongest naive."""
    model = results["model"]
    naive = {name: result for name, result in results.items() if name != "model"}
    return PartScore(
        model, skill_scores(model, naive, choices.mse, groups), mae_skill(model, naive, choices.mae, groups)
    )


def final_test_pass(
    scorer: Scorer,
    draws: Sequence[EvalSplit],
    predict_for: PredictFor,
    periods: PeriodCut,
    choices: NaiveChoices,
    groups: Mapping[str, Sequence[int]],
    channel_names: Sequence[str],
) -> TestScores:
    """Score the model under every draw, per period, on both metrics (see the module docstring)."""
    part_of = torch.from_numpy(periods.ids)
    n_periods = len(periods.bounds)
    whole: list[PartScore] = []
    channels: list[dict[str, float | None]] = []
    by_period: list[list[PartScore]] = [[] for _ in range(n_periods)]
    for split in draws:
        parts = score_parts(scorer, split, predict_for(split), part_of, n_periods)
        if parts[0] is None:
            raise ValueError("the test split left a channel without one scored cell")
        whole.append(score_part(parts[0], choices, groups))
        naive = {name: result for name, result in parts[0].items() if name != "model"}
        channels.append(channel_skill(parts[0]["model"], naive, choices.mse, groups, list(channel_names)))
        for p, part in enumerate(parts[1:]):
            if part is not None:
                by_period[p].append(score_part(part, choices, groups))
    scored = torch.cat([idx.cpu() for idx, _ in draws[0].batches]).numpy()
    counts = np.bincount(periods.ids[scored], minlength=n_periods)
    return TestScores(
        loss=float(np.mean([s.model.loss for s in whole])),
        correlation=_mean([s.model.correlation for s in whole]),
        mae=_mean([s.model.mae for s in whole]),
        skill=float(np.mean([_number(s.mse["skill"]) for s in whole])),
        skill_price=_mean([s.mse.get("skill_price") for s in whole]),
        skill_other=_mean([s.mse.get("skill_other") for s in whole]),
        naive_loss=float(np.mean([_number(s.mse["naive_loss"]) for s in whole])),
        n_windows=len(scored),
        strongest_naive=dict(choices.mse),
        channel_skill={name: _mean([c.get(name) for c in channels]) for name in channels[0]},
        skill_mae=float(np.mean([s.mae for s in whole])),
        strongest_naive_mae=dict(choices.mae),
        draws=[DrawScores(_number(s.mse["skill"]), s.mae) for s in whole],
        periods=[
            PeriodScores(
                start=_iso(first),
                end=_iso(last),
                n_windows=int(counts[p]),
                skill=_mean([s.mse["skill"] for s in by_period[p]]),
                skill_mae=_mean([s.mae for s in by_period[p]]),
            )
            for p, (first, last) in enumerate(periods.bounds)
        ],
    )


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _mean(values: Sequence[float | None]) -> float | None:
    """The mean of the finite values; ``None`` when there is none."""
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(kept) / len(kept) if kept else None


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()
