"""Per-step loss and gradient norm, kept on the device until a log point reads them.

A step reads nothing back from the device; the loop reads the log every ``LOG_EVERY``
steps and at the end of the epoch, which is also when a non-finite value is reported,
naming the first step that produced it.
"""

from __future__ import annotations

import torch

#: Steps between reads of the loss from the device (progress bar and non-finite check).
LOG_EVERY = 25


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
