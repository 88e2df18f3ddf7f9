"""Masked-span reconstruction masks that hide a stretch of *time* in every timeframe.

A sample's windows all end at the same instant but cover different stretches of time:
index i of the daily window and index i of the weekly window are different days. A mask
at the same *index* in every timeframe therefore leaves the answer in view: a masked
day sits inside a visible week whose open/high/low/close it shares, and a masked week
can be rebuilt from its visible days. The masks here are leak-free by construction:

* **Ownership.** Every bar of every window belongs to the coarsest bar, in any window of
  the sample, that contains it in time (its *owner*; a bar no coarser window bar
  contains owns itself). Bars are nested in time (each resampled bar is a bucket of
  whole finer bars), so a bar and its owner always share their owner.
* **A mask decides owners, never single bars.** Each timeframe draws span masks over its
  own window positions (``sample_span_masks``), and a bar is masked exactly when its
  owner's position is masked in the owner's timeframe. A masked week therefore hides
  all its days in the daily window, and a masked day can only be masked with its week:
  no visible bar of any timeframe overlaps a masked bar of another.
* **About ``mask_ratio`` per timeframe.** ``mask_span`` counts bars of the shortest
  timeframe; a coarser timeframe's spans are as many of its own bars as cover about the
  same time (at least one), so every window has about ``mask_ratio`` of its bars masked
  on average, although a fine window is masked in whole coarse bars at a time.
* **Enough context.** A sample in which some timeframe would keep fewer than
  ``MIN_VISIBLE`` visible bars (a coarse span covering a whole fine window) is left
  unmasked instead: it then adds nothing to the loss, and the per-window statistics of
  the visible bars (``normalisation``) are always defined.

Validation and test masks are drawn once from fixed seeds that depend on neither the
epoch nor the run's seed: every epoch, variant, seed and naive baseline is scored on
exactly the same masked positions, which is what makes their numbers comparable.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: Seeds of the evaluation masks: constants, so all runs share them. ``train`` masks the
#: train split once for the learned reference's fit (``training.reference``), never for training.
EVALUATION_MASK_SEEDS = {"val": 20240917, "test": 20241231, "train": 20240101}

#: Seed step between the test split's mask draws: draw ``d`` is seeded ``seed + d * step``
#: (draw 0 is the split's own seed), far from every other evaluation seed.
DRAW_SEED_STEP = 1_000_003

#: Fewest visible bars a timeframe's window keeps in a masked sample.
MIN_VISIBLE = 2


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

    Spans never overlap, so every sample masks exactly ``count * span`` bars. The draw
    happens on the generator's device and the offsets move to ``device`` (default: the
    generator's), so one generator state gives one mask on any device.
    """
    device = torch.device(device) if device is not None else generator.device
    count, span = span_count(seq_len, mask_ratio, mask_span)
    free = seq_len - count * span
    # Sorted offsets in [0, free] plus i*span place span i after span i-1 without overlap.
    offsets = draw_offsets(free, (batch, count), generator).to(device, non_blocking=True)
    offsets, _ = torch.sort(offsets, dim=1)
    starts = offsets + torch.arange(count, device=device) * span
    positions = torch.arange(seq_len, device=device)
    inside = (positions >= starts[..., None]) & (positions < starts[..., None] + span)
    return inside.any(dim=1)


def draw_offsets(free: int, shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Span offsets in ``[0, free]``, drawn where the generator lives.

    Training draws from a CPU generator (``feed.epoch_generators``) and moves the
    offsets to the model's device: CUDA's generator draws other numbers than the CPU's
    for the same seed, so drawing on the device would give one seed other masks on a GPU.
    """
    return torch.randint(0, free + 1, shape, generator=generator, device=generator.device)


def level_spans(mask_span: int, bar_ns: Sequence[int]) -> list[int]:
    """Span length per timeframe: ``mask_span`` bars of the shortest, the same time in the others."""
    shortest = min(bar_ns)
    return [max(1, round(mask_span * shortest / ns)) for ns in bar_ns]


def mask_owners(open_times: torch.Tensor, bar_ns: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(timeframe, position) of each bar's owner, both long ``[B, T, L]``.

    ``open_times`` ``[B, T, L]`` are the windows' bar open times (sorted in each
    window); ``bar_ns[j]`` is timeframe j's bar length. A bar at open time t is inside
    the coarser bar that opened last at or before t, if t is before that bar's end.
    """
    b, t, length = open_times.shape
    positions = torch.arange(length, device=open_times.device).expand(b, length)
    owner_tf = torch.arange(t, device=open_times.device)[None, :, None].expand(b, t, length).clone()
    owner_pos = positions[:, None, :].expand(b, t, length).clone()
    by_length = sorted(range(t), key=lambda j: bar_ns[j])
    for j in range(t):
        # coarser timeframes from the nearest to the coarsest: the last match wins
        for k in (k for k in by_length if bar_ns[k] > bar_ns[j]):
            coarse = open_times[:, k, :].contiguous()
            inside = torch.searchsorted(coarse, open_times[:, j, :].contiguous(), right=True) - 1
            found = inside.clamp_min(0)
            contains = (inside >= 0) & (open_times[:, j, :] < coarse.gather(1, found) + bar_ns[k])
            owner_tf[:, j, :] = torch.where(contains, k, owner_tf[:, j, :])
            owner_pos[:, j, :] = torch.where(contains, found, owner_pos[:, j, :])
    return owner_tf, owner_pos


def owner_index(open_times: torch.Tensor, bar_ns: Sequence[int]) -> torch.Tensor:
    """Each bar's owner as one flat index ``timeframe * L + position``: int64 ``[B, T * L]``.

    A function of the bar times alone, so a training split's owners are computed once
    (``batches.WindowSource.owners``) and a step only looks them up.
    """
    owner_tf, owner_pos = mask_owners(open_times, bar_ns)
    b, t, length = owner_tf.shape
    return (owner_tf * length + owner_pos).reshape(b, t * length)


@functools.lru_cache(maxsize=64)
def _level_layout(
    length: int, mask_ratio: float, mask_span: int, bar_ns: tuple[int, ...], device: torch.device
) -> tuple[list[tuple[int, int]], torch.Tensor, torch.Tensor]:
    """Per timeframe (count, free) of its spans, and the constant tensors of the draw.

    ``steps[j, i] = i * span_j`` places span i after span i-1; ``spans[j, 0] = span_j``.
    Cached: a step builds no constant tensor.
    """
    counts = [span_count(length, mask_ratio, span) for span in level_spans(mask_span, bar_ns)]
    widest = max(count for count, _ in counts)
    steps = torch.tensor([[i * span for i in range(widest)] for _, span in counts], device=device)
    spans = torch.tensor([[span] for _, span in counts], device=device)
    return [(count, length - count * span) for count, span in counts], steps, spans


def level_span_masks(
    batch: int,
    length: int,
    mask_ratio: float,
    mask_span: int,
    bar_ns: Sequence[int],
    *,
    generator: torch.Generator,
    device: torch.device,
    batches: int = 1,
) -> torch.Tensor:
    """Bool ``[batches * batch, T, length]``: ``sample_span_masks`` of every timeframe, in one pass.

    The same draws, in the same order, as one ``sample_span_masks`` call per timeframe
    and per batch (so the same masks for the same generator state); only the ops after
    the draws are batched over timeframes and batches. The draws happen on the
    generator's device (``draw_offsets``) and move to ``device`` in one copy. Each span adds +1 at its start
    and -1 at its end to a running sum, which is positive exactly inside a span (spans
    never overlap). A timeframe with fewer spans is padded with offsets at ``length``,
    whose +1 and -1 land in the extra last slot and cancel there.
    """
    layout, steps, spans = _level_layout(length, mask_ratio, mask_span, tuple(bar_ns), device)
    widest = steps.shape[1]
    per_batch = []
    for _ in range(batches):
        offsets = []
        for count, free in layout:
            drawn = draw_offsets(free, (batch, count), generator)
            offsets.append(drawn if count == widest else F.pad(drawn, (0, widest - count), value=length))
        per_batch.append(torch.stack(offsets, dim=1))
    ordered, _ = torch.sort(torch.cat(per_batch).to(device, non_blocking=True), dim=2)
    rows, levels = batches * batch, len(layout)
    starts = (ordered + steps).clamp_max_(length)  # [rows, T, C]
    edges = torch.cat([starts, (starts + spans).clamp_max_(length)], dim=2)
    signs = _signs(levels, widest, device).expand(rows, -1, -1)
    delta = torch.zeros(rows, levels, length + 1, dtype=torch.int32, device=device)
    delta.scatter_add_(2, edges, signs)
    return delta[..., :length].cumsum(dim=2) > 0


@functools.lru_cache(maxsize=16)
def _signs(levels: int, widest: int, device: torch.device) -> torch.Tensor:
    """int32 ``[1, levels, 2 * widest]``: +1 for each span's start, -1 for its end."""
    one = torch.ones(1, levels, widest, dtype=torch.int32, device=device)
    return torch.cat([one, -one], dim=2)


def owner_span_masks(
    owners: torch.Tensor,
    length: int,
    mask_ratio: float,
    mask_span: int,
    bar_ns: Sequence[int],
    *,
    generator: torch.Generator,
    batches: int = 1,
) -> torch.Tensor:
    """Bool ``[B, T, L]``, True = masked: span masks per timeframe, applied through the owners.

    ``owners`` are ``owner_index``'s flat indices ``[B, T * L]``. ``batches``: the rows are
    that many consecutive batches, masked as by one call per batch in turn.
    """
    b, t = owners.shape[0], len(bar_ns)
    if b % batches:
        raise ValueError(f"{b} rows of owners do not split into {batches} batches")
    per_level = level_span_masks(
        b // batches,
        length,
        mask_ratio,
        mask_span,
        bar_ns,
        generator=generator,
        device=owners.device,
        batches=batches,
    )
    mask = per_level.reshape(b, t * length).gather(1, owners).reshape(b, t, length)
    # At least MIN_VISIBLE visible bars in every timeframe, or the sample is left unmasked.
    enough = (mask.sum(dim=2) <= length - min(MIN_VISIBLE, length)).all(dim=1)
    return mask & enough[:, None, None]


def aligned_span_masks(
    owners: tuple[torch.Tensor, torch.Tensor],
    mask_ratio: float,
    mask_span: int,
    bar_ns: Sequence[int],
    *,
    generator: torch.Generator,
) -> torch.Tensor:
    """Bool ``[B, T, L]``, True = masked: ``owner_span_masks`` for ``mask_owners``'s (timeframe, position)."""
    owner_tf, owner_pos = owners
    b, t, length = owner_tf.shape
    flat = (owner_tf * length + owner_pos).reshape(b, t * length)
    return owner_span_masks(flat, length, mask_ratio, mask_span, bar_ns, generator=generator)


def evaluation_masks(
    open_times: torch.Tensor,
    bar_ns: Sequence[int],
    mask_ratio: float,
    mask_span: int,
    split: str,
    draw: int = 0,
) -> torch.Tensor:
    """Bool ``[n_samples, T, L]`` on the CPU, identical for every run with these settings.

    ``draw`` picks one of several independent draws of the same split (the test split is
    scored under several, so no answer hangs on which bars one draw happened to hide); each
    draw follows the same leak-free rule, and draw 0 is the split's one fixed draw."""
    seed = EVALUATION_MASK_SEEDS[split] + DRAW_SEED_STEP * draw
    generator = torch.Generator(device="cpu").manual_seed(seed)
    owners = mask_owners(open_times.cpu(), bar_ns)
    return aligned_span_masks(owners, mask_ratio, mask_span, bar_ns, generator=generator)
