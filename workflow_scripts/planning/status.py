"""Where a running study stands against its plan: jobs done, running and waiting, time left. Pure.

Definitions: a job is *done* when its output exists, *running* when its log exists and its
output does not, else *waiting*. ``calibration`` is the finished training jobs' measured
seconds (Snakemake's benchmark files) over their planned seconds (1 when none has finished).
The time left is the schedule (``schedule.schedule``, on the plan's slots) of the jobs not
done, each planned duration times the calibration, a running job's less the seconds it has
already run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from workflow_scripts.planning.plan_file import PlannedJob, StudyPlan
from workflow_scripts.planning.schedule import Slots, Task, schedule, wall_time
from workflow_scripts.planning.work import TRAINING_RULES


@dataclass(frozen=True)
class StudyStatus:
    done: int
    running: int
    waiting: int
    calibration: float
    left_s: float


def job_files(job: PlannedJob) -> tuple[str | None, str | None]:
    """(log, Snakemake benchmark file) of a training job, from its output path (rules/train.smk,
    tune.smk, pretrain.smk); (None, None) for any other job."""
    parts = job.output.split("/")
    if job.rule in ("train", "tune_train"):
        # results/runs/{series}/fold{f}/{variant}/seed{s}/summary.json -> logs/train/{series}/fold{f}/
        # {variant}/seed{s}.log; results/tune/{series}/fold{f}/{variant}/{point}/seed{s}/... likewise
        kind = "train" if job.rule == "train" else "tune"
        tail = "/".join(parts[2:-1])
        return f"logs/{kind}/{tail}.log", f"benchmarks/{kind}/{tail}.tsv"
    if job.rule == "pretrain":  # resources/models/{slug}--timeseries--{dataset}/manifest.json
        # (a plan written before the per-dataset pretraining: {slug}--timeseries, logs/pretrain/pretrain.log)
        _, found, dataset = parts[-2].rpartition("--timeseries--")
        dataset = dataset if found else "pretrain"
        return f"logs/pretrain/{dataset}.log", f"benchmarks/pretrain/{dataset}.tsv"
    return None, None


def planned_s(job: PlannedJob) -> float:
    return sum(job.parts.values())


def study_status(
    plan: StudyPlan,
    done: set[str],
    running: Mapping[str, float],
    measured: Mapping[str, float],
) -> StudyStatus:
    """``done``: finished job names; ``running``: name -> seconds run so far; ``measured``: a
    finished training job's name -> its benchmark seconds."""
    finished = [job for job in plan.jobs if job.name in measured and job.rule in TRAINING_RULES]
    planned = sum(planned_s(job) for job in finished)
    calibration = sum(measured[job.name] for job in finished) / planned if planned > 0 else 1.0
    names = {job.name for job in plan.jobs if job.name not in done}
    tasks = [
        Task(
            job.name,
            max(0.0, planned_s(job) * calibration - running.get(job.name, 0.0)),
            after=tuple(parent for parent in job.after if parent in names),
        )
        for job in plan.jobs
        if job.name in names
    ]
    slots = Slots(plan.cores, plan.gpu, plan.jobs_per_gpu)
    left = wall_time(schedule(tasks, slots))
    running_now = sum(1 for name in running if name in names)
    return StudyStatus(len(plan.jobs) - len(names), running_now, len(names) - running_now, calibration, left)
