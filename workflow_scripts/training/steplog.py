"""Per-step loss and gradient norm, kept on the device until a log point reads them.

A step reads nothing back from the device; the loop reads the log every ``LOG_EVERY``
steps and at the end of the epoch, which is also when a non-finite value is reported,
naming the first step that produced it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

#: Steps between reads of the loss from the device (progress bar and non-finite check).
LOG_EVERY = 25


#: Seconds between the job log's progress lines (steps done, step rate, the job's ETA).
PROGRESS_EVERY_S = 30.0


class Progress:
    """The job's progress line every ``every_s`` seconds: steps done, step rate and ETA.

    The rate is the steps this process trained over its wall time so far (validation and
    budget passes included), so the ETA covers them too; it reads the clock only, never the
    device.
    """

    def __init__(
        self,
        total: int,
        done: int,
        every_s: float = PROGRESS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.done, self.every_s, self.clock = total, done, every_s, clock
        self.started = self.last = clock()
        self.done_at_start = done

    def step(self) -> str | None:
        """Count one step; the progress line when ``every_s`` has passed since the last one."""
        self.done += 1
        now = self.clock()
        if now - self.last < self.every_s:
            return None
        self.last = now
        rate = (self.done - self.done_at_start) / max(now - self.started, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        return (
            f"progress: step {self.done}/{self.total} ({self.done / self.total:.0%}), "
            f"{rate:.2f} steps/s, ETA {eta:.0f} s"
        )


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN or infinite; the message names the epoch and step."""


class StepLog:
    """Per-step loss and gradient norm, kept on the device until a log point reads them."""

    def __init__(self, steps: int, device: torch.device, *, check_grad: bool) -> None:
        self.loss = torch.zeros(steps, device=device)
        self.grad_norm = torch.zeros(steps, device=device)
        self.check_grad = check_grad

    def record(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        self.loss[step] = loss.detach()
        self.grad_norm[step] = grad_norm.detach()

    def check(self, done: int, epoch: int, steps: int) -> float:
        """Raise NonFiniteError at the first non-finite step of ``[0, done)``; return their mean loss."""
        loss = self.loss[:done].cpu()
        norm = self.grad_norm[:done].cpu()
        finite = torch.isfinite(loss) & (torch.isfinite(norm) if self.check_grad else True)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0])
            what, value = (
                ("loss", loss[first]) if not torch.isfinite(loss[first]) else ("gradient norm", norm[first])
            )
            global_step = (epoch - 1) * steps + first + 1
            raise NonFiniteError(
                f"non-finite training {what} ({float(value)}) at epoch {epoch}, step {first + 1} of {steps} "
                f"(global step {global_step}); the run is stopped. Lower the learning rate, use bf16 or "
                "fp32 instead of fp16, or check the input data for NaN/inf."
            )
        return float(loss.mean())

    def means(self) -> tuple[float, float]:
        """(mean loss, mean finite gradient norm) over the epoch."""
        loss = self.loss.cpu().double()
        norm = self.grad_norm.cpu().double()
        finite = torch.isfinite(norm)
        return float(loss.mean()), float(norm[finite].mean()) if bool(finite.any()) else 0.0
