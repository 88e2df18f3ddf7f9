"""Collect every training run into tidy metrics, per-variant statistics and a flat table.

Entry point of the ``collect`` rule::

    python -m workflow_scripts.collect --summaries F... --run-metrics F... --benchmarks F...
        --out-metrics results/metrics.csv --out-summary results/summary.json
        --out-table results/summary_table.csv [--contrasts-json '<planned contrasts JSON list>']
        [--job-benchmarks F...] [--plan results/plan.json] [--reference F...]

A run whose summary.json is absent is recorded as ``missing`` (or ``failed`` when it left
metric rows but no summary) and never averaged in as a zero. A malformed input file
stops the job with an error naming the file and the key, column or row at fault.

The compute block sets each rule's planned seconds (``--plan``, read only if the file exists
when collect runs: a study run without a plan shows measured times only) beside the measured
ones (the train jobs' ``--benchmarks`` and the pretrain and tune jobs' ``--job-benchmarks``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from workflow_scripts.config.loader import load_schema
from workflow_scripts.jobs.cli import InputError
from workflow_scripts.jobs.io_utils import atomic_write_text
from workflow_scripts.jobs.logs import setup_logging
from workflow_scripts.planning.plan_file import read_plan
from workflow_scripts.reporting.aggregate import summarise, summary_table
from workflow_scripts.reporting.compute_time import study_compute
from workflow_scripts.reporting.reference_pool import pool_references
from workflow_scripts.reporting.results import StudyCompute, write_study
from workflow_scripts.reporting.runs import load_runs, read_benchmark, tidy_metrics


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.collect",
        description="Aggregate per-run summaries, metrics and benchmarks across seeds.",
    )
    parser.add_argument("--summaries", nargs="+", type=Path, required=True, help="per-run summary.json files")
    parser.add_argument(
        "--run-metrics", nargs="*", type=Path, default=[], help="each run's metrics.csv (one row per epoch)"
    )
    parser.add_argument(
        "--benchmarks", nargs="*", type=Path, default=[], help="Snakemake benchmark TSVs of the train jobs"
    )
    parser.add_argument("--out-metrics", type=Path, required=True, help="tidy metrics CSV to write")
    parser.add_argument("--out-summary", type=Path, required=True, help="per-variant summary JSON to write")
    parser.add_argument("--out-table", type=Path, required=True, help="flat per-variant CSV to write")
    parser.add_argument(
        "--contrasts-json",
        default=None,
        help="planned contrasts, a JSON list of {a, b, role, label} (default: config/schema.yaml's)",
    )
    parser.add_argument(
        "--reference",
        nargs="*",
        type=Path,
        default=[],
        help="the learned reference's summary JSON of every series and fold (rule reference)",
    )
    parser.add_argument(
        "--job-benchmarks",
        nargs="*",
        type=Path,
        default=[],
        help="Snakemake benchmark TSVs of the pretrain and tune_train jobs (planned vs measured)",
    )
    parser.add_argument(
        "--plan",
        type=Path,
        default=None,
        help="results/plan.json (snakemake plan); read only if it exists",
    )
    return parser.parse_args(argv)


def parse_contrasts(text: str | None) -> list[dict[str, Any]]:
    """The planned contrasts: ``--contrasts-json`` or, without it, the schema's default list."""
    if text is None:
        return [dict(c) for c in load_schema()["properties"]["contrasts"]["default"]]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--contrasts-json: not valid JSON ({exc}).") from exc
    if not isinstance(data, list) or not all(isinstance(c, dict) and "a" in c and "b" in c for c in data):
        raise InputError("--contrasts-json: must be a JSON list of objects with keys a and b.")
    return data


def read_reference(path: Path) -> dict[str, Any]:
    """The reference's summary JSON, checked for the keys the report reads."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from exc
    missing = [
        key
        for key in ("test_skill", "val_skill", "channel_skill", "series", "fold")
        if not isinstance(data, dict) or key not in data
    ]
    if missing:
        raise InputError(f"{path}: missing key(s) {', '.join(missing)}")
    return dict(data)


def study_compute_of(plan_path: Path | None, benchmarks: list[Path]) -> StudyCompute:
    """Planned (``plan_path``, if that file exists) and measured seconds per rule."""
    plan = read_plan(plan_path) if plan_path is not None and plan_path.is_file() else None
    measured = {path.as_posix(): read_benchmark(path)[1] for path in benchmarks}
    return study_compute(plan, {path: s for path, s in measured.items() if s is not None})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = setup_logging("workflow_scripts.collect")
    try:
        contrasts = parse_contrasts(args.contrasts_json)
        runs = load_runs(args.summaries, args.run_metrics, args.benchmarks)
    except InputError as exc:
        log.error("collect: cannot read the run results. %s Fix or remove that file and rerun.", exc)
        return 2
    for run in runs:
        if run.ok:
            log.info("run %s %s: %s", run.variant, run.unit.label, run.status)
        else:
            log.warning("run %s %s: %s (%s)", run.variant, run.unit.label, run.status, run.reason)
    try:
        cells = [read_reference(path) for path in args.reference]
        reference = pool_references(cells) if cells else None
    except InputError as exc:
        log.error("collect: cannot read the learned reference. %s", exc)
        return 2
    try:
        compute = study_compute_of(args.plan, [*args.benchmarks, *args.job_benchmarks])
    except (InputError, OSError, ValueError) as exc:  # a malformed plan: ValueError
        log.error("collect: cannot read the plan or a benchmark file. %s", exc)
        return 2
    study = summarise(runs, contrasts, reference=reference, compute=compute)
    tidy = tidy_metrics(runs)
    table = summary_table(study)
    atomic_write_text(args.out_metrics, tidy.to_csv(index=False))
    write_study(args.out_summary, study)
    atomic_write_text(args.out_table, table.to_csv(index=False))
    ok = sum(run.ok for run in runs)
    log.info(
        "collected %d run(s) of %d variant(s), %d finished; wrote %s, %s, %s",
        len(runs),
        len(study.variants),
        ok,
        args.out_metrics,
        args.out_summary,
        args.out_table,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
