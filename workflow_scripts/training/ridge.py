"""A learned reference: ridge regression of each masked bar on its visible neighbours.

The naive rules define skill 0; this is the other end a reader needs: what a *linear map*
of the visible context learns, fitted in seconds on the train split. An arm below it has
not yet learned what a linear map learns (docs/report.md).

Per masked cell of channel (timeframe j, field f) the features, all in that channel's
window units (``normalisation``), are:

* the visible value before and after the masked span in the same channel, and the
  straight line between them (``linear_interpolation``);
* the OHLC-consistent interpolation and the time interpolation across every timeframe's
  visible bars (``naive``) for field f, and the time interpolation's open and close of
  the same bar;
* where the cell sits in its gap (fraction, and the gap's length over the window length);
* the window's visible volatility (log of the channel's visible-bar std in train units);
* an intercept.

One ridge per channel, closed form on standardised features: ``w = (XᵀX + λI)⁻¹ Xᵀy``
(the intercept unpenalised). λ is chosen per channel on the validation split from
``LAMBDAS``; the test split is scored once with the chosen λ. Pure tensor functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from workflow_scripts.training.naive import _neighbours, _take, reconstruct_baselines
from workflow_scripts.training.normalisation import Batch

#: The ridge penalties tried on validation (features are standardised, so one grid fits all).
LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)

FEATURES = (
    "before",
    "after",
    "linear_interpolation",
    "ohlc_interpolation",
    "time_interpolation",
    "time_open",
    "time_close",
    "gap_fraction",
    "gap_length",
    "log_scale",
)


@dataclass(frozen=True)
class Cells:
    """The masked cells of one split, per channel: features ``[n, k]`` and targets ``[n]``."""

    features: list[torch.Tensor]
    targets: list[torch.Tensor]


def cell_features(
    batch: Batch,
    *,
    to_prices: tuple[torch.Tensor, torch.Tensor],
    ohlc_columns: Sequence[int],
    open_times: torch.Tensor,
    bar_ns: Sequence[int],
) -> torch.Tensor:
    """Features ``[B, T, L, F, k]`` of every cell (only the masked ones are used), in window units."""
    if batch.mask is None:
        raise ValueError("the ridge reference needs masks (task: reconstruct)")
    mask = batch.mask
    naive = reconstruct_baselines(
        batch.windows,
        mask,
        batch.loc,
        to_prices=to_prices,
        ohlc_columns=ohlc_columns,
        open_times=open_times,
        bar_ns=bar_ns,
    )
    units = {name: batch.to_window_units(values) for name, values in naive.items()}
    length = mask.shape[-1]
    before, after = _neighbours(mask)
    has_before, has_after = before >= 0, after < length
    left = batch.to_window_units(_take(batch.windows, torch.where(has_before, before, after)))
    right = batch.to_window_units(_take(batch.windows, torch.where(has_after, after, before)))
    positions = torch.arange(length, device=mask.device).expand_as(mask)
    both = has_before & has_after
    gap = torch.where(both, after - before, torch.full_like(after, length)).float()
    fraction = torch.where(both, (positions - before).float() / gap, 0.5)
    o, c = ohlc_columns[0], ohlc_columns[3]
    timed = units["time_interpolation"]
    shape = batch.windows.shape
    per_cell = [
        left,
        right,
        units["linear_interpolation"],
        units["ohlc_interpolation"],
        timed,
        # the bar's interpolated open and close, in each field's units (train-z → window units)
        batch.to_window_units(naive["time_interpolation"][..., o : o + 1].expand(shape)),
        batch.to_window_units(naive["time_interpolation"][..., c : c + 1].expand(shape)),
        fraction[..., None].expand(shape),
        (gap / length)[..., None].expand(shape),
        batch.scale.log().expand(shape),
    ]
    return torch.stack([f.float() for f in per_cell], dim=-1)


def masked_cells(features: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> Cells:
    """Split ``[B, T, L, F, k]`` features and ``[B, T, L, F]`` targets into per-channel masked rows
    (channels timeframe-major, as ``metrics.to_channels``)."""
    _, t, _, f, _ = features.shape
    out_x, out_y = [], []
    for j in range(t):
        rows = mask[:, j]
        for i in range(f):
            out_x.append(features[:, j, :, i][rows])
            out_y.append(target[:, j, :, i][rows])
    return Cells(out_x, out_y)


def concat(parts: Sequence[Cells]) -> Cells:
    """Per-channel rows of several batches joined."""
    n = len(parts[0].features)
    return Cells(
        [torch.cat([p.features[c] for p in parts]) for c in range(n)],
        [torch.cat([p.targets[c] for p in parts]) for c in range(n)],
    )


@dataclass(frozen=True)
class RidgeFit:
    """One channel's ridge: standardisation, weights (intercept last) and its λ."""

    mean: torch.Tensor
    std: torch.Tensor
    weights: torch.Tensor
    lam: float

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        z = (features.double() - self.mean) / self.std
        return (z @ self.weights[:-1] + self.weights[-1]).float()


def fit_ridge(features: torch.Tensor, target: torch.Tensor, lam: float) -> RidgeFit:
    """Closed-form ridge on standardised features, the intercept unpenalised (float64)."""
    x = features.double()
    mean = x.mean(dim=0)
    std = x.std(dim=0).clamp_min(1e-8) if x.shape[0] > 1 else torch.ones_like(mean)
    z = torch.cat([(x - mean) / std, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)
    penalty = torch.eye(z.shape[1], dtype=x.dtype) * lam
    penalty[-1, -1] = 0.0
    weights = torch.linalg.solve(z.T @ z + penalty, z.T @ target.double())
    return RidgeFit(mean, std, weights, lam)


def choose_lambda(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    lambdas: Sequence[float] = LAMBDAS,
) -> tuple[RidgeFit, Mapping[float, float]]:
    """The fit with the lowest validation MSE over ``lambdas``, and every λ's validation MSE."""
    losses: dict[float, float] = {}
    best: RidgeFit | None = None
    if val[1].numel() == 0:  # a channel never masked on validation: nothing to choose with
        return fit_ridge(*train, 1.0), losses
    for lam in lambdas:
        fit = fit_ridge(*train, lam)
        losses[lam] = float((fit.predict(val[0]) - val[1]).square().mean())
        if best is None or losses[lam] < losses[best.lam]:
            best = fit
    assert best is not None
    return best, losses


def predict_cells(fits: Sequence[RidgeFit], features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Predictions ``[B, T, L, F]`` in window units: each channel's ridge on its masked cells
    (visible cells stay 0; they are never scored)."""
    b, t, length, f, _ = features.shape
    out = torch.zeros(b, t, length, f, device=features.device)
    for j in range(t):
        rows = mask[:, j]
        for i in range(f):
            values = fits[j * f + i].predict(features[:, j, :, i][rows].cpu()).to(out.device)
            out[:, j, :, i][rows] = values
    return out
