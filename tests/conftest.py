"""Shared fixtures: an isolated copy of the workflow and one completed smoke run.

Workflow tests never run in the checkout itself: each gets a copy in a temporary
directory (code, config, fixtures), so runs cannot interfere with each other or leave
outputs in the repository. The smoke run is done once per session and copied,
``.snakemake`` metadata included, for every test that needs a completed run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests never reach the Hub: without this a missing model retries for ~30 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_ENTRIES = ("Snakefile", "rules", "workflow_scripts", "config", "envs", "profiles", "report")
SMOKE_ARGS = ("--configfile", "config/smoke.yaml", "--cores", "4", "--resources", "gpu=1")


def copy_workflow(destination: Path) -> Path:
    """Copy the workflow (and the committed tiny model fixture) into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for entry in WORKFLOW_ENTRIES:
        source = REPO / entry
        if source.is_dir():
            shutil.copytree(source, destination / entry, ignore=ignore)
        else:
            shutil.copy2(source, destination / entry)
    shutil.copytree(REPO / "tests" / "fixtures", destination / "tests" / "fixtures", ignore=ignore)
    return destination


def job_environment() -> dict[str, str]:
    """Environment for Snakemake subprocesses: this interpreter's bin first, offline Hub."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["HF_HUB_OFFLINE"] = "1"
    return env


def run_snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m snakemake`` in ``workdir`` and return the completed process."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=job_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


_JOB_HEADER = re.compile(r"^(?:local)?rule (\w+):", re.MULTILINE)


def planned_jobs(dry_run_output: str) -> list[str]:
    """Jobs a dry run plans, as 'rule' or 'rule[wildcards]' strings, sorted."""
    jobs = []
    blocks = re.split(r"\n(?=\[[^\n]*\]\n(?:local)?rule )|\n(?=(?:local)?rule \w+:)", dry_run_output)
    for block in blocks:
        header = _JOB_HEADER.search(block)
        if not header:
            continue
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.MULTILINE)
        jobs.append(header.group(1) + (f"[{wildcards.group(1).strip()}]" if wildcards else ""))
    return sorted(jobs)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Torch on one thread for a module's tests, restored after it: tiny models run
    fastest, and steadiest on a shared machine, on one thread. (torch is imported here,
    not at the top, so test modules that never touch it do not pay for it.)"""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    return copy_workflow(tmp_path / "workflow")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed smoke run of the whole DAG (done once per test session)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("smoke") / "workflow")
    run_snakemake(workdir, *SMOKE_ARGS)
    return workdir


@pytest.fixture
def completed_run(smoke_run: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the completed smoke run that a test may modify."""
    destination = tmp_path / "completed"
    shutil.copytree(smoke_run, destination, symlinks=True)
    yield destination
