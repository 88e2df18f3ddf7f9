"""The other jobs a measured step shares the machine with: companion processes running the same step.

When the schedule runs ``k`` CPU training jobs at once, each one's step is slower than the
same step alone (the jobs share memory bandwidth and caches, and Snakemake runs beside them:
two offline train jobs at once took 1.07x one alone on the 2-core development machine). So
the plan times a CPU shape's steps and passes while ``k - 1`` companions, each a fresh
process (``spawn``) with one thread, train the same shape's step in a loop; they stop when
the measurement ends. Nothing is written: they read the plan's temporary data directory.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from workflow_scripts.config.base import VariantConfig
from workflow_scripts.data.derived import load_derived
from workflow_scripts.training.bench_hooks import make_step_fn
from workflow_scripts.training.build import build_run
from workflow_scripts.training.identity import patch_len_of

#: Seconds a companion may take to start (import torch, build its run) before the plan gives up.
START_TIMEOUT_S = 300.0


def companion(
    variant: VariantConfig, epoch: int, data_dir: Path, model_dir: Path, ready: Any, stop: Any
) -> None:
    """One companion's life: build the run, say it is ready, train ``epoch``'s steps until ``stop``."""
    torch.set_num_threads(1)
    dataset = load_derived(data_dir)
    patch_len = patch_len_of(dataset.manifest, model_dir)
    run = build_run(variant, 0, dataset, model_dir, patch_len=patch_len, experiment_rms=1.0)
    step = make_step_fn(run, epoch)
    step()
    ready.put(True)
    while not stop.is_set():
        step()


@contextmanager
def companions(
    count: int, variant: VariantConfig, epoch: int, data_dir: Path, model_dir: Path
) -> Iterator[None]:
    """``count`` companions training ``variant``'s step in ``epoch`` while the block runs (none: 0)."""
    if count < 1:
        yield
        return
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    arguments = (variant, epoch, data_dir, model_dir, ready, stop)
    processes = [context.Process(target=companion, args=arguments, daemon=True) for _ in range(count)]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=START_TIMEOUT_S)
        yield
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
