"""``python -m workflow_scripts.gpu_check``: one table, and an exit status that means something.

On this CPU machine it must say clearly that there is no GPU (exit 2) and fail (exit 1)
where a GPU is expected but torch sees none; a GPU machine is simulated by handing
``check`` what torch would see and what bench and the smoke DAGs would report.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, job_environment

from workflow_scripts import gpu_check
from workflow_scripts.gpu_check import FAIL, NO_GPU, OK, SKIPPED, Outcome, check, exit_status, table
from workflow_scripts.jobs.gpu_pool import Pool
from workflow_scripts.training.gpu_facts import TorchFacts

H100 = "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)"
ON_GPU = "cuda:0 = physical GPU 0 (NVIDIA H100 80GB HBM3)"
GPU_FACTS = TorchFacts(
    "2.13.0+cu128", "12.8", (H100,), None, True, True, "get_float32_matmul_precision()=high"
)
SMI = ("nvidia-smi -L lists 1 device(s): 0",)
POOL = Pool(("0",), "nvidia-smi -L")
BENCH = {"train_step_s": 0.0123, "train_step_efficiency": 0.981, "fp32_runs_as": "tf32"}

no_gpu_here = pytest.mark.skipif(
    torch.cuda.is_available() or Path("/dev/nvidiactl").exists(), reason="this machine has a GPU driver"
)


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = job_environment()
    environment.pop("CUDA_VISIBLE_DEVICES", None)
    environment.update(env)
    command = [sys.executable, "-m", "workflow_scripts.gpu_check", *args]
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=120)


def smoke_on(devices: list[str]):
    def smoke(jobs_per_gpu: int) -> Outcome:
        slots = ["gpu0.lock"] + (["gpu0.slot1.lock"] if jobs_per_gpu == 2 else [])
        return Outcome(0, 48.0, {"devices": devices, "slots": slots})

    return smoke


@no_gpu_here
def test_on_a_machine_without_a_gpu_it_says_so_and_exits_2() -> None:
    result = _run()
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["check", "status", "detail"]  # one table, then the verdict
    assert "NO GPU: torch sees no CUDA device and nothing here points to one" in lines[-1]
    rows = {line[:29].strip(): line[29:].split()[0:2] for line in lines[2:-2]}
    assert rows["CUDA devices torch sees"][:2] == ["no", "GPU"]
    assert rows["smoke DAG, gpu=1"][0] == SKIPPED  # the slow checks never start without a GPU


@no_gpu_here
def test_a_gpu_expected_but_not_seen_fails_with_exit_1() -> None:
    result = _run("--quick", CUDA_VISIBLE_DEVICES="0")
    assert result.returncode == 1, result.stdout + result.stderr
    devices = next(line for line in result.stdout.splitlines() if line.startswith("CUDA devices torch sees"))
    assert " FAIL " in devices and "install a torch build" in devices
    assert "GPU check FAILED" in result.stdout


def test_a_simulated_gpu_machine_passes_every_check() -> None:
    calls: list[str] = []
    rows = check(
        GPU_FACTS,
        SMI,
        POOL,
        quick=False,
        bench=lambda: calls.append("bench") or Outcome(0, 70.0, BENCH),
        smoke=lambda k: calls.append(f"smoke {k}") or smoke_on([ON_GPU] * 10)(k),
    )
    assert calls == ["bench", "smoke 1", "smoke 2"]
    assert [row.status for row in rows] == [OK] * len(rows)
    assert exit_status(rows) == 0 and table(rows).endswith(
        "GPU check passed: this machine trains on its GPUs."
    )
    assert "12.3 ms per step (batch 64), efficiency 0.981" in table(rows) and "gpu0.slot1.lock" in table(rows)
    quick = check(GPU_FACTS, SMI, POOL, quick=True, bench=pytest.fail, smoke=pytest.fail)
    assert [row.status for row in quick][-3:] == [SKIPPED] * 3 and exit_status(quick) == 0


@pytest.mark.parametrize(
    "broken",
    ["smoke trains on the CPU", "smoke fails", "bench fails", "pool empty", "TF32 reads raise"],
)
def test_any_failure_on_a_gpu_machine_exits_1(broken: str) -> None:
    facts, pool = GPU_FACTS, POOL
    smoke, bench = smoke_on([ON_GPU] * 10), lambda: Outcome(0, 70.0, BENCH)
    if broken == "smoke trains on the CPU":
        smoke = smoke_on([ON_GPU] * 9 + ["cpu"])
    elif broken == "smoke fails":
        smoke = lambda k: Outcome(1, 3.0, {"devices": []}, "DeviceError: ...")  # noqa: E731
    elif broken == "bench fails":
        bench = lambda: Outcome(1, 3.0, {}, "Traceback ...")  # noqa: E731
    elif broken == "pool empty":
        pool = Pool((), "an NVIDIA driver is here, but nvidia-smi -L listed no GPU", warning=True)
    else:
        facts = dataclasses.replace(GPU_FACTS, tf32_ok=False)
    rows = check(facts, SMI, pool, quick=False, bench=bench, smoke=smoke)
    failed = [row.check for row in rows if row.status == FAIL]
    assert exit_status(rows) == 1 and failed, rows
    assert len(failed) == (2 if broken.startswith("smoke") else 1)  # both smoke DAGs, or the one check
    assert table(rows).endswith("GPU check FAILED: see the rows marked FAIL.")


def test_no_gpu_is_exit_2_unless_something_failed() -> None:
    facts = TorchFacts("2.13.0+cpu", None, (), "torch 2.13.0+cpu is a build without CUDA", None, True, "high")
    rows = check(facts, (), Pool((), "no NVIDIA GPU on this machine", quiet=True), quick=False)
    assert exit_status(rows) == 2 and NO_GPU in {row.status for row in rows}
    expected = check(facts, ("CUDA_VISIBLE_DEVICES=0",), Pool((), "x", quiet=True), quick=False)
    assert exit_status(expected) == 1
    assert "2 no GPU at all" in (gpu_check.__doc__ or "")  # the choice, documented
