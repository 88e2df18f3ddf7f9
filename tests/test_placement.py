"""CPU training jobs run side by side; GPU jobs claim a slot (issue 20; jobs/placement.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import run_snakemake

from workflow_scripts.jobs import placement
from workflow_scripts.jobs.placement import job_threads, trains_on_gpu


@pytest.fixture
def no_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(placement, "local_accelerator", lambda: False)


def test_the_device_decides_cpu_or_gpu_job(no_accelerator: None) -> None:
    assert not trains_on_gpu("cpu", local=True, environ={})
    assert not trains_on_gpu("cpu", local=False, environ={"STAGE1_GPUS": "0,1"})
    assert trains_on_gpu("cuda", local=True, environ={}) and trains_on_gpu("mps", local=True, environ={})
    # auto: a CPU job only where this machine runs the jobs and has no GPU to give them.
    assert not trains_on_gpu("auto", local=True, environ={})
    assert not trains_on_gpu("auto", local=True, environ={"STAGE1_GPUS": "none"})
    assert trains_on_gpu("auto", local=False, environ={})  # a cluster executor's nodes
    assert trains_on_gpu("auto", local=True, environ={"STAGE1_GPUS": "0,1"})  # a pool given explicitly
    with pytest.raises(ValueError, match=r"train\.device"):
        trains_on_gpu("tpu", local=True, environ={})
    assert (job_threads(False), job_threads(True)) == (1, 4)


def test_auto_follows_torch_where_there_is_an_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(placement, "local_accelerator", lambda: True)
    assert trains_on_gpu("auto", local=True, environ={})
    assert not trains_on_gpu("cpu", local=True, environ={})


def _train_jobs(workdir: Path, config: dict, name: str) -> dict[str, tuple[str, str]]:
    """{rule[wildcards]: (resources line, shell command)} of the train and pretrain jobs of a dry run."""
    (workdir / "config" / name).write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_snakemake(workdir, "-n", "-p", "--configfile", f"config/{name}", "--cores", "4")
    jobs = {}
    for block in re.split(r"\n(?=\[[^\n]*\]\n|localrule |rule )", result.stdout + result.stderr):
        rule = re.search(r"^(?:local)?rule (train|pretrain):", block, re.MULTILINE)
        if rule:
            wildcards = re.search(r"wildcards: (.*)", block)
            key = rule.group(1) + (f"[{wildcards.group(1)}]" if wildcards else "")
            resources = re.search(r"resources: (.*)", block)
            threads = re.search(r"threads: (\d+)", block)
            shell = re.search(r"OMP_NUM_THREADS=\d+ python -m workflow_scripts.gpu_slots --claim \d", block)
            assert resources and shell, block
            jobs[key] = (
                resources.group(1) + f" threads={threads.group(1) if threads else 1}",
                shell.group(0),
            )
    return jobs


@pytest.mark.usefixtures("no_accelerator")
def test_a_cpu_study_claims_no_gpu_and_a_gpu_study_does(workflow_copy: Path) -> None:
    config = yaml.safe_load((workflow_copy / "config" / "smoke.yaml").read_text())
    config["variants"]["ts_nofreeze"] = {"init": "timeseries"}  # the pretrain job too
    config["pretrain"] = {"train": {"epochs": 1, "steps_per_epoch": 2}}

    config["train"]["device"] = "cpu"
    cpu = _train_jobs(workflow_copy, config, "cpu.yaml")
    # 6 arms x 4 units (2 series x 2 folds x 1 seed) + one pretraining per series
    assert len(cpu) == 26 and sum(job.startswith("pretrain[") for job in cpu) == 2
    for job, (resources, shell) in cpu.items():
        assert "gpu=0" in resources and "threads=1" in resources, (job, resources)
        assert shell.startswith("OMP_NUM_THREADS=1 ") and shell.endswith("--claim 0"), (job, shell)

    config["train"]["device"] = "cuda"
    gpu = _train_jobs(workflow_copy, config, "gpu.yaml")
    assert set(gpu) == set(cpu)
    for job, (resources, shell) in gpu.items():
        assert "gpu=1" in resources and "threads=4" in resources, (job, resources)
        assert shell.startswith("OMP_NUM_THREADS=4 ") and shell.endswith("--claim 1"), (job, shell)

    # One arm on the GPU, the rest on the CPU: each job is placed by its own device.
    config["train"]["device"] = "cpu"
    config["variants"]["baseline"]["device"] = "cuda"
    mixed = _train_jobs(workflow_copy, config, "mixed.yaml")
    assert {job for job, (resources, _) in mixed.items() if "gpu=1" in resources} == {
        f"train[series={series}, fold={fold}, variant=baseline, seed=0]"
        for series in ("smoke-msft-daily", "smoke-synthetic-h1")
        for fold in (0, 1)
    }


def test_jobs_per_gpu_is_a_config_key_with_default_one() -> None:
    from workflow_scripts.config.base import ConfigError
    from workflow_scripts.config.loader import load_experiment

    assert load_experiment({}).gpu_slots.jobs_per_gpu == 1
    assert load_experiment({"gpu_slots": {"jobs_per_gpu": 4}}).gpu_slots.jobs_per_gpu == 4
    with pytest.raises(ConfigError, match=r"gpu_slots\.jobs_per_gpu"):
        load_experiment({"gpu_slots": {"jobs_per_gpu": 0}})


def test_the_pretraining_starts_before_train_jobs_that_are_ready_with_it(workflow_copy: Path) -> None:
    """The pretraining is the study's longest job and the control arms wait for it: Snakemake
    would otherwise start it after every ready train job, leaving the controls for the end."""
    config = yaml.safe_load((workflow_copy / "config" / "offline.yaml").read_text())
    assert config["variants"]["ts_nofreeze"].get("enabled", True)  # offline runs the control
    result = run_snakemake(workflow_copy, "-n", "--configfile", "config/offline.yaml", "--cores", "2")
    blocks = re.split(r"\n(?=\[[^\n]*\]\n|localrule |rule )", result.stdout + result.stderr)
    priority = {
        rule.group(1): int(found.group(1)) if (found := re.search(r"priority: (\d+)", block)) else 0
        for block in blocks
        if (rule := re.search(r"^(?:local)?rule (train|pretrain):", block, re.MULTILINE))
    }
    assert priority["pretrain"] > priority["train"] == 0
