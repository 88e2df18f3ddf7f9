"""Scores kept as running sums over a whole split, and the training loss (``masked_mse``).

(Not "metrics": that word names the runs' metrics.csv.)

The original study averaged per-batch correlations, which is not the correlation of the
validation set (and is biased for small batches). Here each channel (a timeframe and
feature pair) keeps float64 sums of x, y, x², y², xy, |x-y| and (x-y)² over every scored
position, and Pearson's r, MSE and MAE are computed from the sums once at the end.

Values are in window units (``normalisation``), so the correlation is a *within-window*
one: the window's level is removed before it is computed. ``loss`` and ``mae`` pool every
scored cell (the training loss does the same), and the per-channel sums are kept so
that skill per feature group can be computed from them (``evaluation``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

#: Rows of the sums tensor.
_N, _SX, _SY, _SXX, _SYY, _SXY, _SABS, _SSQ = range(8)

#: A variance below this share of the raw second moment counts as zero (a constant series).
_CONSTANT_TOLERANCE = 1e-12


@dataclass(frozen=True)
class MetricResult:
    """Metrics of one evaluation: loss and MAE pooled over the scored cells, correlation the
    mean over channels; the per-channel sums give any group's MSE."""

    correlation: float
    loss: float
    mae: float
    channel_correlation: tuple[float, ...]
    count: int
    channel_sse: tuple[float, ...] = ()
    channel_count: tuple[float, ...] = ()
    #: per-channel sums of absolute errors (the MAE-based skill's numerator and denominator)
    channel_sae: tuple[float, ...] = ()

    def group_mse(self, channels: Sequence[int]) -> float:
        """Pooled MSE over the scored cells of ``channels``."""
        sse = sum(self.channel_sse[c] for c in channels)
        count = sum(self.channel_count[c] for c in channels)
        return sse / count if count > 0 else float("nan")

    def group_mae(self, channels: Sequence[int]) -> float:
        """Pooled MAE over the scored cells of ``channels``."""
        sae = sum(self.channel_sae[c] for c in channels)
        count = sum(self.channel_count[c] for c in channels)
        return sae / count if count > 0 else float("nan")


def to_channels(values: torch.Tensor) -> torch.Tensor:
    """``[B, T, L, F]`` -> ``[B*L, T*F]``: one column per channel, ordered (timeframe, feature)."""
    b, t, length, f = values.shape
    return values.permute(0, 2, 1, 3).reshape(b * length, t * f)


class StreamingMetrics:
    """Per-channel running sums; ``update`` does no host synchronisation."""

    def __init__(self, n_channels: int, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        # MPS has no float64; its batches are summed on the CPU instead.
        self.device = torch.device("cpu") if device.type == "mps" else device
        self.sums = torch.zeros(8, n_channels, dtype=torch.float64, device=self.device)

    def update(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> None:
        """Add ``[N, C]`` predictions and targets; ``weight`` ``[N]`` or ``[N, C]`` (0/1) selects cells.

        Weighting instead of boolean indexing keeps shapes static, so no sync on a GPU.
        """
        # Move first, then widen: MPS cannot hold float64 even transiently.
        x = pred.detach().to(self.device).to(torch.float64)
        y = target.detach().to(self.device).to(torch.float64)
        if weight is None:
            w = torch.ones(x.shape[0], 1, dtype=torch.float64, device=self.device)
        else:
            w = weight.to(self.device).to(torch.float64)
            w = w.reshape(-1, 1) if w.dim() == 1 else w
        err = x - y
        wx, wy = w * x, w * y
        batch = torch.stack(
            [
                w.expand_as(x).sum(0),
                wx.sum(0),
                wy.sum(0),
                (wx * x).sum(0),
                (wy * y).sum(0),
                (wx * y).sum(0),
                (w * err.abs()).sum(0),
                (w * err * err).sum(0),
            ]
        )
        self.sums += batch

    def result(self) -> MetricResult:
        """Compute the metrics from the sums."""
        s = self.sums.cpu().numpy()
        n = s[_N]
        if not np.all(n > 0):
            raise ValueError("no scored positions in some channel: the evaluation set is empty")
        correlation = pearson_from_sums(n, s[_SX], s[_SY], s[_SXX], s[_SYY], s[_SXY])
        return MetricResult(
            correlation=float(correlation.mean()),
            loss=float(s[_SSQ].sum() / n.sum()),
            mae=float(s[_SABS].sum() / n.sum()),
            channel_correlation=tuple(float(r) for r in correlation),
            count=int(n.max()),
            channel_sse=tuple(float(v) for v in s[_SSQ]),
            channel_count=tuple(float(v) for v in n),
            channel_sae=tuple(float(v) for v in s[_SABS]),
        )


def pearson_from_sums(
    n: np.ndarray, sx: np.ndarray, sy: np.ndarray, sxx: np.ndarray, syy: np.ndarray, sxy: np.ndarray
) -> np.ndarray:
    """Pearson's r per channel from running sums.

    A channel whose prediction or target is constant has no defined correlation; it
    counts as 0 (no linear association shown), never NaN, so a model that predicts a
    constant cannot make the mean undefined or look good.
    """
    cov = n * sxy - sx * sy
    var_x = n * sxx - sx * sx
    var_y = n * syy - sy * sy
    defined = (var_x > _CONSTANT_TOLERANCE * n * sxx) & (var_y > _CONSTANT_TOLERANCE * n * syy)
    denom = np.sqrt(np.where(defined, var_x * var_y, 1.0))
    return np.where(defined, np.clip(cov / denom, -1.0, 1.0), 0.0)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Training loss: MSE over masked bars (``mask`` ``[B, T, L]``) or over everything.

    Computed in float32 whatever the autocast dtype, so the loss itself never rounds to bf16.
    """
    err = (pred.float() - target.float()).square()
    if mask is None:
        return err.mean()
    weight = mask[..., None].to(err.dtype)
    return (err * weight).sum() / (weight.sum() * err.shape[3]).clamp_min(1.0)


def cell_weights(mask: torch.Tensor, n_features: int) -> torch.Tensor:
    """``[B, T, L]`` mask -> ``[B*L, T*F]`` weights, laid out like ``to_channels``."""
    return to_channels(mask[..., None].expand(*mask.shape, n_features))
