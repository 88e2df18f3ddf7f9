"""A GPU slot pool: every concurrent GPU job of a local Snakemake run on a GPU of its own.

    python -m workflow_scripts.gpu_slots [--lock-dir DIR] -- python -m workflow_scripts.train ...

Snakemake's ``gpu`` resource is only a counter: with ``--resources gpu=4`` it starts four
training jobs at once, and each would take the first visible device. This wrapper runs
before the job's own Python (so before CUDA can initialise): it takes a free slot, one
lock file per GPU (``.snakemake/gpu-slots/gpu<N>.lock``, an exclusive ``fcntl.flock``),
sets ``CUDA_VISIBLE_DEVICES`` to that one device and then ``exec``s the command. The
lock's file descriptor is left open and inheritable across the ``exec``, so the training
process itself holds the lock for its whole life and the kernel releases it when that
process ends, however it ends (``kill -9`` included). No free-memory polling, no
round-robin: when every slot is taken the job blocks until one is released.

Which GPUs form the pool (``choose_pool``), first rule that applies:

1. ``STAGE1_GPU_SCHEDULER`` is set (``rules/train.smk`` sets it in jobs that a cluster or
   cloud executor started, i.e. Snakemake's remote mode): nothing is assigned.
2. ``STAGE1_GPUS=none``: nothing is assigned.
3. ``STAGE1_GPUS=0,2`` (any comma-separated list of CUDA device ids or UUIDs): exactly
   these, also inside a scheduler's allocation.
4. A batch scheduler's job variable is set (``SLURM_JOB_ID``, ``KUBERNETES_SERVICE_HOST``,
   ``LSB_JOBID``, ...): the scheduler chose this job's GPUs, nothing is assigned, unless
   ``STAGE1_GPUS=visible`` (one allocation shared by a local Snakemake, e.g. inside
   ``salloc --gpus=4``).
5. ``STAGE1_GPUS`` unset, ``auto`` or ``visible``: the devices ``CUDA_VISIBLE_DEVICES``
   names if Snakemake was started with it, else every device ``nvidia-smi -L`` lists.
   Without ``nvidia-smi`` on PATH (a machine without NVIDIA GPUs) the pool is empty and
   nothing happens; torch is never imported for the decision.

``gpu_slot()`` is the same mechanism as a context manager, for an entry point that wants
to take the slot in-process before importing torch.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
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

log = logging.getLogger("workflow_scripts.gpu_slots")


@dataclass(frozen=True)
class Pool:
    """The devices jobs may take (empty: assign nothing) and where that came from."""

    devices: tuple[str, ...]
    source: str
    #: True when there is simply no GPU here: nothing to say in the log.
    quiet: bool = False


@dataclass
class Slot:
    """A held slot: the device, which of its slots, and the open, locked file descriptor that holds it."""

    device: str
    fd: int
    path: Path
    waited_s: float
    index: int = 0


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
    return shutil.which("nvidia-smi") is not None or Path("/dev/nvidiactl").exists()


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
    return Pool(devices, "nvidia-smi -L", quiet=not devices)


def lock_path(lock_dir: Path, device: str, index: int = 0) -> Path:
    """``gpu<id>.lock`` for a device's first slot, ``gpu<id>.slot<k>.lock`` for its others."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", device)
    return lock_dir / (f"gpu{name}.lock" if index == 0 else f"gpu{name}.slot{index}.lock")


def _open_lock(lock_dir: Path, slot: tuple[str, int]) -> tuple[Path, int]:
    path = lock_path(lock_dir, *slot)
    return path, os.open(path, os.O_RDWR | os.O_CREAT, 0o666)


def _mark_holder(fd: int, device: str) -> None:
    """Write who holds the slot into its lock file (for ``cat``; the lock is the flock)."""
    os.ftruncate(fd, 0)
    stamp = datetime.now().isoformat(timespec="seconds")
    os.pwrite(fd, f"device {device}: pid {os.getpid()} since {stamp}\n".encode(), 0)


def _try_lock(lock_dir: Path, slot: tuple[str, int]) -> tuple[Path, int] | None:
    path, fd = _open_lock(lock_dir, slot)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return path, fd


def _wait_for_any(lock_dir: Path, slots: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], Path, int]:
    """Block (one blocking flock per slot, in threads) until any slot is ours.

    The first thread to get its lock wins; a thread that gets its lock later releases it
    at once. Threads still blocked vanish with ``exec`` (their descriptors are
    close-on-exec); in-process they wait as daemon threads and release what they get.
    """
    guard = threading.Lock()
    won = threading.Event()
    winner: list[tuple[tuple[str, int], Path, int]] = []
    errors: list[OSError] = []

    def wait(slot: tuple[str, int]) -> None:
        try:
            path, fd = _open_lock(lock_dir, slot)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as error:
            with guard:
                errors.append(error)
                if len(errors) == len(slots):
                    won.set()
            return
        with guard:
            if not winner:
                winner.append((slot, path, fd))
                won.set()
                return
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    for slot in slots:
        name = f"gpu-slot-{slot[0]}-{slot[1]}"
        threading.Thread(target=wait, args=(slot,), name=name, daemon=True).start()
    won.wait()
    with guard:
        if not winner:
            raise errors[0]
        return winner[0]


def acquire_slot(devices: Sequence[str], lock_dir: Path, per_device: int = 1) -> Slot:
    """Take the first free slot (``pool_slots`` order); if all are taken, wait for the first to free."""
    if not devices:
        raise ValueError("the GPU pool is empty")
    lock_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    slots = pool_slots(devices, per_device)
    for slot in slots:
        taken = _try_lock(lock_dir, slot)
        if taken is not None:
            path, fd = taken
            _mark_holder(fd, slot[0])
            return Slot(slot[0], fd, path, 0.0, slot[1])
    log.info(
        "GPU slot: all %d slots of the pool (%s, %d per GPU) are taken; waiting for one",
        len(slots),
        ",".join(devices),
        per_device,
    )
    (device, index), path, fd = _wait_for_any(lock_dir, slots)
    _mark_holder(fd, device)
    return Slot(device, fd, path, time.monotonic() - start, index)


def release_slot(slot: Slot) -> None:
    fcntl.flock(slot.fd, fcntl.LOCK_UN)
    os.close(slot.fd)


def lock_dir_from(environ: Mapping[str, str], lock_dir: Path | None = None) -> Path:
    if lock_dir is not None:
        return lock_dir
    return Path(environ[LOCK_DIR_VARIABLE]) if environ.get(LOCK_DIR_VARIABLE) else DEFAULT_LOCK_DIR


def take_slot(environ: MutableMapping[str, str], lock_dir: Path | None = None) -> Slot | None:
    """Choose the pool, take a slot and point ``CUDA_VISIBLE_DEVICES`` at it; None: nothing to do."""
    pool = choose_pool(environ)
    if not pool.devices:
        if not pool.quiet:  # a deliberate "no": say so; no GPU at all: say nothing
            visible = environ.get("CUDA_VISIBLE_DEVICES")
            shown = "CUDA_VISIBLE_DEVICES unset" if visible is None else f"CUDA_VISIBLE_DEVICES={visible}"
            log.info("GPU slot: none assigned (%s); %s", pool.source, shown)
        return None
    slot = acquire_slot(pool.devices, lock_dir_from(environ, lock_dir), jobs_per_gpu(environ))
    environ["CUDA_VISIBLE_DEVICES"] = slot.device
    # Device ids mean what nvidia-smi shows (PCI bus order), not CUDA's fastest-first order.
    environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    log.info(
        "GPU slot: took %s (CUDA_VISIBLE_DEVICES=%s; pool %s from %s) after waiting %.1f s",
        slot.path,
        slot.device,
        ",".join(pool.devices),
        pool.source,
        slot.waited_s,
    )
    return slot


@contextmanager
def gpu_slot(
    environ: MutableMapping[str, str] = os.environ, lock_dir: Path | None = None
) -> Iterator[Slot | None]:
    """Hold a GPU slot (CUDA_VISIBLE_DEVICES set) for the ``with`` block. Enter before importing torch."""
    slot = take_slot(environ, lock_dir)
    try:
        yield slot
    finally:
        if slot is not None:
            release_slot(slot)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.gpu_slots",
        description="Take a free GPU slot, set CUDA_VISIBLE_DEVICES to it and exec COMMAND.",
    )
    parser.add_argument(
        "--lock-dir",
        type=Path,
        default=None,
        help=f"one lock file per GPU (default: ${LOCK_DIR_VARIABLE} or {DEFAULT_LOCK_DIR})",
    )
    parser.add_argument(
        "--claim",
        type=int,
        choices=(0, 1),
        default=1,
        help="1 (default): take a slot; 0: a CPU job, run COMMAND as it is (the rule's gpu resource)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command given (usage: ... -- python -m workflow_scripts.train ...)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from workflow_scripts.logs import setup_logging

    setup_logging("workflow_scripts.gpu_slots")
    try:
        slot = take_slot(os.environ, args.lock_dir) if args.claim else None
    except (ValueError, OSError) as error:
        log.error("GPU slot: %s", error)
        return 1
    if slot is not None:
        os.set_inheritable(slot.fd, True)  # the exec'd command holds the lock from here on
    sys.stderr.flush()
    try:
        os.execvp(args.command[0], args.command)
    except OSError as error:
        log.error("GPU slot: cannot run %s: %s", args.command[0], error)
        return 127
    return 0  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    raise SystemExit(main())
