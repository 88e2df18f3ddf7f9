"""The GPU paths on a CPU machine, with simulated devices (issue 31).

No GPU was available to this project, so each GPU decision is tested by simulating what
a GPU machine would show: ``CUDA_VISIBLE_DEVICES``, ``/dev/nvidiactl`` (a file in a
temporary directory), ``nvidia-smi`` output (a function), and torch's CUDA calls
(monkeypatched); the CUDA branch of ``configure_backends`` runs on the CPU build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from conftest import REPO, job_environment

from workflow_scripts.jobs import gpu_pool, placement
from workflow_scripts.jobs.gpu_pool import gpu_evidence
from workflow_scripts.training import batches, bench_hooks
from workflow_scripts.training.device import DeviceError, fp32_name, resolve_device

CUDA = torch.device("cuda", 0)


@pytest.fixture
def torch_sees_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def machine(dev_dir: Path, listed: tuple[str, ...] = (), *, driver: bool = False):
    """``gpu_evidence`` on a simulated machine: its /dev and its ``nvidia-smi -L``."""
    dev_dir.mkdir(exist_ok=True)
    if driver:
        (dev_dir / "nvidiactl").touch()

    def evidence(environ: Mapping[str, str]) -> tuple[str, ...]:
        return gpu_evidence(environ, list_devices=lambda: listed, dev_dir=dev_dir)

    return evidence


@pytest.mark.usefixtures("torch_sees_no_gpu")
@pytest.mark.parametrize(
    ("environ", "listed", "driver", "fact"),
    [
        ({"CUDA_VISIBLE_DEVICES": "0"}, (), False, "CUDA_VISIBLE_DEVICES=0 (set by a GPU slot"),
        ({}, (), True, "nvidiactl exists (an NVIDIA driver is loaded)"),
        ({}, ("0", "MIG-aaaa"), False, "nvidia-smi -L lists 2 device(s): 0, MIG-aaaa"),
    ],
    ids=["slot-or-scheduler", "driver", "nvidia-smi"],
)
def test_auto_refuses_where_a_gpu_is_expected_but_torch_sees_none(
    tmp_path: Path, environ: dict[str, str], listed: tuple[str, ...], driver: bool, fact: str
) -> None:
    evidence = machine(tmp_path / "dev", listed, driver=driver)
    with pytest.raises(DeviceError) as raised:
        resolve_device("auto", environ=environ, evidence=evidence)
    message = str(raised.value)
    assert message.startswith("train.device = auto, but torch sees no CUDA device although a GPU is expected")
    assert fact in message
    assert "a build without CUDA" in message  # the cause, in torch's terms (this CPU build)
    assert "set train.device: cpu to train on the CPU on purpose" in message  # the fix
    assert "python -m workflow_scripts.gpu_check" in message
    # Training on the CPU on purpose stays possible on the same machine.
    assert resolve_device("cpu", environ=environ, evidence=evidence) == torch.device("cpu")


@pytest.mark.usefixtures("torch_sees_no_gpu")
def test_auto_trains_on_the_cpu_where_no_gpu_is_expected(tmp_path: Path) -> None:
    evidence = machine(tmp_path / "dev")
    # CUDA_VISIBLE_DEVICES="" or "-1" hides every GPU on purpose: nothing is expected.
    for environ in ({}, {"CUDA_VISIBLE_DEVICES": ""}, {"CUDA_VISIBLE_DEVICES": "-1"}):
        assert resolve_device("auto", environ=environ, evidence=evidence) == torch.device("cpu")


def test_the_gpu_expectation_reads_this_machine_when_not_simulated(tmp_path: Path) -> None:
    """The default evidence looks at the real /dev and nvidia-smi, so a job on a GPU machine refuses."""
    assert gpu_evidence({}, list_devices=lambda: (), dev_dir=tmp_path) == ()
    assert Path("/dev") == gpu_pool.DEV_DIR
    assert resolve_device.__kwdefaults__["evidence"] is gpu_evidence


def test_placement_makes_auto_a_gpu_job_and_warns_where_torch_sees_no_expected_gpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], torch_sees_no_gpu: None
) -> None:
    """At DAG time, jobs do not quietly become one-thread CPU jobs: they claim a GPU and stop."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setattr(
        placement, "gpu_evidence", lambda environ: gpu_evidence(environ, list_devices=lambda: ())
    )
    assert placement.local_accelerator.__wrapped__() is True
    warning = capsys.readouterr().err
    assert "a GPU is expected here (CUDA_VISIBLE_DEVICES=0,1" in warning and "torch sees none" in warning
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(placement, "has_nvidia_gpu", lambda: True)  # a driver, but nothing listed
    monkeypatch.setattr(placement, "gpu_evidence", lambda environ: ())
    assert placement.local_accelerator.__wrapped__() is False


# --------------------------------------------------------------------------- TF32 and determinism


_READ_BACK = """
import json, os, torch
from workflow_scripts.training.device import configure_backends
configure_backends(torch.device("cuda"))
print(json.dumps({
    "get_float32_matmul_precision": torch.get_float32_matmul_precision(),
    "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
    "matmul.fp32_precision": torch.backends.cuda.matmul.fp32_precision,
    "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
    "cudnn.conv.fp32_precision": torch.backends.cudnn.conv.fp32_precision,
    "deterministic": torch.are_deterministic_algorithms_enabled(),
    "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
    "cudnn.deterministic": torch.backends.cudnn.deterministic,
    "cudnn.benchmark": torch.backends.cudnn.benchmark,
    "attention": [torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.mem_efficient_sdp_enabled(),
                  torch.backends.cuda.cudnn_sdp_enabled(), torch.backends.cuda.math_sdp_enabled()],
    "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
}))
"""


def test_after_configure_backends_the_legacy_and_the_new_precision_reads_both_work() -> None:
    """The CUDA branch, run on this CPU build in a fresh process (it sets global torch state).

    With torch's new ``fp32_precision`` attribute set, the legacy reads raise "mix of the
    legacy and new APIs" (torch 2.9+); torch.compile reads them.
    """
    env = job_environment()
    env.pop("CUBLAS_WORKSPACE_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-c", _READ_BACK], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["get_float32_matmul_precision"] == "high"
    assert seen["matmul.allow_tf32"] is True and seen["matmul.fp32_precision"] == "tf32"
    assert seen["cudnn.allow_tf32"] is True and seen["cudnn.conv.fp32_precision"] == "tf32"
    # Deterministic where it costs little: kernels, cuBLAS workspace, cuDNN, math attention.
    assert seen["deterministic"] and seen["warn_only"]
    assert seen["cudnn.deterministic"] and not seen["cudnn.benchmark"]
    assert seen["attention"] == [False, False, False, True]
    assert seen["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert (fp32_name(CUDA), fp32_name(torch.device("cpu"))) == ("tf32", "fp32")


def test_configure_backends_leaves_the_cpu_alone() -> None:
    from workflow_scripts.training.device import configure_backends

    before = (torch.are_deterministic_algorithms_enabled(), torch.get_float32_matmul_precision())
    configure_backends(torch.device("cpu"))
    assert (torch.are_deterministic_algorithms_enabled(), torch.get_float32_matmul_precision()) == before


# --------------------------------------------------------------------------- memory shared on one GPU


def test_the_feed_memory_budget_divides_by_the_jobs_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    free = 8 * 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 16 * 2**30))
    assert batches.resident_budget(free, 1) == 0.25 * free
    assert batches.resident_budget(free, 4) == 0.25 * free / 4
    split = int(0.2 * free)  # fits one job's quarter, not a half of it
    assert batches._storage_device(split, CUDA, {}) == CUDA
    assert batches._storage_device(split, CUDA, {"STAGE1_JOBS_PER_GPU": "1"}) == CUDA
    assert batches._storage_device(split, CUDA, {"STAGE1_JOBS_PER_GPU": "2"}) == torch.device("cpu")
    # k jobs that start together can no longer claim more than the share between them.
    for k in (1, 2, 3, 8):
        assert k * batches.resident_budget(free, k) <= batches.DEVICE_RESIDENT_SHARE * free
    assert batches._storage_device(10**12, torch.device("cpu"), {"STAGE1_JOBS_PER_GPU": "2"}).type == "cpu"


# --------------------------------------------------------------------------- bench


def test_bench_resets_the_device_peak_after_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append("synchronize"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 3 * 2**20)
    bench_hooks.reset_device_peak(CUDA)
    assert calls == ["synchronize", "reset"]
    assert bench_hooks.device_peak_mb(CUDA) == 3
    calls.clear()
    bench_hooks.reset_device_peak(torch.device("cpu"))
    assert calls == [] and bench_hooks.device_peak_mb(torch.device("cpu")) is None
    source = (REPO / "workflow_scripts" / "bench.py").read_text()
    build, reset, steps = (
        source.index("run = build_bench_run(point, Path(tmp))"),
        source.index("reset_device_peak(run.device)"),
        source.index("step_s = time_loop_steps("),
    )
    assert build < reset < steps, "the peak must be reset after the build and before the steps"
