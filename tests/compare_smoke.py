"""Do two commits compute the same study? The smoke DAG at each, compared file by file.

    python tests/compare_smoke.py BEFORE [AFTER]     (AFTER defaults to HEAD)

For a behaviour-preserving change (issue 21's redesign): each commit is checked out in a
temporary worktree, runs the smoke DAG on the CPU (fixed seeds), and every output under
``results/`` and ``data/derived/`` is fingerprinted. What must be the same is the same
to the bit: every loss, skill, statistic and sentence, and every stored tensor. Only
what measures the machine is left out (wall time, samples per second, paths of the
temporary directories), by key or column name in VOLATILE. It also compares the jobs
``snakemake -n -p`` plans, and their shell commands (every param), for the default, the
smoke and the offline config with tuning and the A/A arm. Exit 0 when all agree.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import REPO, SMOKE_ARGS, planned_jobs, run_snakemake

#: Keys and CSV columns that measure the machine or the moment, never the science.
#: (Snakemake's benchmark columns included: s, h:m:s, max_rss, ..., cpu_time.)
VOLATILE = re.compile(
    r"(runtime_s|samples_per_s|epoch_time_s|_seconds$|^wall|elapsed|timestamp|generated|^s$|^h:m:s$"
    r"|max_rss|max_vms|max_uss|max_pss|io_in|io_out|mean_load|cpu_time|peak_rss_mb|benchmark_s"
    r"|^commit$|^dirty$|^planned_s$|^measured_s$|^planned_wall_s$|^ratio$)"
)
#: A measured duration or size inside a report line (a runs-table cell such as "1.2 s").
MEASURED = re.compile(r"\b\d[\d.,]* ?(s|ms|MB|MiB|GiB)\b")
#: Report lines that carry a wall time, memory, the commit or a temporary path.
VOLATILE_LINE = re.compile(
    r"(runtime|wall time|samples/s|seconds|/tmp/|generated|commit|checkout|MiB|GiB|max_rss|memory)",
    re.IGNORECASE,
)
#: The report's Compute section (runtime, throughput, memory per arm), to the next section.
COMPUTE_SECTION = re.compile(r"^## Compute|<h2[^>]*>Compute</h2>")
NEXT_SECTION = re.compile(r"^## |<h2")
OUTPUT_DIRS = ("results", "data/derived")
#: The configs whose planned jobs and shell commands (params included) must not change.
DRY_RUNS = (
    ("default", []),
    ("smoke", ["--configfile", "config/smoke.yaml"]),
    ("offline + tuning + A/A", ["--configfile", "config/offline.yaml", "config/offline_tuned.yaml"]),
)


def normalised(path: Path) -> bytes:
    """The file's content with the volatile parts removed (JSON keys, CSV columns, report lines).

    A safetensors file is its metadata (sorted: the writer's key order is not fixed) and
    its tensors' names, dtypes, shapes and bytes.
    """
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            parts = [json.dumps(handle.metadata() or {}, sort_keys=True).encode()]
            for name in sorted(handle.keys()):
                tensor = handle.get_tensor(name)
                parts.append(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
                parts.append(tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return b"\n".join(parts)
    if path.suffix == ".json":
        return json.dumps(_drop_volatile(json.loads(path.read_text())), sort_keys=True).encode()
    if path.suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        kept = [column for column in (rows[0] if rows else {}) if not VOLATILE.search(column)]
        return json.dumps([[row[column] for column in kept] for row in rows]).encode()
    if path.suffix in (".md", ".html", ".log"):
        shown = (MEASURED.sub("<measured>", line) for line in without_compute(path.read_text().splitlines()))
        return "\n".join(line for line in shown if not VOLATILE_LINE.search(line)).encode()
    return path.read_bytes()


def without_compute(lines: list[str]) -> list[str]:
    """The report's lines without its Compute section (measurements of the machine)."""
    kept, skipping = [], False
    for line in lines:
        if COMPUTE_SECTION.search(line):
            skipping = True
        elif skipping and NEXT_SECTION.search(line):
            skipping = False
        if not skipping:
            kept.append(line)
    return kept


def _drop_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _drop_volatile(item) for key, item in value.items() if not VOLATILE.search(key)}
    if isinstance(value, list):
        return [_drop_volatile(item) for item in value]
    return value


def fingerprint(workdir: Path, keep: Path | None) -> dict[str, str]:
    """sha256 of every normalised output file, by path relative to the workdir.

    With ``keep``, the normalised contents are also written there, to diff by hand.
    """
    found = {}
    for top in OUTPUT_DIRS:
        for path in sorted((workdir / top).rglob("*")):
            if path.is_file() and "resume" not in path.parts and path.suffix != ".png":
                relative = str(path.relative_to(workdir))
                content = normalised(path)
                found[relative] = hashlib.sha256(content).hexdigest()
                if keep is not None:
                    (keep / relative).parent.mkdir(parents=True, exist_ok=True)
                    (keep / relative).write_bytes(content)
    return found


def run_at(ref: str, root: Path, keep: Path | None) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Check ``ref`` out under ``root``, run the smoke DAG, return its fingerprint and dry-run plans."""
    workdir = root / ref.replace("/", "_")
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(workdir), ref], check=True)
    try:
        plans = {}
        for name, configfile in DRY_RUNS:
            dry = run_snakemake(workdir, "-n", "-p", "--cores", "4", *configfile)
            output = dry.stdout + dry.stderr
            commands = sorted(
                line.strip() for line in output.splitlines() if "python -m workflow_scripts" in line
            )
            plans[name] = planned_jobs(output) + commands
        run_snakemake(workdir, *SMOKE_ARGS, timeout=1800)
        return fingerprint(workdir, keep / ref.replace("/", "_") if keep else None), plans
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(workdir)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after", nargs="?", default="HEAD")
    parser.add_argument("--keep", type=Path, default=None, help="write the normalised outputs here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="compare-smoke-") as tmp:
        before, before_plans = run_at(args.before, Path(tmp), args.keep)
        after, after_plans = run_at(args.after, Path(tmp), args.keep)
    differ = sorted(path for path in before.keys() & after.keys() if before[path] != after[path])
    only = sorted(before.keys() ^ after.keys())
    plans_differ = [name for name in before_plans if before_plans[name] != after_plans[name]]
    compared = len(before.keys() & after.keys())
    print(f"{compared} output files compared, {len(differ)} differ, {len(only)} in one only")
    for path in differ:
        print(f"  differs: {path}")
    for path in only:
        print(f"  only in {'before' if path in before else 'after'}: {path}")
    for name, jobs in before_plans.items():
        verdict = "DIFFERENT" if name in plans_differ else "same"
        print(f"snakemake -n -p ({name}): {len(jobs)} jobs and commands, {verdict}")
    return 1 if differ or only or plans_differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
