"""Which floating-point precision a run uses, and the autocast/GradScaler that go with it.

The original study trained T5 with fp16 AMP and diverged: T5's feed-forward activations
exceed float16's range (65504), turn into inf and then NaN. bf16 has float32's exponent
range, so it is the default wherever the hardware computes it natively; elsewhere the
run falls back to fp32 rather than emulating bf16 slowly.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch

LOG = logging.getLogger(__name__)

#: model_type values whose activations are known to overflow float16.
FP16_UNSAFE_MODEL_TYPES = frozenset({"t5", "mt5", "umt5", "longt5", "switch_transformers"})

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


class PrecisionError(ValueError):
    """The requested precision is refused for this model or device."""


@dataclass(frozen=True)
class PrecisionPolicy:
    """A resolved precision: ``name`` is what summary.json reports."""

    name: str
    autocast_dtype: torch.dtype | None

    @property
    def uses_grad_scaler(self) -> bool:
        """fp16 needs loss scaling: small gradients underflow float16 otherwise."""
        return self.autocast_dtype == torch.float16

    @contextlib.contextmanager
    def autocast(self, device: torch.device) -> Iterator[None]:
        """Autocast for this policy on ``device``; a no-op for fp32."""
        if self.autocast_dtype is None:
            yield
            return
        with torch.autocast(device_type=device.type, dtype=self.autocast_dtype):
            yield

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler(device.type) if self.uses_grad_scaler else None


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matmuls natively (not by slow emulation)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    if device.type == "mps":
        return bool(torch.backends.mps.is_macos_or_newer(14, 0))
    return False


def resolve_precision(
    requested: str,
    device: torch.device,
    *,
    model_type: str | None,
    force_fp16: bool = False,
) -> PrecisionPolicy:
    """Turn ``train.precision`` into a policy for ``device`` and the encoder's ``model_type``.

    ``model_type`` is None when the model has no encoder (the no_encoder variant): then
    fp16 has nothing known to overflow and is allowed.
    """
    if requested not in ("auto", *_DTYPES):
        raise PrecisionError(
            f"train.precision = {requested!r} is not allowed (allowed: auto, bf16, fp32, fp16)"
        )
    if requested == "auto":
        name = "bf16" if bf16_native(device) else "fp32"
        return PrecisionPolicy(name, _DTYPES[name])
    if requested == "fp16" and model_type in FP16_UNSAFE_MODEL_TYPES and not force_fp16:
        raise PrecisionError(
            f"train.precision = fp16 is refused for a {model_type} encoder: its activations exceed "
            "float16's largest value (65504), become inf/NaN and the loss diverges (this is how the "
            "original study's no-freeze run failed). Use precision auto, bf16 or fp32, or set "
            "train.force_fp16: true to override."
        )
    if requested == "fp16" and model_type in FP16_UNSAFE_MODEL_TYPES:
        LOG.warning("fp16 forced for a %s encoder (train.force_fp16): expect overflow", model_type)
    if requested == "bf16" and not bf16_native(device):
        LOG.warning("bf16 requested on %s, which emulates it: expect it to be slower than fp32", device)
    return PrecisionPolicy(requested, _DTYPES[requested])
