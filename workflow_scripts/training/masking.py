"""Masked-span reconstruction masks.

A mask marks whole bars (every feature) in contiguous spans of ``mask_span`` bars,
about ``mask_ratio`` of each window. The same mask applies to every timeframe of a
sample at the same relative positions, so the model cannot trivially copy a masked bar
from another timeframe's window at the same index.

Validation masks are drawn once from a fixed seed that depends on neither the epoch nor
the run's seed: every epoch, variant, seed and naive baseline is scored on exactly the
same masked positions, which is what makes their numbers comparable.
"""

from __future__ import annotations

import torch

#: Seed of the validation masks: a constant, so all runs share them.
VALIDATION_MASK_SEED = 20240917


def span_count(seq_len: int, mask_ratio: float, mask_span: int) -> tuple[int, int]:
    """(number of spans, span length) covering about ``mask_ratio`` of ``seq_len`` bars.

    At least one span, and never more bars than the window holds.
    """
    if seq_len < 1 or mask_span < 1 or not 0 < mask_ratio < 1:
        raise ValueError(
            f"masking needs seq_len >= 1, mask_span >= 1 and 0 < mask_ratio < 1 "
            f"(got seq_len={seq_len}, mask_span={mask_span}, mask_ratio={mask_ratio})"
        )
    span = min(mask_span, seq_len)
    count = max(1, round(mask_ratio * seq_len / span))
    return min(count, seq_len // span), span


def sample_span_masks(
    batch: int,
    seq_len: int,
    mask_ratio: float,
    mask_span: int,
    *,
    generator: torch.Generator,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Bool ``[batch, seq_len]``: non-overlapping spans at random positions, True = masked.

    Spans never overlap, so every sample masks exactly ``count * span`` bars; the draw
    is a handful of tensor ops on ``device`` with no host synchronisation.
    """
    device = torch.device(device) if device is not None else generator.device
    count, span = span_count(seq_len, mask_ratio, mask_span)
    free = seq_len - count * span
    # Sorted offsets in [0, free] plus i*span place span i after span i-1 without overlap.
    offsets = torch.randint(0, free + 1, (batch, count), generator=generator, device=device)
    offsets, _ = torch.sort(offsets, dim=1)
    starts = offsets + torch.arange(count, device=device) * span
    positions = torch.arange(seq_len, device=device)
    inside = (positions >= starts[..., None]) & (positions < starts[..., None] + span)
    return inside.any(dim=1)


def validation_masks(n_samples: int, seq_len: int, mask_ratio: float, mask_span: int) -> torch.Tensor:
    """Bool ``[n_samples, seq_len]`` on the CPU, identical for every run with these settings."""
    generator = torch.Generator(device="cpu").manual_seed(VALIDATION_MASK_SEED)
    return sample_span_masks(n_samples, seq_len, mask_ratio, mask_span, generator=generator, device="cpu")
