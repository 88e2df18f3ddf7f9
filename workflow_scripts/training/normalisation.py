"""Window units: every channel of every window located and scaled by its *visible* bars.

The derived data are z-scored with train-split statistics, which suits a stationary
series and fails a trending one: MSFT's daily close spans [-1.2, 2.8] train-z units in
train and [2.3, 6.5] in test, and a third of the train windows are nearly constant
in those units, so the loss is dominated by the late years and a pooled correlation
rewards tracking the level. As in PatchTST's RevIN, GPT4TS and MOMENT, each channel (a
timeframe and feature pair) of each window is therefore mapped to
``(x - loc) / scale`` with ``loc`` and ``scale`` the mean and standard deviation of
that channel's **visible** bars. The model reads and predicts window units, and loss and
metrics are computed in them, so every window weighs alike.

Only visible bars enter the statistics: a masked bar's value would otherwise leak into
the input through ``loc`` and ``scale``. ``normalisation: global`` keeps the train-split
z-scores (``loc = 0``, ``scale = 1``) for comparison with the earlier study.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Normalisation = Literal["window", "global"]

#: Added to the variance before the square root (train-z units squared): a constant
#: window gets a finite scale, while real price moves are far above it.
VARIANCE_FLOOR = 1e-10


def window_statistics(
    windows: torch.Tensor, visible: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loc, scale), each ``[B, T, 1, F]``: mean and std of each channel's visible bars.

    ``windows`` ``[B, T, L, F]``; ``visible`` bool ``[B, T, L]`` (None: every bar). A
    window with no visible bar gets loc 0 and the floor scale (it is never scored:
    masks keep ``MIN_VISIBLE`` visible bars in every masked window).
    """
    loc, _centred, scale = _centred_statistics(windows.float(), visible)
    return loc, scale


def _centred_statistics(
    x: torch.Tensor, visible: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loc, x - loc, scale): ``window_statistics`` and the centred windows it computes on the way."""
    weight = torch.ones_like(x[..., :1]) if visible is None else visible[..., None].to(x.dtype)
    count = weight.sum(dim=2, keepdim=True).clamp_min(1.0)
    loc = (x * weight).sum(dim=2, keepdim=True) / count
    centred = x - loc
    var = (centred.square() * weight).sum(dim=2, keepdim=True) / count
    return loc, centred, (var + VARIANCE_FLOOR).sqrt()


@dataclass(frozen=True)
class Batch:
    """One batch in the units the model reads and the loss uses.

    ``inputs`` ``[B, T, L, F]`` and ``target`` (the same windows for reconstruct, the
    next ``horizon`` bars for forecast) are in window units; ``windows`` keeps the
    train-z values for the naive baselines; ``mask`` ``[B, T, L]`` (None for forecast).
    """

    inputs: torch.Tensor
    target: torch.Tensor
    windows: torch.Tensor
    mask: torch.Tensor | None
    loc: torch.Tensor
    scale: torch.Tensor

    def to_window_units(self, values: torch.Tensor) -> torch.Tensor:
        """Train-z values (e.g. a naive baseline's prediction) -> window units."""
        return (values.float() - self.loc) / self.scale

    def to_train_units(self, values: torch.Tensor) -> torch.Tensor:
        """Window units (e.g. the model's prediction) -> the derived data's train-z units."""
        return values.float() * self.scale + self.loc

    def split(self, size: int) -> list[Batch]:
        """Consecutive batches of ``size`` samples each (views of these tensors, no copy)."""
        parts = [t.split(size) for t in (self.inputs, self.target, self.windows, self.loc, self.scale)]
        masks = [None] * len(parts[0]) if self.mask is None else list(self.mask.split(size))
        return [
            Batch(inputs=i, target=t, windows=w, mask=m, loc=loc, scale=s)
            for i, t, w, m, loc, s in zip(*parts[:3], masks, *parts[3:], strict=True)
        ]


def make_batch(
    windows: torch.Tensor,
    mask: torch.Tensor | None,
    future: torch.Tensor | None,
    normalisation: Normalisation,
) -> Batch:
    """Scale ``windows`` (and the forecast target ``future``) into window units.

    Masked bars are replaced by the channel's ``loc`` before scaling, so the input holds
    0 there whatever the hidden value was; the model also zeroes and flags them. (Per
    step, so computed with as few tensor ops as possible: ``(loc - loc) / scale`` is
    exactly 0, so the input is the scaled window with its masked bars set to 0.)
    """
    raw = windows.float()
    if normalisation == "window":
        loc, centred, scale = _centred_statistics(raw, None if mask is None else ~mask)
    elif normalisation == "global":
        loc = torch.zeros_like(windows[:, :, :1, :], dtype=torch.float32)
        scale = torch.ones_like(loc)
        centred = raw - loc
    else:
        raise ValueError(f"normalisation {normalisation!r} is not allowed (allowed: window, global)")
    scaled = centred / scale
    inputs = scaled if mask is None else scaled.masked_fill(mask[..., None], 0.0)
    target = scaled if future is None else (future.float() - loc) / scale
    return Batch(inputs=inputs, target=target, windows=raw, mask=mask, loc=loc, scale=scale)
