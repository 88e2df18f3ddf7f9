"""AdamW over every parameter, with separate learning rates and a warmup-cosine schedule.

Every parameter is in the optimizer from step 0, frozen or not (``freezing`` explains
why). Parameters fall into groups by role and weight decay:

* ``new``: patch embedding and head, at ``learning_rate``;
* ``encoder``: the encoder, at ``encoder_learning_rate``, its schedule starting at the
  unfreeze step with its own warmup, so unfreezing does not hit pretrained weights with
  a full-size step computed from empty Adam moments;
* ``encoder_early``: encoder parameters that train while the rest is frozen
  (``trainable_while_frozen: layernorm``), at ``encoder_learning_rate`` from step 0.

Biases, norm weights and embedding tables get no weight decay (the usual AdamW practice:
decaying them towards zero only fights LayerNorm's scale and the learned positions).
The schedule is a pure function of the global step, so resuming needs only the step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from workflow_scripts.training.freezing import is_norm_module, trainable_while_frozen_parameters
from workflow_scripts.training.model import PatchEncoderModel


@dataclass(frozen=True)
class Schedule:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``min_lr_ratio`` at ``total_steps``."""

    total_steps: int
    warmup_steps: int
    min_lr_ratio: float

    def factor(self, step: int, start_step: int = 0) -> float:
        """LR multiplier at 0-based global ``step`` for a group whose training starts at ``start_step``.

        Zero before ``start_step``; a warmup from ``start_step``; the cosine decay runs
        on the global step for every group, so all groups end at ``min_lr_ratio``.
        """
        if step < start_step:
            return 0.0
        warm = 1.0 if self.warmup_steps <= 0 else min(1.0, (step - start_step + 1) / self.warmup_steps)
        decay_span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, max(0, step - self.warmup_steps) / decay_span)
        cosine = self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return warm * cosine


def _no_decay_ids(model: nn.Module) -> set[int]:
    ids: set[int] = set()
    for module in model.modules():
        if is_norm_module(module) or isinstance(module, nn.Embedding):
            ids.update(id(p) for p in module.parameters(recurse=False))
    ids.update(id(p) for p in model.parameters() if p.ndim < 2)
    return ids


def build_optimizer(
    model: PatchEncoderModel,
    *,
    learning_rate: float,
    encoder_learning_rate: float,
    weight_decay: float,
    unfreeze_step: int,
    trainable_while_frozen: str = "none",
    fused: bool = False,
) -> torch.optim.AdamW:
    """AdamW holding every parameter of ``model`` exactly once.

    ``unfreeze_step`` is the global step at which the encoder starts training (0 =
    from the start; ``total_steps`` or more = never).
    """
    encoder_ids = {id(p) for p in model.encoder.parameters()} if model.encoder is not None else set()
    early_ids = {id(p) for p in trainable_while_frozen_parameters(model, trainable_while_frozen)}
    no_decay = _no_decay_ids(model)
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for parameter in model.parameters():
        pid = id(parameter)
        role = "encoder_early" if pid in early_ids else "encoder" if pid in encoder_ids else "new"
        groups.setdefault((role, pid not in no_decay), []).append(parameter)
    settings = {
        "new": (learning_rate, 0),
        "encoder": (encoder_learning_rate, unfreeze_step),
        "encoder_early": (encoder_learning_rate, 0),
    }
    param_groups = []
    for (role, decay), params in sorted(groups.items()):
        base_lr, start = settings[role]
        param_groups.append(
            {
                "params": params,
                "name": f"{role}{'' if decay else '_no_decay'}",
                "role": role,
                "base_lr": base_lr,
                "start_step": start,
                "lr": base_lr,
                "weight_decay": weight_decay if decay else 0.0,
            }
        )
    return torch.optim.AdamW(param_groups, lr=learning_rate, weight_decay=weight_decay, fused=fused or None)


def set_learning_rates(optimizer: torch.optim.Optimizer, schedule: Schedule, step: int) -> None:
    """Set every group's lr for 0-based global ``step`` (a few float writes, no sync)."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * schedule.factor(step, group["start_step"])


def current_lr(optimizer: torch.optim.Optimizer, roles: Iterable[str]) -> float:
    """The largest lr among groups of ``roles`` (0.0 when there is none)."""
    wanted = set(roles)
    return max((g["lr"] for g in optimizer.param_groups if g["role"] in wanted), default=0.0)


def optimizer_parameter_ids(optimizer: torch.optim.Optimizer) -> list[int]:
    """ids of every parameter the optimizer holds (for the every-parameter check)."""
    return [id(p) for group in optimizer.param_groups for p in group["params"]]


@torch.no_grad()
def clip_gradients(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """The total 2-norm of the gradients of ``parameters``; with ``max_norm > 0`` they are
    scaled in place by ``min(max_norm / (norm + 1e-6), 1)``.

    ``torch.nn.utils.clip_grad_norm_``'s arithmetic to the bit (the 2-norm of the
    per-tensor 2-norms, the same clamped coefficient), without its per-call grouping of
    tensors by device and dtype: every trainable tensor here is on one device in one
    dtype. 0.11 ms instead of 0.18 ms per step for the tiny encoder's 27 tensors on a
    2-core CPU, host time that a short GPU step cannot hide either.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    if max_norm > 0:
        torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total
