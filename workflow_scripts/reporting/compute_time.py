"""The plan checked against the truth: each rule's planned seconds beside its measured ones.

Definitions:

* *planned*: a job's seconds in results/plan.json (``planning.plan_file.PlannedJob.parts``,
  summed), written by ``snakemake plan`` before the study; a plan made while the study was
  under way holds only the jobs still to run then;
* *measured*: the wall seconds (column ``s``) of the job's Snakemake benchmark file. Only
  the training rules keep one (``benchmarks/pretrain/``, ``benchmarks/tune/``,
  ``benchmarks/train/``); the other rules' rows are planned only (``measured_s`` None);
* a rule's *ratio*: measured over planned seconds, summed over the jobs that are both planned
  and measured (matched by their benchmark path, ``planning.status.job_files``).

Pure: the caller reads the files (``collect``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from workflow_scripts.planning.costs import RULE_ENTRY
from workflow_scripts.planning.plan_file import StudyPlan
from workflow_scripts.planning.status import job_files, planned_s
from workflow_scripts.reporting.results import RuleTime, StudyCompute

#: The benchmark directory of each rule that keeps benchmark files (rules/*.smk).
BENCHMARK_DIRS = {"pretrain": "pretrain", "tune": "tune_train", "train": "train"}


def benchmark_rule(path: str) -> str | None:
    """The rule whose benchmark file ``path`` is (``.../benchmarks/train/v/seed0.tsv`` -> train)."""
    parts = PurePosixPath(path).parts
    for index, part in enumerate(parts[:-1]):
        if part == "benchmarks" and parts[index + 1] in BENCHMARK_DIRS:
            return BENCHMARK_DIRS[parts[index + 1]]
    return None


def _same_file(given: str, relative: str) -> bool:
    """``given`` (as the rule passed it) names the workflow-relative path ``relative``."""
    a, b = PurePosixPath(given).parts, PurePosixPath(relative).parts
    return a[-len(b) :] == b


def study_compute(plan: StudyPlan | None, measured: Mapping[str, float]) -> StudyCompute:
    """Each rule's planned and measured seconds (module docstring); ``measured`` maps a
    benchmark file's path to its wall seconds."""
    planned_of: dict[str, float] = {}
    planned_by_rule: dict[str, list[float]] = {}
    for job in plan.jobs if plan else []:
        planned_by_rule.setdefault(job.rule, []).append(planned_s(job))
        bench = job_files(job)[1]
        match = next((path for path in measured if bench and _same_file(path, bench)), None)
        if match is not None:
            planned_of[match] = planned_s(job)
    measured_by_rule: dict[str, list[str]] = {}
    for path in measured:
        rule = benchmark_rule(path)
        if rule is not None:
            measured_by_rule.setdefault(rule, []).append(path)
    order = [rule for rule in RULE_ENTRY if rule in planned_by_rule or rule in measured_by_rule]
    rows = []
    for rule in order:
        paths = measured_by_rule.get(rule, [])
        both = [path for path in paths if path in planned_of]
        planned_both = sum(planned_of[path] for path in both)
        rows.append(
            RuleTime(
                rule=rule,
                planned_jobs=len(planned_by_rule.get(rule, [])),
                planned_s=sum(planned_by_rule.get(rule, [])),
                measured_jobs=len(paths),
                measured_s=sum(measured[path] for path in paths) if paths else None,
                ratio=sum(measured[path] for path in both) / planned_both if planned_both > 0 else None,
            )
        )
    if plan is None:
        return StudyCompute(rules=rows)
    return StudyCompute(plan.wall_s, plan.cores, plan.gpu, plan.device, rows)
