"""The Compute section's plan check: each rule's planned and measured seconds, in words.

Rows of formatted strings and one sentence, from ``StudyResult.compute``
(``compute_time.study_compute``); the template only lays them out.
"""

from __future__ import annotations

from workflow_scripts.reporting.formatting import ABSENT, fmt_seconds
from workflow_scripts.reporting.results import RuleTime, StudyCompute


def _per_job(seconds: float | None, jobs: int) -> str:
    return ABSENT if seconds is None or jobs == 0 else fmt_seconds(seconds / jobs)


def rule_time_rows(compute: StudyCompute) -> list[dict[str, str]]:
    """One row per rule: jobs, seconds per job and in all (planned, measured), measured/planned."""
    return [_row(rule, planned=compute.planned_wall_s is not None) for rule in compute.rules]


def _row(rule: RuleTime, *, planned: bool) -> dict[str, str]:
    return {
        "rule": rule.rule,
        "planned_jobs": str(rule.planned_jobs) if planned else ABSENT,
        "planned_per_job": _per_job(rule.planned_s, rule.planned_jobs) if planned else ABSENT,
        "planned_total": fmt_seconds(rule.planned_s) if planned else ABSENT,
        "measured_jobs": str(rule.measured_jobs) if rule.measured_s is not None else ABSENT,
        "measured_per_job": _per_job(rule.measured_s, rule.measured_jobs),
        "measured_total": fmt_seconds(rule.measured_s),
        "ratio": ABSENT if rule.ratio is None else f"{rule.ratio:.2f}",
    }


def plan_sentence(compute: StudyCompute) -> str:
    """What the plan said about the whole study, or that there was none."""
    if compute.planned_wall_s is None:
        return (
            "No plan (results/plan.json) existed when collect ran, so only measured times are "
            "shown; snakemake plan before the study writes one."
        )
    matched = [rule for rule in compute.rules if rule.ratio is not None]
    ratio = ""
    if matched:
        ratio = " Measured over planned job time: " + ", ".join(
            f"{rule.rule} {rule.ratio:.2f}" for rule in matched
        )
        ratio += "."
    return (
        f"The plan (results/plan.json, written before the study by snakemake plan) estimated "
        f"{fmt_seconds(compute.planned_wall_s)} of wall time on {compute.plan_cores} cores, "
        f"gpu={compute.plan_gpu}, device {compute.plan_device}. Seconds below are job-seconds "
        f"(summed over a rule's jobs); only the training rules keep Snakemake benchmark files, so "
        f"the others are planned only.{ratio}"
    )
