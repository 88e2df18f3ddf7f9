"""Which device trains, and the backend switches that make it fast.

CUDA first (torch numbers the devices CUDA_VISIBLE_DEVICES leaves visible, so
``cuda`` is always the first of those the scheduler, or the GPU slot pool of
``workflow_scripts.gpu_slots``, gave this job), then Apple's MPS, then the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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


def physical_gpu(index: int, environ: Mapping[str, str] = os.environ) -> str:
    """The id CUDA_VISIBLE_DEVICES gives torch's ``cuda:index`` (``index`` itself if unset).

    This is the machine's device number (or UUID) as nvidia-smi names it when the job was
    started with CUDA_DEVICE_ORDER=PCI_BUS_ID, as the GPU slot pool does.
    """
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return str(index)
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    return entries[index] if index < len(entries) else str(index)


def describe_device(device: torch.device) -> str:
    """Human-readable device for summary.json: ``cuda:0 = physical GPU 2 (NVIDIA H200)``."""
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        name = torch.cuda.get_device_name(index)
        return f"cuda:{index} = physical GPU {physical_gpu(index)} ({name})"
    return str(device)


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (for timing)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def limit_threads() -> int:
    """Use at most one thread per CPU this process may run on; return the thread count.

    Rules ask for 4 threads and Snakemake exports OMP_NUM_THREADS=4 even where ``--cores``
    exceeds the machine (the default profile's 4 on a 2-core laptop). Four threads on two
    cores made a training step 1.6x slower (measured: 53 s instead of 33 s for one
    all-MiniLM run), so the count is capped at the CPUs actually available.
    """
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, min(torch.get_num_threads(), available))
    torch.set_num_threads(threads)
    return threads
