"""results/plan.json, typed: what ``plan`` writes and ``progress`` and ``collect`` read back.

Torch-free, so the reporting side can read it (``jobs.typed_json`` does both ends).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from workflow_scripts.jobs.io_utils import atomic_write_json
from workflow_scripts.jobs.typed_json import decode, encode
from workflow_scripts.planning.costs import ShapeCost


@dataclass(frozen=True)
class PlannedJob:
    """One job still to run: when the schedule starts and ends it, and its seconds by part."""

    name: str
    rule: str
    output: str
    start_s: float
    end_s: float
    steps: int
    val_passes: int
    budget_passes: int
    test_passes: int
    parts: dict[str, float]
    after: list[str]


@dataclass(frozen=True)
class PlannedRule:
    """A rule's jobs together: how many, their summed seconds (job-seconds, not wall time)."""

    rule: str
    jobs: int
    job_s: float


@dataclass(frozen=True)
class ShapeTiming(ShapeCost):
    """What one shape's step and passes measured here, under the shape's key."""

    key: str


@dataclass(frozen=True)
class StudyPlan:
    """The plan: the invocation's slots, the estimated wall time, every job and the largest parts."""

    configfiles: list[str]
    cores: int
    gpu: int
    jobs_per_gpu: int
    device: str
    wall_s: float
    jobs: list[PlannedJob]
    rules: list[PlannedRule]
    shapes: list[ShapeTiming]
    largest_parts: list[str]
    import_s: dict[str, float]
    plan_s: float
    budget_s: float | None = None
    advice: list[str] = field(default_factory=list)
    #: what was not measured as the study will run it (e.g. a model timed on its architecture)
    notes: list[str] = field(default_factory=list)


def write_plan(path: Path, plan: StudyPlan) -> None:
    atomic_write_json(path, encode(plan))


def read_plan(path: Path) -> StudyPlan:
    plan: StudyPlan = decode(StudyPlan, json.loads(Path(path).read_text(encoding="utf-8")), str(path))
    return plan
