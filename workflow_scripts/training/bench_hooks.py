"""Benchmark hooks: one training step of the project loop, and the same step in bare PyTorch.

For ``workflow_scripts.bench``: ``train_step_efficiency`` is the ratio of their times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import torch

from workflow_scripts.training.build import Run
from workflow_scripts.training.device import synchronize
from workflow_scripts.training.feed import epoch_batches, epoch_generators, steps_ahead, train_batch
from workflow_scripts.training.loop import train_step
from workflow_scripts.training.normalisation import Batch
from workflow_scripts.training.running_scores import masked_mse
from workflow_scripts.training.steplog import StepLog


def make_step_fn(run: Run, epoch: int = 1) -> Callable[[], None]:
    """One call = one training step of the project loop (gather, mask, forward, backward,
    clip, schedule, AdamW, on-device bookkeeping), as ``train_epoch`` runs it.

    Batches are built ``feed.steps_ahead`` steps at a time, as in ``train_epoch``, so time
    whole groups of those with ``time_loop_steps``: the timed calls then carry their share
    of batch building. For ``workflow_scripts.bench``: time it against ``make_bare_step_fn``.
    """
    run.freezing.apply(epoch)
    run.model.train()
    order, mask_gen = epoch_generators(run, epoch)
    log = StepLog(run.steps, run.device, check_grad=run.scaler is None)

    def epochs() -> Iterator[tuple[int, Batch]]:
        while True:
            yield from enumerate(epoch_batches(run, order, mask_gen))

    batches = epochs()

    def step() -> None:
        i, batch = next(batches)
        train_step(run, batch, log, i, (epoch - 1) * run.steps + i)

    return step


def make_bare_step_fn(run: Run, epoch: int = 1) -> Callable[[], None]:
    """One call = the same model, batch size and precision in a bare PyTorch step.

    The batch is built once and stays on the device; the step is forward, MSE on the
    masked positions, backward and AdamW, with nothing else.
    """
    run.freezing.apply(epoch)
    run.model.train()
    order, mask_gen = epoch_generators(run, epoch)
    batch = train_batch(run, order[0], mask_gen)
    windows, target, mask = batch.inputs, batch.target, batch.mask
    model, optimizer, scaler, precision, device = (
        run.forward,
        run.optimizer,
        run.scaler,
        run.precision,
        run.device,
    )

    def step() -> None:
        with precision.autocast(device):
            pred = model(windows, mask)
        loss = masked_mse(pred, target, mask)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    return step


def time_steps(step: Callable[[], None], device: torch.device, *, warmup: int = 3, iters: int = 20) -> float:
    """Mean seconds per call of ``step`` after ``warmup`` calls, with the device synchronised."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(iters):
        step()
    synchronize(device)
    return (time.perf_counter() - started) / iters


def whole_groups(run: Run, iters: int) -> int:
    """``iters`` rounded up to whole groups of ``feed.steps_ahead`` steps."""
    ahead = steps_ahead(run)
    return -(-iters // ahead) * ahead


def time_loop_steps(step: Callable[[], None], run: Run, *, iters: int) -> float:
    """``time_steps`` of a ``make_step_fn`` step over whole groups of ``feed.steps_ahead`` steps.

    Warm-up and timed calls each cover whole groups (``iters`` rounded up), so every
    timing carries its share of the batches built ahead, no more and no less.
    """
    return time_steps(step, run.device, warmup=steps_ahead(run), iters=whole_groups(run, iters))


def reset_device_peak(device: torch.device) -> None:
    """Forget the device's memory peak so far (the build's), so the next peak is the steps'."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def device_peak_mb(device: torch.device) -> int | None:
    """The most memory allocated on ``device`` since ``reset_device_peak``, in MiB; None off CUDA."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20)
