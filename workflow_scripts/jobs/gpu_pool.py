"""Which GPUs a local run's jobs may take: the pool and where it came from.

The decision behind ``workflow_scripts.gpu_slots`` (whose docstring gives the rules in
order): a scheduler in charge, ``STAGE1_GPUS``, ``CUDA_VISIBLE_DEVICES``, ``nvidia-smi -L``
or, where that lists nothing on a machine with an NVIDIA driver, the count of
``/dev/nvidia[0-9]*`` device nodes. torch is never imported for it. ``gpu_evidence`` is
what a job expecting a GPU is told when torch sees none (``training.device``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The pool setting: unset/auto, visible, none, or a comma-separated device list.
GPUS_VARIABLE = "STAGE1_GPUS"
#: Set (to the executor's name) in jobs that a cluster or cloud executor started.
SCHEDULER_VARIABLE = "STAGE1_GPU_SCHEDULER"
#: Overrides the lock directory (e.g. one shared by several checkouts on one machine).
LOCK_DIR_VARIABLE = "STAGE1_GPU_LOCK_DIR"
#: Slots per device (``gpu_slots.jobs_per_gpu``; the workflow exports it to its jobs).
JOBS_PER_GPU_VARIABLE = "STAGE1_JOBS_PER_GPU"
DEFAULT_LOCK_DIR = Path(".snakemake") / "gpu-slots"

#: Variables a batch scheduler sets in its jobs; any of them means it chose the GPUs.
SCHEDULER_JOB_VARIABLES = {
    "SLURM_JOB_ID": "Slurm",
    "SLURM_STEP_GPUS": "Slurm",
    "SLURM_JOB_GPUS": "Slurm",
    "KUBERNETES_SERVICE_HOST": "Kubernetes",
    "LSB_JOBID": "LSF",
    "PBS_JOBID": "PBS",
    "_CONDOR_JOB_AD": "HTCondor",
    "FLUX_JOB_ID": "Flux",
    "AWS_BATCH_JOB_ID": "AWS Batch",
}

_NVIDIA_SMI_GPU = re.compile(r"^GPU (\d+):")
_NVIDIA_SMI_MIG = re.compile(r"^\s+MIG .*\(UUID: (MIG-[^)\s]+)\)")
#: A GPU's device node (``/dev/nvidia0``), unlike ``nvidiactl``, ``nvidia-uvm``, ``nvidia-caps``.
_DEVICE_NODE = re.compile(r"^nvidia\d+$")
#: Where the driver's device nodes live (a parameter in tests).
DEV_DIR = Path("/dev")

log = logging.getLogger("workflow_scripts.gpu_slots")


@dataclass(frozen=True)
class Pool:
    """The devices jobs may take (empty: assign nothing) and where that came from."""

    devices: tuple[str, ...]
    source: str
    #: True when there is simply no GPU here: nothing to say in the log.
    quiet: bool = False
    #: True when the pool is a guess or empty on a machine with a GPU driver: a warning in the log.
    warning: bool = False


def jobs_per_gpu(environ: Mapping[str, str]) -> int:
    """``STAGE1_JOBS_PER_GPU`` (default 1): how many slots each device of the pool has."""
    text = environ.get(JOBS_PER_GPU_VARIABLE, "").strip() or "1"
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{JOBS_PER_GPU_VARIABLE}={text!r} must be a whole number >= 1")
    return int(text)


def pool_slots(devices: Sequence[str], per_device: int = 1) -> list[tuple[str, int]]:
    """Every (device, slot) of the pool, slot 0 of every device first.

    In that order a free device is always taken before a second job joins a busy one,
    and no device ever gets more than ``per_device`` jobs (one lock file per slot).
    """
    return [(device, index) for index in range(per_device) for device in devices]


def parse_device_list(text: str) -> tuple[str, ...]:
    """``CUDA_VISIBLE_DEVICES`` syntax -> device ids; like CUDA, stop at the first ``-1``."""
    devices: list[str] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        if entry.startswith("-"):
            break
        devices.append(entry)
    return tuple(devices)


def parse_nvidia_smi(listing: str) -> tuple[str, ...]:
    """``nvidia-smi -L`` output -> device ids: GPU indices, or a GPU's MIG UUIDs if it has any."""
    devices: list[str] = []
    current: str | None = None
    migs: list[str] = []

    def flush() -> None:
        if current is not None:
            devices.extend(migs or [current])

    for line in listing.splitlines():
        gpu = _NVIDIA_SMI_GPU.match(line)
        if gpu:
            flush()
            current, migs = gpu.group(1), []
            continue
        mig = _NVIDIA_SMI_MIG.match(line)
        if mig and current is not None:
            migs.append(mig.group(1))
    flush()
    return tuple(devices)


def nvidia_smi_devices() -> tuple[str, ...]:
    """The machine's NVIDIA devices, without initialising CUDA in this process; () if none."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return ()
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    try:
        result = subprocess.run(
            [executable, "-L"], capture_output=True, text=True, timeout=60, check=False, env=env
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    return parse_nvidia_smi(result.stdout) if result.returncode == 0 else ()


def leave_gpus_to_scheduler(scheduler: str, environ: MutableMapping[str, str] = os.environ) -> None:
    """Mark this process's jobs as placed by ``scheduler``: the pool assigns them nothing."""
    environ[SCHEDULER_VARIABLE] = scheduler


def has_nvidia_gpu() -> bool:
    """Cheap: is there an NVIDIA driver on this machine at all (no subprocess, no CUDA)?"""
    return shutil.which("nvidia-smi") is not None or (DEV_DIR / "nvidiactl").exists()


def device_nodes(dev_dir: Path = DEV_DIR) -> tuple[str, ...]:
    """The GPU device nodes the driver created (``/dev/nvidia0``, ...), sorted; () if none.

    A container given GPUs sees their nodes even where ``nvidia-smi`` was not installed.
    """
    try:
        names = [entry.name for entry in dev_dir.iterdir() if _DEVICE_NODE.match(entry.name)]
    except OSError:
        return ()
    return tuple(str(dev_dir / name) for name in sorted(names, key=lambda name: int(name[6:])))


def gpu_evidence(
    environ: Mapping[str, str],
    list_devices: Callable[[], tuple[str, ...]] = nvidia_smi_devices,
    dev_dir: Path = DEV_DIR,
) -> tuple[str, ...]:
    """Why a GPU is expected here, one fact per entry; () when nothing points to one.

    A slot or a scheduler set ``CUDA_VISIBLE_DEVICES`` to devices, the driver's
    ``/dev/nvidiactl`` exists, or ``nvidia-smi -L`` lists a device. Where torch then
    sees no CUDA device, training on the CPU would be a silent mistake (a wheel built
    for a newer driver, a MIG GPU without instances, a container without the device).
    """
    facts = []
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and parse_device_list(visible):
        facts.append(f"CUDA_VISIBLE_DEVICES={visible} (set by a GPU slot, a scheduler or you)")
    if (dev_dir / "nvidiactl").exists():
        facts.append(f"{dev_dir / 'nvidiactl'} exists (an NVIDIA driver is loaded)")
    listed = list_devices()
    if listed:
        facts.append(f"nvidia-smi -L lists {len(listed)} device(s): {', '.join(listed)}")
    return tuple(facts)


def scheduler_in_charge(environ: Mapping[str, str]) -> str | None:
    """The scheduler that chose this job's GPUs (``"Slurm (SLURM_JOB_ID)"``), or None."""
    if environ.get(SCHEDULER_VARIABLE):
        return f"{environ[SCHEDULER_VARIABLE]} ({SCHEDULER_VARIABLE})"
    for name, scheduler in SCHEDULER_JOB_VARIABLES.items():
        if environ.get(name):
            return f"{scheduler} ({name})"
    return None


def choose_pool(
    environ: Mapping[str, str],
    list_devices: Callable[[], tuple[str, ...]] = nvidia_smi_devices,
    has_gpu: Callable[[], bool] = has_nvidia_gpu,
    list_nodes: Callable[[], tuple[str, ...]] = device_nodes,
) -> Pool:
    """Which devices the pool hands out (see the module docstring for the rules)."""
    setting = environ.get(GPUS_VARIABLE, "").strip()
    mode = setting.lower() or "auto"
    if environ.get(SCHEDULER_VARIABLE):
        return Pool((), f"the scheduler chose this job's GPUs: {scheduler_in_charge(environ)}")
    if mode in ("none", "off"):
        return Pool((), f"{GPUS_VARIABLE}={setting}")
    if mode not in ("auto", "visible"):
        devices = parse_device_list(setting)
        if not devices:
            raise ValueError(
                f"{GPUS_VARIABLE}={setting!r} names no device; use a list such as 0,2, or auto, visible, none"
            )
        return Pool(devices, f"{GPUS_VARIABLE}={setting}")
    scheduler = scheduler_in_charge(environ)
    if mode == "auto" and scheduler is not None:
        return Pool((), f"the scheduler chose this job's GPUs: {scheduler}")
    if not has_gpu():
        return Pool((), "no NVIDIA GPU on this machine", quiet=True)
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return Pool(parse_device_list(visible), f"CUDA_VISIBLE_DEVICES={visible}")
    devices = list_devices()
    if devices:
        return Pool(devices, "nvidia-smi -L")
    return pool_from_device_nodes(list_nodes())


def pool_from_device_nodes(nodes: tuple[str, ...]) -> Pool:
    """The pool of a machine with an NVIDIA driver whose ``nvidia-smi -L`` lists nothing.

    nvidia-smi is missing (a slim container) or failed: count the device nodes and
    number the pool 0..n-1 as CUDA numbers what this process can see (a container given
    GPU 3 sees ``/dev/nvidia3`` as CUDA device 0). Never quiet: the job log names both facts.
    """
    smi = "nvidia-smi -L listed no GPU" if shutil.which("nvidia-smi") else "nvidia-smi is not on PATH"
    if not nodes:
        return Pool(
            (),
            f"an NVIDIA driver is here, but {smi} and there is no /dev/nvidia[0-9]* device node",
            warning=True,
        )
    devices = tuple(str(index) for index in range(len(nodes)))
    return Pool(devices, f"{smi}; counted {len(nodes)} device node(s): {', '.join(nodes)}", warning=True)
