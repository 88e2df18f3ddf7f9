"""One command to run first on a new GPU machine: will this workflow train on its GPUs?

    python -m workflow_scripts.gpu_check [--quick]

Prints one table: what torch sees (build, CUDA devices, or why none), whether a GPU is
expected here (``CUDA_VISIBLE_DEVICES``, ``/dev/nvidiactl``, ``nvidia-smi -L``), the GPU
slot pool, bf16 and TF32, the t5-small step time and efficiency from ``bench``, and the
smoke DAG at ``gpu=1`` and at ``gpu_slots.jobs_per_gpu: 2`` (each in a temporary copy of
the workflow, every run's summary.json checked to name a CUDA device). ``--quick``
leaves out bench and the smoke DAGs (seconds instead of minutes).

Exit status: 0 every check passed on a GPU; 1 a check failed, including a GPU that is
expected here but that torch does not see (the case that would otherwise train on the
CPU for days); 2 no GPU at all. "No GPU" is not a pass: a script that gates GPU work on
this check must not go ahead on a machine without one, and 2 tells that apart from a
broken GPU. Without a GPU the slow checks are skipped, so the check takes seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from workflow_scripts.jobs.gpu_pool import Pool, choose_pool, gpu_evidence
from workflow_scripts.training.gpu_facts import TorchFacts, torch_facts

OK, FAIL, SKIPPED, NO_GPU = "ok", "FAIL", "skipped", "no GPU"
REPO = Path(__file__).resolve().parent.parent
#: What the smoke DAG needs of the checkout (its tiny model is under tests/fixtures).
WORKFLOW_ENTRIES = ("Snakefile", "rules", "workflow_scripts", "config", "envs", "profiles", "report")
#: What to do when a GPU is expected and torch sees none (as training says, training.device).
_FIX = "; install a torch build for this driver's CUDA, or give the container the GPU"
#: The slot a job took, from its log (``jobs.gpu_locks.take_slot``).
_TOOK = re.compile(r"GPU slot: took (\S+) \(")


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    check: str
    status: str
    detail: str


@dataclass(frozen=True)
class Outcome:
    """A slow check's subprocess: its exit status, wall time, what it reported, its last output."""

    returncode: int
    seconds: float
    #: bench: its JSON figures; smoke DAG: {"devices": [summary.json device of every run]}.
    report: dict
    tail: str = ""


def device_rows(facts: TorchFacts, evidence: tuple[str, ...], pool: Pool) -> list[Row]:
    """torch, the GPU expectation, the devices, the pool, bf16 and TF32."""
    seen, expected = bool(facts.devices), bool(evidence)
    # No CUDA device: "no GPU" where none is expected; else the devices row fails and the
    # rows that need a device are skipped (one FAIL for one cause).
    absent, needs_device = (FAIL, SKIPPED) if expected else (NO_GPU, NO_GPU)
    rows = [
        Row("torch", OK, f"{facts.version}, built for CUDA {facts.cuda_build or 'none (CPU-only build)'}"),
        Row(
            "GPU expected here",
            OK if seen or expected else NO_GPU,
            "; ".join(evidence)
            or "no: no CUDA_VISIBLE_DEVICES, no /dev/nvidiactl, no device in nvidia-smi -L",
        ),
        Row(
            "CUDA devices torch sees",
            OK if seen else absent,
            ", ".join(facts.devices) or f"none: {facts.failure}" + (_FIX if expected else ""),
        ),
    ]
    pooled = bool(pool.devices) or pool.quiet or not pool.warning
    rows.append(
        Row(
            "GPU slot pool",
            (OK if pooled else FAIL) if seen else needs_device,
            f"{','.join(pool.devices) or 'empty'} (from {pool.source})",
        )
    )
    if facts.bf16_native is None:
        rows.append(Row("bf16", needs_device, "no CUDA device"))
    else:
        native = "native: precision auto trains in bf16" if facts.bf16_native else "emulated: auto picks fp32"
        rows.append(Row("bf16", OK, native))
    where = "" if seen else "the CUDA branch, run on this build: "
    rows.append(Row("TF32 (legacy and new reads)", OK if facts.tf32_ok else FAIL, where + facts.tf32))
    return rows


def bench_row(outcome: Outcome) -> Row:
    """bench's t5-small step: its time and the loop's efficiency (target >= 0.97)."""
    figures = outcome.report
    if outcome.returncode != 0 or "train_step_efficiency" not in figures:
        return Row("bench t5-small step", FAIL, f"exit {outcome.returncode}: {outcome.tail[-300:]}")
    detail = (
        f"{1000 * figures['train_step_s']:.1f} ms per step (batch 64), efficiency "
        f"{figures['train_step_efficiency']:.3f} (target >= 0.97), fp32 runs as {figures.get('fp32_runs_as')}"
    )
    return Row("bench t5-small step", OK, detail)


def smoke_row(label: str, outcome: Outcome) -> Row:
    """A smoke DAG passes when it exits 0 and every run's summary.json names a CUDA device."""
    devices = outcome.report.get("devices", [])
    if outcome.returncode != 0:
        return Row(
            label, FAIL, f"exit {outcome.returncode} after {outcome.seconds:.0f} s: {outcome.tail[-300:]}"
        )
    off_gpu = [device for device in devices if not str(device).startswith("cuda")]
    if not devices or off_gpu:
        return Row(label, FAIL, f"{len(off_gpu)} of {len(devices)} runs not on a GPU: {sorted(set(off_gpu))}")
    slots = ", ".join(outcome.report.get("slots", [])) or "none logged"
    where = ", ".join(sorted(set(devices)))
    return Row(label, OK, f"{len(devices)} runs in {outcome.seconds:.0f} s on {where}; slots {slots}")


def run_bench() -> Outcome:
    """``bench --model t5-small --efficiency-only`` in a subprocess; its last line is JSON."""
    command = [sys.executable, "-m", "workflow_scripts.bench", "--model", "t5-small", "--efficiency-only"]
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=job_environment())
    lines = result.stdout.strip().splitlines()
    try:
        figures = json.loads(lines[-1]) if result.returncode == 0 and lines else {}
    except json.JSONDecodeError:
        figures = {}
    return Outcome(result.returncode, time.monotonic() - start, figures, result.stderr[-2000:])


def job_environment() -> dict[str, str]:
    """This interpreter's bin first on PATH (snakemake's jobs run ``python``), Hub offline."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def run_smoke(jobs_per_gpu: int) -> Outcome:
    """The smoke DAG in a temporary copy of the workflow, ``jobs_per_gpu`` jobs on one GPU."""
    if not (REPO / "Snakefile").exists():
        return Outcome(1, 0.0, {}, f"no workflow checkout at {REPO} (the smoke DAG needs one)")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        workdir = Path(tmp)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for entry in (*WORKFLOW_ENTRIES, "tests/fixtures"):
            if (REPO / entry).is_dir():
                shutil.copytree(REPO / entry, workdir / entry, ignore=ignore)
            else:
                shutil.copy2(REPO / entry, workdir / entry)
        (workdir / "config" / "gpu_check.yaml").write_text(
            f"train:\n  device: cuda\ngpu_slots:\n  jobs_per_gpu: {jobs_per_gpu}\n"
        )
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "--configfile",
            "config/smoke.yaml",
            "config/gpu_check.yaml",
        ]
        command += ["--cores", str(4 * jobs_per_gpu), "--resources", f"gpu={jobs_per_gpu}"]
        start = time.monotonic()
        result = subprocess.run(
            command, cwd=workdir, capture_output=True, text=True, check=False, env=job_environment()
        )
        seconds = time.monotonic() - start
        summaries = sorted((workdir / "results" / "runs").glob("*/seed*/summary.json"))
        devices = [json.loads(path.read_text()).get("device") for path in summaries]
        logs = (path.read_text(errors="replace") for path in (workdir / "logs" / "train").rglob("*.log"))
        slots = sorted({Path(match).name for text in logs for match in _TOOK.findall(text)})
    return Outcome(result.returncode, seconds, {"devices": devices, "slots": slots}, result.stderr[-2000:])


def check(
    facts: TorchFacts,
    evidence: tuple[str, ...],
    pool: Pool,
    *,
    quick: bool,
    bench: Callable[[], Outcome] = run_bench,
    smoke: Callable[[int], Outcome] = run_smoke,
) -> list[Row]:
    """Every row of the table; the slow checks only where torch sees a GPU and not ``quick``."""
    rows = device_rows(facts, evidence, pool)
    slow = ("bench t5-small step", "smoke DAG, gpu=1", "smoke DAG, jobs_per_gpu: 2")
    if not facts.devices or quick:
        reason = "--quick" if facts.devices else "no GPU"
        return rows + [Row(name, SKIPPED, reason) for name in slow]
    rows.append(bench_row(bench()))
    rows.append(smoke_row(slow[1], smoke(1)))
    rows.append(smoke_row(slow[2], smoke(2)))
    return rows


def exit_status(rows: Sequence[Row]) -> int:
    """1 if any check failed, else 2 if there is no GPU, else 0 (see the module docstring)."""
    if any(row.status == FAIL for row in rows):
        return 1
    return 2 if any(row.status == NO_GPU for row in rows) else 0


def table(rows: Sequence[Row]) -> str:
    """The rows as one plain-text table, with a verdict line under it."""
    widths = [max(len(getattr(row, name)) for row in rows) for name in ("check", "status")]
    lines = [f"{'check':<{widths[0]}}  {'status':<{widths[1]}}  detail"]
    lines.append("-" * (widths[0] + widths[1] + 12))
    lines += [f"{row.check:<{widths[0]}}  {row.status:<{widths[1]}}  {row.detail}" for row in rows]
    verdict = {
        0: "GPU check passed: this machine trains on its GPUs.",
        1: "GPU check FAILED: see the rows marked FAIL.",
        2: "NO GPU: torch sees no CUDA device and nothing here points to one; "
        "this machine trains on the CPU only (train.device: cpu or auto).",
    }[exit_status(rows)]
    return "\n".join([*lines, "", verdict])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.gpu_check", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="leave out bench and the two smoke DAGs (seconds, not minutes)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows = check(torch_facts(), gpu_evidence(os.environ), choose_pool(os.environ), quick=args.quick)
    print(table(rows))
    return exit_status(rows)


if __name__ == "__main__":
    raise SystemExit(main())
