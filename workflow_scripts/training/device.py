"""Which device trains, and the backend switches that make it fast.

CUDA first (torch numbers the devices CUDA_VISIBLE_DEVICES leaves visible, so
``cuda`` is always the first of those the scheduler, or the GPU slot pool of
``workflow_scripts.gpu_slots``, gave this job), then Apple's MPS, then the CPU. ``auto``
never falls back to the CPU where a GPU is expected (``jobs.gpu_pool.gpu_evidence``): a
10,000-step study on the CPU by mistake would run for days with "device cpu" as its only
trace, so the job stops and says why instead; ``train.device: cpu`` trains on the CPU on
purpose.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import torch

from workflow_scripts.jobs.gpu_pool import gpu_evidence

#: cuBLAS's workspace setting under which its matmuls are deterministic (NVIDIA's docs).
CUBLAS_WORKSPACE = ":4096:8"


class DeviceError(RuntimeError):
    """The requested device is not available on this machine."""


def resolve_device(
    requested: str = "auto",
    *,
    environ: Mapping[str, str] = os.environ,
    evidence: Callable[[Mapping[str, str]], tuple[str, ...]] = gpu_evidence,
) -> torch.device:
    """``train.device`` (auto, cuda, mps, cpu) -> a torch device that exists here.

    ``auto`` with no CUDA device visible to torch raises ``DeviceError`` where
    ``evidence(environ)`` says a GPU is expected, rather than training on the CPU.
    """
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        facts = evidence(environ)
        if facts:
            raise DeviceError(missing_gpu_message(facts))
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            visible = environ.get("CUDA_VISIBLE_DEVICES")
            raise DeviceError(
                "train.device = cuda, but no CUDA device is visible"
                + (f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else "")
                + f"; torch says: {cuda_failure()}. Check the install with python -m "
                "workflow_scripts.gpu_check, or set train.device: cpu to train on the CPU"
            )
        return torch.device("cuda", torch.cuda.current_device())
    if requested == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("train.device = mps, but MPS is not available on this machine")
        return torch.device("mps")
    if requested == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"train.device = {requested!r} is not allowed (allowed: auto, cuda, mps, cpu)")


def cuda_failure() -> str:
    """Why torch has no CUDA device, in its own words (its CUDA initialisation error)."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a build without CUDA"
    try:
        torch.cuda.init()
    except Exception as error:  # torch raises AssertionError or RuntimeError here
        return " ".join(str(error).split()) or type(error).__name__
    return f"CUDA initialises, but torch counts {torch.cuda.device_count()} device(s)"


def missing_gpu_message(facts: tuple[str, ...]) -> str:
    """The error of ``auto`` where a GPU is expected and torch sees none: the cause and the fix."""
    return (
        f"train.device = auto, but torch sees no CUDA device although a GPU is expected here: "
        f"{'; '.join(facts)}. torch says: {cuda_failure()} (torch built for CUDA {torch.version.cuda}). "
        "Usual causes: a torch wheel without CUDA or built for a newer CUDA than this machine's "
        "driver (nvidia-smi shows the driver's CUDA version), a MIG GPU with no instances, or a "
        "container started without the GPU (docker --gpus all). Fix the install (python -m "
        "workflow_scripts.gpu_check shows what torch sees), or set train.device: cpu to train "
        "on the CPU on purpose (and unset CUDA_VISIBLE_DEVICES on a machine without a GPU)."
    )


def configure_backends(device: torch.device) -> None:
    """On CUDA: TF32 matmuls and convolutions, and deterministic kernels where they cost little.

    TF32 gives float32 range at tensor-core speed. It is set through the legacy flags
    only: after torch's newer ``fp32_precision`` attribute is set, the legacy reads
    (``torch.get_float32_matmul_precision()``, ``matmul.allow_tf32``, which
    ``torch.compile`` and other libraries use) raise "mix of the legacy and new APIs",
    while after the legacy flags both kinds of read work. Then ``use_deterministic_kernels``.
    """
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    use_deterministic_kernels()


def use_deterministic_kernels() -> None:
    """Make a CUDA run repeat itself: the same GPU, driver, torch and seed give the same numbers.

    Deterministic algorithms where torch has them (``warn_only``: an op without one
    warns once in the log instead of stopping a run), cuBLAS's deterministic workspace
    (read when cuBLAS starts, so before the first matmul), cuDNN without autotuning,
    and attention through the math kernel: the flash and memory-efficient kernels have
    a non-deterministic backward (T5's float position bias takes the memory-efficient
    one) and stay so under ``warn_only``. The sequences here are tens to hundreds of
    tokens, where the math kernel costs little. docs/training.md, Reproducibility.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.enable_flash_sdp(False)
    torch.backends.cuda.enable_mem_efficient_sdp(False)
    torch.backends.cuda.enable_cudnn_sdp(False)


def fp32_name(device: torch.device) -> str:
    """What ``precision: fp32`` computes matmuls in on ``device`` after ``configure_backends``."""
    return "tf32" if device.type == "cuda" else "fp32"


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
