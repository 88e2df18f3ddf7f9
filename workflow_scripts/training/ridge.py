"""A learned reference: ridge regression of each masked bar on its visible neighbours.

The naive rules define skill 0; this is the other end a reader needs: what a *linear map*
of the visible context learns, fitted in seconds on the train split. An arm below it has
not yet learned what a linear map learns (docs/report.md).

Per masked cell of channel (timeframe j, field f) the features (``feature_names``) are:

* **every field of the two visible neighbours**: the nearest visible bar of timeframe j
  before the masked span and after it, each with its open, high, low, close, its range
  (high − low) and any other field. A masked close can then be read off the neighbours'
  highs and lows, not only their closes. Prices are put into channel (j, f)'s window
  units by one affine map (``prices_in_target_units``), so a linear relation between
  prices stays linear with the same coefficients; other fields stay in their own
  channel's window units;
* the straight line between the neighbours in the same channel (``linear_interpolation``),
  the OHLC-consistent and the time interpolation across every timeframe's visible bars
  (``naive``) for field f, and the time interpolation's open and close of the same bar;
* where the cell sits in its gap (fraction, and the gap's length over the window length);
* the window's visible volatility (log of the channel's visible-bar std in train units).

Leak-free by construction: every value read is a visible bar's (``~mask``), and leak-free
masks (``masking``) hide a stretch of time in every timeframe and keep at least two
visible bars per window, so no feature holds a masked bar or one hidden by the same span.

**The ridge**, one per channel, in closed form (float64): with the train rows' features
standardised, ``z = (x − μ) / σ``, it minimises ``Σᵢ (yᵢ − b − zᵢ·w)² + λ‖w‖²``. The
intercept ``b`` is not penalised (``z`` is centred, so ``b`` is the train mean of ``y``):
a penalised intercept would shrink every prediction towards 0 and be wrong by a target's
mean. λ is chosen per channel on the validation split from ``LAMBDAS``; the test split is
scored once with the chosen λ. Pure tensor functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from workflow_scripts.training.naive import _neighbours, _take, reconstruct_baselines
from workflow_scripts.training.normalisation import Batch

#: The ridge penalties tried on validation (features are standardised, so one grid fits all).
LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)

#: The two visible neighbours of a masked span, in timeframe j.
SIDES = ("before", "after")

#: The features after the neighbours' fields, in order.
CONTEXT_FEATURES = (
    "linear_interpolation",
    "ohlc_interpolation",
    "time_interpolation",
    "time_open",
    "time_close",
    "gap_fraction",
    "gap_length",
    "log_scale",
)


def feature_names(fields: Sequence[str]) -> tuple[str, ...]:
    """The ridge's features, in column order, for a dataset with ``fields`` (e.g. ``before.high``)."""
    return (*(f"{side}.{name}" for side in SIDES for name in (*fields, "range")), *CONTEXT_FEATURES)


@dataclass(frozen=True)
class Cells:
    """The masked cells of one split, per channel: features ``[n, k]`` and targets ``[n]``."""

    features: list[torch.Tensor]
    targets: list[torch.Tensor]


def unit_channels(n_fields: int, ohlc_columns: Sequence[int]) -> list[int]:
    """Per target field, the price field whose units prices are put in: itself when it is a
    price, else the close (a price has no meaning in a non-price field's units)."""
    return [f if f in ohlc_columns else ohlc_columns[3] for f in range(n_fields)]


def prices_in_target_units(
    prices: torch.Tensor, batch: Batch, to_prices: tuple[torch.Tensor, torch.Tensor], units: Sequence[int]
) -> torch.Tensor:
    """Prices ``[B, T, L, S]`` in every target channel's window units ``[B, T, L, F, S]``.

    A price ``p`` in channel (j, f)'s units is ``((p − mean_u) / std_u − loc_u) / scale_u``
    with ``u = units[f]``: the train-z map, then the window's visible location and scale. One
    affine map per channel and window, so ``close = (high + low) / 2`` in prices is the same
    relation in these units.
    """
    mean, std = (part[:, units][None, :, None, :, None] for part in to_prices)
    loc, scale = batch.loc[..., units][..., None], batch.scale[..., units][..., None]
    return ((prices.float()[..., None, :] - mean) / std - loc) / scale


def side_features(
    bar: torch.Tensor,
    batch: Batch,
    to_prices: tuple[torch.Tensor, torch.Tensor],
    ohlc_columns: Sequence[int],
) -> torch.Tensor:
    """One neighbour's every field and its range, ``[B, T, L, F, F + 1]``, from ``bar``
    ``[B, T, L, F]`` (train-z values of the neighbour of each cell).

    Price fields and the range are in the target channel's units (``prices_in_target_units``);
    other fields in their own channel's window units, the same for every target.
    """
    n_fields = bar.shape[-1]
    mean, std = (part[None, :, None, :] for part in to_prices)
    priced = prices_in_target_units(bar * std + mean, batch, to_prices, unit_channels(n_fields, ohlc_columns))
    own = batch.to_window_units(bar)[..., None, :].expand_as(priced)
    is_price = torch.zeros(n_fields, dtype=torch.bool, device=bar.device)
    is_price[list(ohlc_columns)] = True
    fields = torch.where(is_price, priced, own)
    high, low = ohlc_columns[1], ohlc_columns[2]
    return torch.cat([fields, (priced[..., high] - priced[..., low])[..., None]], dim=-1)


def neighbour_bars(batch: Batch, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest visible bar before and after each cell in its timeframe, ``[B, T, L, F]``
    each (train-z); a span at the window's edge takes its one visible neighbour for both."""
    length = mask.shape[-1]
    before, after = _neighbours(mask)
    has_before, has_after = before >= 0, after < length
    left = _take(batch.windows, torch.where(has_before, before, after))
    right = _take(batch.windows, torch.where(has_after, after, before))
    return left, right


def gap_position(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fraction of the way through the gap, gap length over the window length), ``[B, T, L]``;
    a span at the window's edge is placed halfway through a window-long gap. (A visible
    cell, its own neighbour, gets 0 and 0: finite, never used.)"""
    length = mask.shape[-1]
    before, after = _neighbours(mask)
    positions = torch.arange(length, device=mask.device).expand_as(mask)
    both = (before >= 0) & (after < length)
    gap = torch.where(both, after - before, torch.full_like(after, length)).float()
    fraction = torch.where(both, (positions - before).float() / gap.clamp_min(1.0), 0.5)
    return fraction, gap / length


def cell_features(
    batch: Batch,
    *,
    to_prices: tuple[torch.Tensor, torch.Tensor],
    ohlc_columns: Sequence[int],
    open_times: torch.Tensor,
    bar_ns: Sequence[int],
) -> torch.Tensor:
    """Features ``[B, T, L, F, k]`` of every cell (only the masked ones are used), in the
    order of ``feature_names`` (see the module docstring)."""
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
    shape = batch.windows.shape
    sides = [side_features(bar, batch, to_prices, ohlc_columns) for bar in neighbour_bars(batch, mask)]
    # the time interpolation's open and close of the bar, as prices in the target's units
    mean, std = (part[None, :, None, :] for part in to_prices)
    timed = naive["time_interpolation"] * std + mean
    o, c = ohlc_columns[0], ohlc_columns[3]
    units = unit_channels(shape[-1], ohlc_columns)
    time_open_close = prices_in_target_units(timed[..., [o, c]], batch, to_prices, units)
    fraction, gap = gap_position(mask)
    context = [
        *(batch.to_window_units(naive[name]) for name in CONTEXT_FEATURES[:3]),
        time_open_close[..., 0],
        time_open_close[..., 1],
        fraction[..., None].expand(shape),
        gap[..., None].expand(shape),
        batch.scale.log().expand(shape),
    ]
    return torch.cat([*sides, torch.stack([f.float() for f in context], dim=-1)], dim=-1)


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
    """The ridge ``argmin_{b, w} Σᵢ (yᵢ − b − zᵢ·w)² + λ‖w‖²`` on standardised features
    ``z = (x − μ) / σ``, in closed form (float64): ``[w; b] = (ZᵀZ + λ·diag(1, …, 1, 0))⁻¹ Zᵀy``
    with ``Z = [z, 1]``. The intercept's penalty is 0: ``z`` is centred, so ``b = mean(y)``
    whatever λ, and a large λ shrinks the prediction towards the mean, never towards 0."""
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
