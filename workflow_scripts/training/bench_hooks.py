"""Benchmark hooks: one training step of the project loop, and the same step in bare PyTorch.

For ``workflow_scripts.bench``: ``train_step_efficiency`` is the ratio of their times.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import torch

from workflow_scripts.training.build import Trainer
from workflow_scripts.training.device import synchronize
from workflow_scripts.training.loop import epoch_generators, train_batch, train_step
from workflow_scripts.training.steplog import StepLog
from workflow_scripts.training.streaming_metrics import masked_mse


def make_step_fn(trainer: Trainer, epoch: int = 1) -> Callable[[], None]:
    """One call = one training step of the project loop (gather, mask, forward, backward,
    clip, schedule, AdamW, on-device bookkeeping), as ``train_epoch`` runs it.

    For ``workflow_scripts.bench``: time it against ``make_bare_step_fn`` (synchronise
    the device around the timed calls, e.g. with ``time_steps``).
    """
    trainer.apply_freeze(epoch)
    trainer.model.train()
    order, mask_gen = epoch_generators(trainer, epoch)
    log = StepLog(trainer.steps, trainer.device, check_grad=trainer.scaler is None)
    counter = itertools.count()

    def step() -> None:
        i = next(counter) % trainer.steps
        train_step(trainer, order[i], mask_gen, log, i, (epoch - 1) * trainer.steps + i)

    return step


def make_bare_step_fn(trainer: Trainer, epoch: int = 1) -> Callable[[], None]:
    """One call = the same model, batch size and precision in a bare PyTorch step.

    The batch is built once and stays on the device; the step is forward, MSE on the
    masked positions, backward and AdamW, with nothing else.
    """
    trainer.apply_freeze(epoch)
    trainer.model.train()
    order, mask_gen = epoch_generators(trainer, epoch)
    batch = train_batch(trainer, order[0], mask_gen)
    windows, target, mask = batch.inputs, batch.target, batch.mask
    model, optimizer, scaler, precision, device = (
        trainer.forward,
        trainer.optimizer,
        trainer.scaler,
        trainer.precision,
        trainer.device,
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
