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

Which GPUs form the pool (``jobs.gpu_pool.choose_pool``), first rule that applies:

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
   Where that lists nothing but the driver is there (``/dev/nvidiactl``; nvidia-smi
   missing or failing, as in a slim container), the pool counts the ``/dev/nvidia[0-9]*``
   device nodes and the job log warns, naming both facts (an empty pool on a GPU machine
   is never silent). Without ``nvidia-smi`` and ``/dev/nvidiactl`` (a machine without
   NVIDIA GPUs) the pool is empty and nothing happens; torch is never imported for the decision.

``jobs.gpu_locks.gpu_slot()`` is the same mechanism as a context manager, for an entry
point that wants to take the slot in-process before importing torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from workflow_scripts.jobs.gpu_locks import take_slot
from workflow_scripts.jobs.gpu_pool import DEFAULT_LOCK_DIR, LOCK_DIR_VARIABLE
from workflow_scripts.jobs.logs import setup_logging

log = logging.getLogger("workflow_scripts.gpu_slots")


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
