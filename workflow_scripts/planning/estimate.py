"""From counted work and measured costs to the study's wall time and its largest parts. Pure.

``study_wall`` is the whole estimate in one call (used again for every setting the budget
advice tries); ``largest_parts`` says in words where the time goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from workflow_scripts.config.experiment import ExperimentConfig
from workflow_scripts.planning.costs import PARTS, FixedCosts, ShapeCost, job_parts
from workflow_scripts.planning.schedule import Placed, Slots, Task, schedule, wall_time
from workflow_scripts.planning.work import TRAINING_RULES, JobWork, is_pretrained, remaining, study_jobs

#: Threads of a job: a GPU training job 4, everything else 1 (``jobs.placement``).
GPU_JOB_THREADS = 4


@dataclass(frozen=True)
class Estimate:
    """The jobs still to run, each one's seconds by part, and where the schedule puts them."""

    jobs: list[JobWork]
    parts: dict[str, dict[str, float]]
    placed: list[Placed]

    @property
    def wall_s(self) -> float:
        return wall_time(self.placed)


def tasks_of(jobs: Sequence[JobWork], parts: Mapping[str, Mapping[str, float]]) -> list[Task]:
    """The scheduler's tasks: a GPU training job claims a GPU and ``GPU_JOB_THREADS`` cores."""
    return [
        Task(
            job.name,
            sum(parts[job.name].values()),
            threads=GPU_JOB_THREADS if job.gpu and job.rule in TRAINING_RULES else 1,
            gpu=job.gpu and job.rule in TRAINING_RULES,
            after=job.after,
        )
        for job in jobs
    ]


def estimate(
    jobs: Sequence[JobWork], shapes: Mapping[str, ShapeCost], fixed: FixedCosts, slots: Slots
) -> Estimate:
    parts = {job.name: job_parts(job, shapes, fixed) for job in jobs}
    return Estimate(list(jobs), parts, schedule(tasks_of(jobs, parts), slots))


def study_wall(
    experiment: ExperimentConfig,
    on_gpu: dict[str, bool],
    done: set[str],
    shapes: Mapping[str, ShapeCost],
    fixed: FixedCosts,
    slots: Slots,
) -> Estimate:
    """The estimate of ``experiment``'s remaining jobs (outputs not in ``done``) on ``slots``."""
    return estimate(remaining(study_jobs(experiment, on_gpu), done), shapes, fixed, slots)


def minutes(seconds: float) -> str:
    """``95`` -> ``1 min 35 s``; ``7300`` -> ``2 h 2 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def largest_parts(result: Estimate, limit: int = 4) -> list[str]:
    """Sentences, largest first: job-seconds per part of the work, and the wait for pretraining."""
    total = sum(sum(p.values()) for p in result.parts.values()) or 1.0
    by_part = {part: sum(p.get(part, 0.0) for p in result.parts.values()) for part in PARTS}
    rule_of = {job.name: job.rule for job in result.jobs}
    lines = []
    for part, seconds in sorted(by_part.items(), key=lambda item: -item[1])[:limit]:
        if seconds <= 0:
            continue
        rules = sorted({rule_of[n] for n, p in result.parts.items() if p.get(part, 0.0) > 0})
        lines.append(f"{part}: {minutes(seconds)} of job time ({seconds / total:.0%}; {', '.join(rules)})")
    waiting = [job.name for job in result.jobs if any(is_pretrained(name) for name in job.after)]
    verified = [p.end for p in result.placed if is_pretrained(p.name)]
    if waiting and verified:
        what = "it is" if len(verified) == 1 else f"the last of {len(verified)} is"
        lines.append(
            f"{len(waiting)} jobs of the arms that start from the pretraining wait for it: {what} "
            f"verified at {minutes(max(verified))}"
        )
    return lines
