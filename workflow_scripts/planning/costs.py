"""Seconds per job, from its counted work (``work``) and the times measured on this machine.

Definitions (every time in seconds, measured on the device the study will use):

* ``ShapeCost.step_s`` / ``frozen_step_s``: one optimizer step of the project loop
  (``training.bench_hooks.make_step_fn``: batch building, forward, backward, clip, AdamW)
  with the encoder training / frozen;
* ``ShapeCost.val_pass_s`` / ``test_pass_s``: one validation / test-split pass of the model;
* ``ShapeCost.build_s``: building the run at step 0 (data, model, optimizer, eval splits);
* ``FixedCosts.import_s[rule]``: a fresh Python process importing the rule's entry point;
  ``FixedCosts.work_s[rule]``: the rest of a non-training job (``DEFAULT_WORK_S``, or measured);
  ``FixedCosts.job_overhead_s``: Snakemake's own cost per job (start, benchmark, bookkeeping).

A training job takes ``start-up + steps + validation + budget + test`` where start-up is
``job_overhead_s + import_s + build_s``, steps is ``steps_training x step_s + steps_frozen x
frozen_step_s``, validation ``val_passes x val_pass_s``, budget ``budget_passes x
test_pass_s`` and test ``test_passes x test_pass_s``. Any other job takes ``job_overhead_s +
import_s + work_s``. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from workflow_scripts.planning.work import JobWork

#: Seconds of a non-training job beyond its imports, measured on the 2-core development
#: machine: each job's start and end in Snakemake's records (.snakemake/metadata) of the smoke
#: and offline runs, less its entry point's import time (report 3.0-3.1 s in all, 1.3 s of it
#: importing; verify_model 4.0-4.8 s, 4.0 s; reference 2.2 s on smoke's data, 5.0 s on
#: offline's, 1.6 s; collect 1.4-1.6 s, 1.1 s). ``plan`` replaces preprocess's with the time it
#: measures.
DEFAULT_WORK_S: Mapping[str, float] = {
    "download_model": 0.2,
    "verify_model": 0.9,
    "preprocess": 0.5,
    "reference": 3.4,
    "select_lr": 0.2,
    "collect": 0.5,
    "report": 1.8,
}
#: Snakemake's own seconds per job (scheduling, the benchmark thread, output checks).
JOB_OVERHEAD_S = 0.5
#: The entry point each rule runs (``import_s`` is timed per entry point).
RULE_ENTRY: Mapping[str, str] = {
    "download_model": "download_model",
    "verify_model": "verify_model",
    "preprocess": "preprocess",
    "pretrain": "pretrain",
    "tune_train": "train",
    "train": "train",
    "select_lr": "select_lr",
    "reference": "fit_reference",
    "collect": "collect",
    "report": "report",
}
PARTS = ("start-up", "steps", "validation", "budget", "test", "other")


@dataclass(frozen=True)
class ShapeCost:
    """What one shape's step and passes cost here (see the module docstring)."""

    step_s: float
    frozen_step_s: float
    val_pass_s: float
    test_pass_s: float
    build_s: float


@dataclass(frozen=True)
class FixedCosts:
    """Per-job costs that do not depend on the shape (see the module docstring)."""

    import_s: Mapping[str, float] = field(default_factory=dict)
    work_s: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WORK_S))
    job_overhead_s: float = JOB_OVERHEAD_S


def job_parts(job: JobWork, shapes: Mapping[str, ShapeCost], fixed: FixedCosts) -> dict[str, float]:
    """The seconds of ``job`` by part (``PARTS``); their sum is the job's duration."""
    start = fixed.job_overhead_s + fixed.import_s.get(RULE_ENTRY.get(job.rule, job.rule), 0.0)
    if job.shape is None:
        return {"start-up": start, "other": fixed.work_s.get(job.rule, 0.0)}
    cost = shapes[job.shape.key]
    return {
        "start-up": start + cost.build_s,
        "steps": job.steps_training * cost.step_s + job.steps_frozen * cost.frozen_step_s,
        "validation": job.val_passes * cost.val_pass_s,
        "budget": job.budget_passes * cost.test_pass_s,
        "test": job.test_passes * cost.test_pass_s,
    }


def job_seconds(job: JobWork, shapes: Mapping[str, ShapeCost], fixed: FixedCosts) -> float:
    """The duration of ``job`` alone on its slot: the sum of ``job_parts``."""
    return sum(job_parts(job, shapes, fixed).values())
