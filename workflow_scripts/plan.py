"""The study's wall time before it runs: ``python -m workflow_scripts.plan`` (or ``snakemake plan``).

    python -m workflow_scripts.plan [--configfile F...] [--cores N] [--gpu N] [--budget 2h]

Counts the jobs still to run (their outputs absent) and each one's steps and passes from the
config (``planning.work``), measures a few real steps and one validation and test pass per
shape on this machine through bench's loop (``planning.measure``), times each entry point's
imports, and schedules the jobs on the slots the invocation allows (``planning.schedule``).
Prints the estimate and its largest parts and, with ``--budget``, which settings would fit;
writes results/plan.json and nothing else (nothing trains). The last line is the wall time
in seconds as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from workflow_scripts.config.experiment import ExperimentConfig
from workflow_scripts.config.loader import load_experiment
from workflow_scripts.jobs.logs import setup_logging
from workflow_scripts.jobs.placement import trains_on_gpu
from workflow_scripts.planning.advice import advice
from workflow_scripts.planning.costs import DEFAULT_WORK_S, RULE_ENTRY, FixedCosts, ShapeCost
from workflow_scripts.planning.estimate import Estimate, largest_parts, minutes, study_wall
from workflow_scripts.planning.measure import MeasureError, import_seconds, measure_shapes
from workflow_scripts.planning.plan_file import PlannedJob, PlannedRule, ShapeTiming, StudyPlan, write_plan
from workflow_scripts.planning.schedule import Slots
from workflow_scripts.planning.work import JobWork, remaining, study_jobs

#: Snakemake's own start before the first job: parsing and the DAG (``snakemake -n``: 2.4-3 s here).
SNAKEMAKE_START_S = 3.0
UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_budget(text: str) -> float:
    """``90``, ``90s``, ``45m``, ``2h``, ``1.5d`` -> seconds."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(s|m|min|h|d)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"--budget {text!r}: a number with s, m, h or d, e.g. 2h")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.plan", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--configfile",
        nargs="*",
        default=[],
        help="config overlays on config/config.yaml, as snakemake takes them",
    )
    parser.add_argument(
        "--cores", type=int, default=os.cpu_count() or 1, help="snakemake --cores (default: all)"
    )
    parser.add_argument("--gpu", type=int, default=1, help="--resources gpu=N: GPU jobs at once (default 1)")
    parser.add_argument("--share-slowdown", type=float, help="times longer a job runs on a shared GPU")
    parser.add_argument("--budget", type=parse_budget, help="a time budget (90m, 2h): which settings fit it")
    parser.add_argument(
        "--workdir", type=Path, default=Path("."), help="the workflow directory (outputs done)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results/plan.json"), help="where the plan is written"
    )
    return parser.parse_args(argv)


def load_study(workdir: Path, overlays: list[str]) -> ExperimentConfig:
    """config/config.yaml with the overlays merged key by key, as Snakemake merges --configfile."""
    raw: dict[str, Any] = {}
    for path in [workdir / "config" / "config.yaml", *(Path(p) for p in overlays)]:
        raw = merged(raw, yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    return load_experiment(raw)


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in overlay.items():
        both = isinstance(value, dict) and isinstance(result.get(key), dict)
        result[key] = merged(result[key], value) if both else value
    return result


def done_outputs(workdir: Path, jobs: list[JobWork]) -> set[str]:
    return {job.output for job in jobs if (workdir / job.output).exists()}


def plan_record(
    args: argparse.Namespace,
    result: Estimate,
    shapes: dict[str, ShapeCost],
    fixed: FixedCosts,
    slots: Slots,
    device: str,
) -> StudyPlan:
    placed = {p.name: p for p in result.placed}
    jobs = [
        PlannedJob(
            job.name,
            job.rule,
            job.output,
            placed[job.name].start,
            placed[job.name].end,
            job.steps,
            job.val_passes,
            job.budget_passes,
            job.test_passes,
            result.parts[job.name],
            list(job.after),
        )
        for job in result.jobs
    ]
    rules = sorted({job.rule for job in jobs})
    return StudyPlan(
        configfiles=["config/config.yaml", *args.configfile],
        cores=slots.cores,
        gpu=slots.gpu,
        jobs_per_gpu=slots.jobs_per_gpu,
        device=device,
        wall_s=result.wall_s,
        jobs=jobs,
        rules=[
            PlannedRule(
                r, sum(j.rule == r for j in jobs), sum(sum(j.parts.values()) for j in jobs if j.rule == r)
            )
            for r in rules
        ],
        shapes=[ShapeTiming(key=key, **dataclasses.asdict(c)) for key, c in shapes.items()],
        largest_parts=largest_parts(result),
        import_s=dict(fixed.import_s),
        plan_s=0.0,
    )


def printed(plan: StudyPlan) -> str:
    lines = [
        f"plan: {len(plan.jobs)} jobs on {plan.cores} cores, gpu={plan.gpu} "
        f"(jobs_per_gpu {plan.jobs_per_gpu}), device {plan.device}",
        f"estimated wall time: {minutes(plan.wall_s)}",
        "largest parts:",
    ]
    lines += [f"  {line}" for line in plan.largest_parts]
    lines += [f"  {rule.rule}: {rule.jobs} jobs, {minutes(rule.job_s)} of job time" for rule in plan.rules]
    lines += [
        f"  step {s.key}: {s.step_s * 1000:.1f} ms (frozen {s.frozen_step_s * 1000:.1f} ms), "
        f"validation pass {s.val_pass_s:.2f} s, test pass {s.test_pass_s:.2f} s"
        for s in plan.shapes
    ]
    lines += [f"note: {note}" for note in plan.notes]
    if plan.budget_s is not None:
        lines.append(f"budget {minutes(plan.budget_s)}:")
        lines += [f"  {line}" for line in plan.advice]
    return "\n".join(lines)


def counted(jobs: list[JobWork]) -> str:
    """The remaining work in one line: jobs, training steps and passes (what needs no measuring)."""
    steps = sum(job.steps for job in jobs)
    passes = sum(job.val_passes + job.budget_passes + job.test_passes for job in jobs)
    return f"{len(jobs)} jobs to run, {steps:,} training steps, {passes:,} evaluation passes"


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    log = setup_logging("workflow_scripts.plan")
    experiment = load_study(args.workdir, args.configfile)
    devices = {device: trains_on_gpu(device, local=True) for device in ("auto", "cpu", "cuda", "mps")}
    all_jobs = study_jobs(experiment, devices)
    done = done_outputs(args.workdir, all_jobs)
    jobs = remaining(all_jobs, done)
    variants = {**experiment.variants, "pretrain": experiment.pretrain.variant()}
    try:
        measured = measure_shapes(experiment, jobs, variants, args.workdir, args.cores)
    except MeasureError as error:
        print(f"plan: {counted(jobs)}; not timed: {error}. Nothing was written.", file=sys.stderr)
        log.error("plan: could not measure: %s", error)
        return 2
    fixed = FixedCosts(
        import_s=import_seconds(RULE_ENTRY[job.rule] for job in jobs),
        work_s={**DEFAULT_WORK_S, "preprocess": measured.preprocess_s},
    )
    slots = Slots(
        args.cores,
        args.gpu,
        experiment.gpu_slots.jobs_per_gpu,
        args.share_slowdown or float(experiment.gpu_slots.jobs_per_gpu),
    )
    result = study_wall(experiment, devices, done, measured.shapes, fixed, slots)
    device = "gpu" if any(job.gpu for job in jobs) else "cpu"
    plan = plan_record(args, result, measured.shapes, fixed, slots, device)
    if args.budget is not None:
        runs = [sum(result.parts[j.name].values()) for j in result.jobs if j.rule == "train"] or [0.0]
        lines = advice(
            experiment,
            lambda e: study_wall(e, devices, done, measured.shapes, fixed, slots).wall_s,
            args.budget,
            min(runs),
        )
        plan = dataclasses.replace(plan, budget_s=args.budget, advice=lines)
    plan = dataclasses.replace(
        plan,
        wall_s=plan.wall_s + SNAKEMAKE_START_S,
        plan_s=time.perf_counter() - started,
        notes=measured.notes,
    )
    write_plan(args.out, plan)
    print(printed(plan))
    print(f"plan took {plan.plan_s:.1f} s; written to {args.out}")
    print(json.dumps({"wall_s": round(plan.wall_s, 1), "plan_s": round(plan.plan_s, 1)}))
    log.info("plan written to %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
