"""Where a running study stands: ``python -m workflow_scripts.progress`` (reads, writes nothing).

Jobs done, running and waiting against results/plan.json, the estimated time left from the
finished jobs' measured times (Snakemake's benchmark files), and the last progress line of
each running training job's log (steps done, step rate, ETA; ``training.steplog.Progress``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from workflow_scripts.planning.estimate import minutes
from workflow_scripts.planning.plan_file import read_plan
from workflow_scripts.planning.status import job_files, study_status
from workflow_scripts.reporting.runs import read_benchmark


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.progress", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--plan", type=Path, default=Path("results/plan.json"), help="the plan (snakemake plan)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("."), help="the workflow directory")
    return parser.parse_args(argv)


def log_started(path: Path) -> float | None:
    """The epoch seconds of a job log's first timestamped line, or None."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            return dt.datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
        except ValueError:
            continue
    return None


def last_progress(path: Path) -> str | None:
    lines = [
        line
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if "progress: " in line
    ]
    return lines[-1].split("progress: ", 1)[1] if lines else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.plan.is_file():
        print(
            f"{args.plan} not found: run `snakemake plan` (or python -m workflow_scripts.plan) first",
            file=sys.stderr,
        )
        return 1
    plan, root, now = read_plan(args.plan), args.workdir, dt.datetime.now().timestamp()
    done, running, measured, lines = set(), {}, {}, []
    for job in plan.jobs:
        log, bench = job_files(job)
        if (root / job.output).exists():
            done.add(job.name)
            if bench and (root / bench).is_file():
                measured[job.name] = read_benchmark(root / bench)[1] or 0.0
        elif log and (root / log).is_file():
            started = log_started(root / log)
            running[job.name] = now - started if started else 0.0
            lines.append(f"  {job.name}: {last_progress(root / log) or 'starting'}")
    status = study_status(plan, done, running, measured)
    counts = f"{status.done} done, {status.running} running, {status.waiting} waiting"
    print(f"jobs: {counts} (of {len(plan.jobs)} planned)")
    print(
        f"estimated time left: {minutes(status.left_s)} (planned {minutes(plan.wall_s)} in all; finished "
        f"training jobs took {status.calibration:.2f}x their planned time)"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
