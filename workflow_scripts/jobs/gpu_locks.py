"""GPU slots as lock files: take one, hold it for the life of the process, release it.

One exclusive ``fcntl.flock`` per slot (``.snakemake/gpu-slots/gpu<N>.lock``); the held
file descriptor survives the ``exec`` of the job's command, so the kernel releases the
slot when the job ends, however it ends. ``gpu_slot()`` is the same as a context manager.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from workflow_scripts.jobs.gpu_pool import (
    DEFAULT_LOCK_DIR,
    LOCK_DIR_VARIABLE,
    choose_pool,
    jobs_per_gpu,
    pool_slots,
)

log = logging.getLogger("workflow_scripts.gpu_slots")


@dataclass
class Slot:
    """A held slot: the device, which of its slots, and the open, locked file descriptor that holds it."""

    device: str
    fd: int
    path: Path
    waited_s: float
    index: int = 0


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
    if pool.warning:
        log.warning("GPU slot: %s", pool.source)
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
