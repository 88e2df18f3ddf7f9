"""The batches a training epoch consumes: its sample order, its masks, its window units.

A step's own host work is the gather of its windows, its mask draws and the window
statistics (``normalisation``). On a small batch each of those tensor ops costs its
dispatch, not its data: 0.68 ms per step for the tiny encoder's 32 windows on a 2-core
AMD EPYC, an eighth of the whole step, and on a GPU the same kernel launches wait in
front of a short step. ``epoch_batches`` therefore builds the batches of up to
``MAX_STEPS_AHEAD`` steps in one pass of the same ops (0.21 ms per step there).

The batches are the same to the bit however many steps are built together: the mask
draws still happen step by step and timeframe by timeframe, in the order one batch at
a time drew them, and every op after the draws works on each sample alone (tested in
test_feed.py). The batches built ahead are bounded by ``BYTES_AHEAD``, so a large batch
builds fewer steps at once and the memory it holds stays small beside the model's.

Reproducibility: all randomness of epoch ``e`` (batch order, masks, dropout) comes from
generators seeded with (seed, e), so a run resumed after epoch ``k`` replays epoch ``k+1``
exactly as an uninterrupted run would. The order and the masks are drawn from CPU
generators whatever the device, so one seed gives one set of batches on a CPU and a GPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch

from workflow_scripts.training.batches import epoch_order
from workflow_scripts.training.build import Run
from workflow_scripts.training.masking import owner_span_masks
from workflow_scripts.training.normalisation import Batch, make_batch

#: The most steps whose batches are built in one pass: 0.21 ms per step at 25 and at 50
#: for the bench batch, so more would only hold more memory.
MAX_STEPS_AHEAD = 25

#: The most bytes of windows built ahead (the batch tensors hold a few times this).
BYTES_AHEAD = 64 * 2**20


def derived_seed(seed: int, epoch: int, purpose: str) -> int:
    """A 63-bit seed for one purpose in one epoch, independent of every other (seed, epoch, purpose)."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def epoch_generators(run: Run, epoch: int) -> tuple[torch.Tensor, torch.Generator]:
    """(sample order ``[steps, batch]``, mask generator) of ``epoch``, from (seed, epoch) only."""
    torch.manual_seed(derived_seed(run.seed, epoch, "dropout"))
    order_gen = torch.Generator(device="cpu").manual_seed(derived_seed(run.seed, epoch, "order"))
    order = epoch_order(run.train_source.n_samples, run.steps, run.cfg.batch_size, order_gen)
    if run.train_source.storage.type == "cuda":
        order = order.pin_memory()
    order = order.to(run.train_source.storage, non_blocking=True)
    # On the CPU, like the order: a CUDA generator draws other masks for the same seed.
    mask_gen = torch.Generator(device="cpu").manual_seed(derived_seed(run.seed, epoch, "mask"))
    return order, mask_gen


def steps_ahead(run: Run) -> int:
    """How many steps' batches ``epoch_batches`` builds at once: ``MAX_STEPS_AHEAD``, fewer
    when their windows would pass ``BYTES_AHEAD``, at least one."""
    source = run.train_source
    windows = run.cfg.batch_size * len(source.offsets) * source.seq_len * source.values.shape[1]
    per_step = windows * source.values.element_size()
    return max(1, min(MAX_STEPS_AHEAD, BYTES_AHEAD // per_step))


def train_batches(run: Run, idx: torch.Tensor, mask_generator: torch.Generator) -> list[Batch]:
    """The batches of samples ``idx`` ``[steps, batch]``, one per step, with fresh leak-free masks.

    The same batches as one ``train_batch`` call per row of ``idx`` in turn, built with
    one pass of tensor ops. The step's only random work is here: the mask draws (on the
    CPU, then moved to the model's device). The bars' owners were computed with the source; the windows are
    one gather.
    """
    source = run.train_source
    steps, size = idx.shape
    flat = idx.reshape(-1)
    mask = None
    if run.masking is not None:
        ratio, span, bar_ns = run.masking
        mask = owner_span_masks(
            source.owner_index(flat),
            source.seq_len,
            ratio,
            span,
            bar_ns,
            generator=mask_generator,
            batches=steps,
        )
    future = source.targets(flat) if run.cfg.task == "forecast" else None
    return make_batch(source.windows(flat), mask, future, run.cfg.normalisation).split(size)


def train_batch(run: Run, idx: torch.Tensor, mask_generator: torch.Generator) -> Batch:
    """Training samples ``idx`` ``[batch]`` with fresh leak-free masks, in window units."""
    return train_batches(run, idx[None], mask_generator)[0]


def epoch_batches(run: Run, order: torch.Tensor, mask_generator: torch.Generator) -> Iterator[Batch]:
    """Each step's batch for the sample order ``[steps, batch]``, built ``steps_ahead`` steps at a time."""
    ahead = steps_ahead(run)
    for first in range(0, int(order.shape[0]), ahead):
        yield from train_batches(run, order[first : first + ahead], mask_generator)
