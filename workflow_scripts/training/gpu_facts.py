"""What torch sees of this machine's GPUs, for ``workflow_scripts.gpu_check``.

Read here rather than in the entry point so the check and training agree: the same
``cuda_failure`` explains a missing device, the same ``bf16_native`` decides
``precision: auto``, and the TF32 reads follow the same ``configure_backends``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workflow_scripts.training.device import configure_backends, cuda_failure
from workflow_scripts.training.precision import bf16_native


@dataclass(frozen=True)
class TorchFacts:
    """torch's view: its build, the CUDA devices it sees (or why none), bf16 and TF32."""

    version: str
    cuda_build: str | None
    #: One entry per visible CUDA device: ``cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)``.
    devices: tuple[str, ...]
    #: Why torch sees no CUDA device, in its words; None when it sees one.
    failure: str | None
    #: Native bf16 on ``cuda:0``; None without a CUDA device.
    bf16_native: bool | None
    #: Both kinds of TF32 read worked after ``configure_backends``, and what they said.
    tf32_ok: bool
    tf32: str


def describe_cuda_device(index: int) -> str:
    """``cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)``."""
    properties = torch.cuda.get_device_properties(index)
    memory = properties.total_memory / 2**30
    return f"cuda:{index} {properties.name} (sm_{properties.major}{properties.minor}, {memory:.0f} GiB)"


def tf32_reads() -> tuple[bool, str]:
    """Set TF32 as training does (the CUDA branch, also on a CPU build), then read it both ways.

    torch.compile and other libraries read the legacy flags; after torch's newer
    ``fp32_precision`` attribute is set those reads raise, which this would show.
    """
    configure_backends(torch.device("cuda"))
    try:
        legacy = torch.get_float32_matmul_precision()
        flag = torch.backends.cuda.matmul.allow_tf32
        new = torch.backends.cuda.matmul.fp32_precision
    except RuntimeError as error:
        return False, " ".join(str(error).split())[:200]
    said = f"get_float32_matmul_precision()={legacy}, matmul.allow_tf32={flag}, matmul.fp32_precision={new}"
    return legacy == "high" and flag is True and new == "tf32", said


def torch_facts() -> TorchFacts:
    """What torch sees here (initialises CUDA where there is one)."""
    available = torch.cuda.is_available()
    devices = tuple(describe_cuda_device(i) for i in range(torch.cuda.device_count())) if available else ()
    tf32_ok, tf32 = tf32_reads()
    return TorchFacts(
        version=torch.__version__,
        cuda_build=torch.version.cuda,
        devices=devices,
        failure=None if available else cuda_failure(),
        bf16_native=bf16_native(torch.device("cuda", 0)) if available else None,
        tf32_ok=tf32_ok,
        tf32=tf32,
    )
