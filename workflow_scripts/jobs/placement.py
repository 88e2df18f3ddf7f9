"""Which training jobs claim a GPU, and how many threads each job runs with.

Decided when Snakemake builds the DAG, from the config and the machine, so that a study
that trains on the CPU runs its jobs side by side (``snakemake --cores N`` runs N of
them, one thread each) instead of queueing them behind a ``gpu`` resource it does not
use. A job's ``train.device`` (per variant; ``pretrain.train.device`` for the
pretraining):

* ``cpu``: a CPU job: no ``gpu`` resource, ``CPU_JOB_THREADS`` thread(s).
* ``cuda`` or ``mps``: a GPU job: ``gpu=1`` (one slot of the pool,
  ``workflow_scripts.gpu_slots``) and ``GPU_JOB_THREADS`` threads for the host side.
* ``auto``: a GPU job when the jobs run elsewhere (a cluster or cloud executor: the
  scheduler's nodes, not this machine, decide), when ``STAGE1_GPUS`` names devices (the
  pool is given explicitly), when torch on this machine sees CUDA or MPS
  (``torch.cuda.is_available()``), or when a GPU is expected here but torch sees none
  (``gpu_pool.gpu_evidence``: a driver, a device listed by nvidia-smi,
  ``CUDA_VISIBLE_DEVICES``). That last case is warned about now, and each job stops
  with the cause (``training.device.resolve_device``) instead of quietly becoming a
  one-thread CPU job. Otherwise a CPU job. torch is imported for that only where
  there could be an accelerator (an NVIDIA or AMD driver, ``CUDA_VISIBLE_DEVICES``, or
  macOS), so a dry run on a machine without one pays nothing.

``--set-threads train=2 pretrain=2`` (Snakemake's own option) gives jobs more threads.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from workflow_scripts.jobs.gpu_pool import GPUS_VARIABLE, gpu_evidence, has_nvidia_gpu, parse_device_list

#: Threads of a CPU job: one, so that ``--cores N`` runs N jobs at once (two one-thread
#: runs at once beat the same two in turn with two threads each by 1.4x on 2 cores).
CPU_JOB_THREADS = 1
#: Threads of a GPU job: the data and optimizer work on the host side of the step.
GPU_JOB_THREADS = 4


def pool_named(environ: Mapping[str, str]) -> bool:
    """Does ``STAGE1_GPUS`` name devices (rather than auto, visible, none or nothing)?"""
    setting = environ.get(GPUS_VARIABLE, "").strip()
    if setting.lower() in ("", "auto", "visible", "none", "off"):
        return False
    return bool(parse_device_list(setting))


@functools.cache
def local_accelerator() -> bool:
    """Would a job on this machine train on CUDA (or ROCm) or MPS? Cached: asked once per run.

    Also True where a GPU is expected but torch sees none (with a warning on stderr):
    the jobs then stop with the cause instead of training on the CPU for days.
    """
    visible = parse_device_list(os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    if sys.platform != "darwin" and not (has_nvidia_gpu() or visible or Path("/dev/kfd").exists()):
        return False  # no driver: torch cannot see a GPU, and importing it would cost a second
    import torch

    if torch.cuda.is_available() or torch.backends.mps.is_available():
        return True
    facts = gpu_evidence(os.environ)
    if facts:
        print(
            f"WARNING: train.device auto: a GPU is expected here ({'; '.join(facts)}) but torch sees "
            "none; the jobs claim a GPU and will stop with the cause (python -m "
            "workflow_scripts.gpu_check shows what torch sees; train.device: cpu trains on the CPU)",
            file=sys.stderr,
        )
    return bool(facts)


def trains_on_gpu(requested: str, *, local: bool, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a job with ``train.device = requested`` is a GPU job (see the module docstring)."""
    if requested == "cpu":
        return False
    if requested in ("cuda", "mps"):
        return True
    if requested != "auto":
        raise ValueError(f"train.device = {requested!r} is not allowed (allowed: auto, cpu, cuda, mps)")
    return not local or pool_named(environ) or local_accelerator()


def job_threads(on_gpu: bool) -> int:
    """The ``threads`` of a training job: ``GPU_JOB_THREADS`` or ``CPU_JOB_THREADS``."""
    return GPU_JOB_THREADS if on_gpu else CPU_JOB_THREADS
