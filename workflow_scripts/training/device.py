"""Which device trains, and the backend switches that make it fast.

CUDA first (torch numbers the devices CUDA_VISIBLE_DEVICES leaves visible, so
``cuda`` is always the first of those the scheduler gave this job), then Apple's MPS,
then the CPU.
"""

from __future__ import annotations

import os
from typing import Any

import torch


class DeviceError(RuntimeError):
    """The requested device is not available on this machine."""


def resolve_device(requested: str = "auto") -> torch.device:
    """``train.device`` (auto, cuda, mps, cpu) -> a torch device that exists here."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            raise DeviceError(
                "train.device = cuda, but no CUDA device is visible"
                + (f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else "")
                + "; use device: auto to fall back to MPS or the CPU"
            )
        return torch.device("cuda", torch.cuda.current_device())
    if requested == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("train.device = mps, but MPS is not available on this machine")
        return torch.device("mps")
    if requested == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"train.device = {requested!r} is not allowed (allowed: auto, cuda, mps, cpu)")


def configure_backends(device: torch.device) -> None:
    """TF32 matmuls and convolutions on CUDA: float32 range at tensor-core speed."""
    if device.type != "cuda":
        return
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        matmul.fp32_precision = "tf32"
        conv: Any = getattr(torch.backends.cudnn, "conv", None)
        if conv is not None:
            conv.fp32_precision = "tf32"
    else:  # torch < 2.9
        matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def describe_device(device: torch.device) -> str:
    """Human-readable device for summary.json, e.g. ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (for timing)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
