"""The jobs on the slots an invocation allows: the study's wall time. Pure arithmetic.

Definitions:

* ``Slots``: ``cores`` (``snakemake --cores``), ``gpu`` (``--resources gpu=N``: the number of
  GPU jobs that may run at once, i.e. GPUs x ``gpu_slots.jobs_per_gpu``), ``jobs_per_gpu``
  and ``share_slowdown``: how many times longer a GPU job takes when its GPU is shared by
  ``jobs_per_gpu`` > 1 jobs (1: sharing costs nothing; ``jobs_per_gpu``: a compute-bound GPU,
  no gain in throughput).
* A ``Task`` claims ``threads`` cores (at most ``cores``, as Snakemake caps them) and, if
  ``gpu``, one unit of ``gpu``; it may start once every task in ``after`` has ended.
* Scheduling is greedy list scheduling, as Snakemake's local scheduler runs jobs: whenever a
  task ends (and at time 0), every ready task that fits the free cores and GPU units starts,
  in priority order. The priority is the longest chain of durations from the task to the end
  of the DAG (the critical path first; ties keep the given order), which starts the
  pretraining before the arms that wait for it.
* The wall time is the end of the last task.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Slots:
    """What the invocation allows (see the module docstring)."""

    cores: int
    gpu: int = 0
    jobs_per_gpu: int = 1
    share_slowdown: float = 1.0


@dataclass(frozen=True)
class Task:
    """A job to place: its duration alone on its slot, its claims and what it waits for."""

    name: str
    seconds: float
    threads: int = 1
    gpu: bool = False
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Placed:
    """Where the schedule put a task: ``start`` and ``end`` in seconds from the study's start."""

    name: str
    start: float
    end: float


class ScheduleError(ValueError):
    """The tasks cannot run on these slots (a GPU task and no GPU, or a dependency cycle)."""


def duration(task: Task, slots: Slots) -> float:
    """A task's seconds on ``slots``: ``share_slowdown`` times longer on a shared GPU."""
    shared = task.gpu and slots.jobs_per_gpu > 1
    return task.seconds * (slots.share_slowdown if shared else 1.0)


def priorities(tasks: Sequence[Task], slots: Slots) -> dict[str, float]:
    """Each task's longest chain of durations to the end of the DAG, itself included."""
    children: dict[str, list[str]] = {task.name: [] for task in tasks}
    for task in tasks:
        for parent in task.after:
            children[parent].append(task.name)
    by_name = {task.name: task for task in tasks}
    chain: dict[str, float] = {}
    for task in reversed(topological(tasks)):
        chain[task.name] = duration(task, slots) + max((chain[c] for c in children[task.name]), default=0.0)
    return {name: chain[name] for name in by_name}


def topological(tasks: Sequence[Task]) -> list[Task]:
    """``tasks`` with every task after those it waits for (stable); ScheduleError on a cycle."""
    placed: set[str] = set()
    order: list[Task] = []
    pending = list(tasks)
    while pending:
        ready = [task for task in pending if all(parent in placed for parent in task.after)]
        if not ready:
            raise ScheduleError(f"the jobs wait for each other in a cycle: {[t.name for t in pending]}")
        for task in ready:
            placed.add(task.name)
            order.append(task)
        pending = [task for task in pending if task.name not in placed]
    return order


def schedule(tasks: Sequence[Task], slots: Slots) -> list[Placed]:
    """Greedy list scheduling of ``tasks`` on ``slots`` (module docstring); placements in start order."""
    if any(task.gpu for task in tasks) and slots.gpu < 1:
        raise ScheduleError("a job claims a GPU but the invocation allows none (--resources gpu=0)")
    rank = priorities(tasks, slots)
    order = {task.name: index for index, task in enumerate(tasks)}
    waiting = sorted(tasks, key=lambda task: (-rank[task.name], order[task.name]))
    ended: set[str] = set()
    running: list[tuple[float, str, Task]] = []
    free_cores, free_gpu, now = slots.cores, slots.gpu, 0.0
    placed: list[Placed] = []
    while waiting or running:
        for task in list(waiting):
            threads = min(task.threads, slots.cores)
            fits = threads <= free_cores and (not task.gpu or free_gpu >= 1)
            if fits and all(parent in ended for parent in task.after):
                waiting.remove(task)
                free_cores -= threads
                free_gpu -= int(task.gpu)
                end = now + duration(task, slots)
                heapq.heappush(running, (end, task.name, task))
                placed.append(Placed(task.name, now, end))
        if not running:
            raise ScheduleError(f"no job can start: {[task.name for task in waiting]}")
        now, _, task = heapq.heappop(running)
        ended.add(task.name)
        free_cores += min(task.threads, slots.cores)
        free_gpu += int(task.gpu)
        while running and running[0][0] == now:
            _, _, same = heapq.heappop(running)
            ended.add(same.name)
            free_cores += min(same.threads, slots.cores)
            free_gpu += int(same.gpu)
    return placed


def wall_time(placed: Sequence[Placed]) -> float:
    """The end of the last task (0 for none)."""
    return max((p.end for p in placed), default=0.0)
