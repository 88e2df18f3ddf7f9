"""Faults through the real workflow: kill -9, damaged weights, hostile paths (issue 8).

Each test drives Snakemake in a private copy of the workflow, as a user would, and
checks that no completed work is lost and that what went wrong is said clearly.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import job_environment, run_snakemake

pytestmark = pytest.mark.slow

TIMING_COLUMNS = {"epoch_time_s", "samples_per_s"}


#: The unit the single-run config keeps: the smoke study's first series, its one fold.
SERIES = "smoke-msft-daily"
UNIT = f"{SERIES}/fold0"


def single_run_config(workdir: Path, name: str = "one.yaml", **train: object) -> str:
    """The smoke config cut to one unit (one series, one fold, one seed) and one variant: one
    training job, long enough to be killed mid-run."""
    config = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    config["seeds"] = [0]
    config["data"]["folds"] = 1
    config["data"]["series"] = [entry for entry in config["data"]["series"] if entry["name"] == SERIES]
    assert len(config["data"]["series"]) == 1, "config/smoke.yaml no longer has the series " + SERIES
    config["variants"] = {"nofreeze": config["variants"]["nofreeze"]}
    config["train"].update({"epochs": 3, "steps_per_epoch": 40, **train})
    (workdir / "config" / name).write_text(yaml.safe_dump(config))
    return f"config/{name}"


def start_snakemake(workdir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=job_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group, so kill -9 can take all of it
    )


def wait_for(condition, timeout: float = 300.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(interval)


def training_pids(workdir: Path) -> list[int]:
    """PIDs of `python -m workflow_scripts.train` processes running in ``workdir``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if b"workflow_scripts.train" in cmdline and cwd == str(workdir):
            pids.append(int(proc.name))
    return pids


def comparable_metrics(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(handle)]


def run_dir(workdir: Path) -> Path:
    return workdir / "results" / "runs" / UNIT / "nofreeze" / "seed0"


def train_log(workdir: Path) -> Path:
    return workdir / "logs" / "train" / UNIT / "nofreeze" / "seed0.log"


def resume_state(workdir: Path) -> Path:
    return workdir / "results" / "resume" / UNIT / "nofreeze" / "seed0" / "epoch-0001"


def first_epoch_committed(workdir: Path) -> bool:
    return resume_state(workdir).is_dir()


def kill_everything_after_first_epoch(workdir: Path, configfile: str) -> None:
    """Start the run, then kill -9 Snakemake and its jobs at once, like a lost node."""
    process = start_snakemake(workdir, "--configfile", configfile, "--cores", "2")
    try:
        wait_for(lambda: first_epoch_committed(workdir))
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    wait_for(lambda: not training_pids(workdir), timeout=30)


def assert_same_metrics(workdir: Path, reference: Path) -> None:
    """Every deterministic metrics.csv column equals the uninterrupted run's."""
    assert comparable_metrics(run_dir(workdir) / "metrics.csv") == comparable_metrics(
        run_dir(reference) / "metrics.csv"
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import copy_workflow

    workdir = copy_workflow(tmp_path_factory.mktemp("uninterrupted") / "workflow")
    run_snakemake(workdir, "--configfile", single_run_config(workdir), "--cores", "2")
    return workdir


def test_kill_9_of_a_training_job_resumes_with_identical_metrics(
    workflow_copy: Path, uninterrupted: Path
) -> None:
    configfile = single_run_config(workflow_copy)
    process = start_snakemake(workflow_copy, "--configfile", configfile, "--cores", "2")
    try:
        wait_for(lambda: first_epoch_committed(workflow_copy))
        pids = training_pids(workflow_copy)
        assert pids, "the training job finished before it could be killed"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    assert not (run_dir(workflow_copy) / "summary.json").exists()

    run_snakemake(workflow_copy, "--configfile", configfile, "--cores", "2", "--rerun-incomplete")
    log = train_log(workflow_copy).read_text()
    assert "resuming from epoch" in log
    assert_same_metrics(workflow_copy, uninterrupted)
    resumed = json.loads((run_dir(workflow_copy) / "summary.json").read_text())
    reference = json.loads((run_dir(uninterrupted) / "summary.json").read_text())
    assert resumed["resumed_from_epoch"] >= 1 and reference["resumed_from_epoch"] is None
    for key in ("best", "final", "best_epoch"):
        assert resumed[key] == reference[key]


def test_kill_9_of_snakemake_itself_then_unlock_completes(workflow_copy: Path, uninterrupted: Path) -> None:
    configfile = single_run_config(workflow_copy)
    kill_everything_after_first_epoch(workflow_copy, configfile)

    locked = run_snakemake(workflow_copy, "--configfile", configfile, "--cores", "2", check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    run_snakemake(workflow_copy, "--configfile", configfile, "--unlock")
    run_snakemake(workflow_copy, "--configfile", configfile, "--cores", "2")
    assert (workflow_copy / "results" / "report.html").exists()
    assert_same_metrics(workflow_copy, uninterrupted)


def test_corrupted_resume_state_restarts_the_run_from_scratch(
    workflow_copy: Path, uninterrupted: Path
) -> None:
    configfile = single_run_config(workflow_copy)
    kill_everything_after_first_epoch(workflow_copy, configfile)
    state = resume_state(workflow_copy)
    weights = next(path for path in state.iterdir() if path.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated

    run_snakemake(workflow_copy, "--configfile", configfile, "--unlock")
    run_snakemake(workflow_copy, "--configfile", configfile, "--cores", "2")
    log = train_log(workflow_copy).read_text()
    assert "corrupted" in log and "from scratch" in log
    summary = json.loads((run_dir(workflow_copy) / "summary.json").read_text())
    assert summary["resumed_from_epoch"] is None
    assert_same_metrics(workflow_copy, uninterrupted)


def test_damaged_weights_fail_verification_and_training_refuses(completed_run: Path) -> None:
    model_dir = next((completed_run / "resources" / "models").glob("local--tiny-t5-*"))
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4096])  # truncated, as by a broken download

    smoke = ("--configfile", "config/smoke.yaml", "--cores", "2")
    summary = run_dir(completed_run) / "summary.json"
    train = run_snakemake(completed_run, *smoke, "-f", str(summary.relative_to(completed_run)), check=False)
    assert train.returncode != 0
    log = train_log(completed_run).read_text()
    assert "model.safetensors" in log and "verification" in log.lower()
    assert not summary.exists()

    verify = run_snakemake(
        completed_run,
        *smoke,
        "-f",
        str((model_dir / "verification.json").relative_to(completed_run)),
        check=False,
    )
    assert verify.returncode != 0
    assert not (model_dir / "verification.json").exists()
    verify_log = next((completed_run / "logs" / "verify_model").glob("*.log")).read_text()
    assert "check" in verify_log.lower()


def test_config_paths_with_spaces_and_semicolons_are_never_run_as_shell(workflow_copy: Path) -> None:
    from workflow_scripts.data.synthetic import synthetic_ohlc

    hostile = workflow_copy / "my data; touch PWNED"
    hostile.mkdir()
    synthetic_ohlc(3000, bar_seconds=3600, seed=1).to_csv(hostile / "bars $HOME.csv", index=False)
    model = workflow_copy / "models" / "tiny t5; touch PWNED"
    shutil.copytree(workflow_copy / "tests" / "fixtures" / "tiny-t5", model)

    config = yaml.safe_load((workflow_copy / "config" / "smoke.yaml").read_text())
    config["data"]["series"] = [
        {"name": "hostile", "path": str(hostile / "bars $HOME.csv"), "timeframes": ["h1", "h4"]}
    ]
    config["model"]["name_or_path"] = str(model)
    (workflow_copy / "config" / "hostile.yaml").write_text(yaml.safe_dump(config))

    from workflow_scripts.config.base import model_slug

    targets = ["data/derived/hostile/fold0", f"resources/models/{model_slug(str(model))}/verification.json"]
    run_snakemake(workflow_copy, "--configfile", "config/hostile.yaml", "--cores", "2", *targets)
    assert (workflow_copy / "data" / "derived" / "hostile" / "fold0" / "manifest.json").exists()
    assert not list(workflow_copy.rglob("PWNED"))
