"""The GPU slot pool (workflow_scripts.gpu_slots): one GPU per concurrent job, no GPU needed.

The devices are simulated: the pool is told them through STAGE1_GPUS (or a fake
nvidia-smi), and each job records the CUDA_VISIBLE_DEVICES it saw and when it ran.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pytest
from conftest import REPO, copy_workflow, job_environment

from workflow_scripts.jobs import gpu_locks, gpu_pool
from workflow_scripts.jobs.gpu_pool import Pool, choose_pool, parse_device_list, parse_nvidia_smi

# A job: records what it saw and when, then sleeps. argv: record file, seconds.
JOB = """
import json, os, sys, time
start = time.time()
record = {"pid": os.getpid(), "device": os.environ.get("CUDA_VISIBLE_DEVICES"),
          "order": os.environ.get("CUDA_DEVICE_ORDER"), "start": start}
open(sys.argv[1] + ".started", "w").write(json.dumps(record))
time.sleep(float(sys.argv[2]))
record["end"] = time.time()
open(sys.argv[1], "w").write(json.dumps(record))
"""


def base_environment(**extra: str) -> dict[str, str]:
    """A clean job environment: no scheduler, no CUDA_VISIBLE_DEVICES, unless given."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in gpu_pool.SCHEDULER_JOB_VARIABLES
        and key
        not in (
            "CUDA_VISIBLE_DEVICES",
            "CUDA_DEVICE_ORDER",
            gpu_pool.GPUS_VARIABLE,
            gpu_pool.SCHEDULER_VARIABLE,
        )
    }
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def start_job(
    tmp_path: Path, name: str, env: Mapping[str, str], seconds: float = 1.0
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    script = tmp_path / "job.py"
    if not script.exists():
        script.write_text(JOB)
    record, log = tmp_path / f"{name}.json", tmp_path / f"{name}.log"
    command = [sys.executable, "-m", "workflow_scripts.gpu_slots", "--lock-dir", str(tmp_path / "slots")]
    command += ["--", sys.executable, str(script), str(record), str(seconds)]
    with log.open("wb") as stream:
        process = subprocess.Popen(command, env=dict(env), cwd=tmp_path, stdout=stream, stderr=stream)
    return process, record, log


def wait_for(path: Path, text: str | None = None, timeout: float = 30) -> None:
    """Until ``path`` exists (and contains ``text``)."""
    deadline = time.monotonic() + timeout
    while not path.exists() or (text is not None and text not in path.read_text()):
        assert time.monotonic() < deadline, f"{path} never appeared" + (f" with {text!r}" if text else "")
        time.sleep(0.05)


def assert_no_shared_device(intervals: list[tuple[float, float, str, str]]) -> None:
    """(start, end, device, name): jobs that overlap in time never saw the same device."""
    for (start_a, end_a, device_a, a), (start_b, end_b, device_b, b) in itertools.combinations(intervals, 2):
        if start_a < end_b and start_b < end_a:
            assert device_a != device_b, f"{a} and {b} ran at the same time on device {device_a}"


# --------------------------------------------------------------------------- choosing the pool


def no_devices() -> tuple[str, ...]:
    raise AssertionError("nvidia-smi must not be asked")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        # A workstation started with CUDA_VISIBLE_DEVICES: the pool is those devices.
        ({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, ("0", "1", "2", "3")),
        ({"CUDA_VISIBLE_DEVICES": "2, 3"}, ("2", "3")),
        ({"CUDA_VISIBLE_DEVICES": "1,-1,2"}, ("1",)),
        ({"CUDA_VISIBLE_DEVICES": ""}, ()),
        # Slurm (or another scheduler) set it for this job: leave it alone.
        ({"CUDA_VISIBLE_DEVICES": "3", "SLURM_JOB_ID": "12"}, ()),
        ({"CUDA_VISIBLE_DEVICES": "0", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}, ()),
        ({"CUDA_VISIBLE_DEVICES": "0", "LSB_JOBID": "5"}, ()),
        # A job a Snakemake remote executor started: the scheduler wins over everything.
        ({gpu_pool.SCHEDULER_VARIABLE: "slurm", "STAGE1_GPUS": "0,1"}, ()),
        # The setting: a list, visible (inside one allocation), none.
        ({"STAGE1_GPUS": "0,2", "CUDA_VISIBLE_DEVICES": "5"}, ("0", "2")),
        ({"STAGE1_GPUS": "0,2", "SLURM_JOB_ID": "12"}, ("0", "2")),
        ({"STAGE1_GPUS": "visible", "SLURM_JOB_ID": "12", "CUDA_VISIBLE_DEVICES": "0,1"}, ("0", "1")),
        ({"STAGE1_GPUS": "none", "CUDA_VISIBLE_DEVICES": "0,1"}, ()),
        ({"STAGE1_GPUS": "GPU-aaaa,GPU-bbbb"}, ("GPU-aaaa", "GPU-bbbb")),
    ],
)
def test_choose_pool(environ: dict[str, str], expected: tuple[str, ...]) -> None:
    assert choose_pool(environ, list_devices=no_devices, has_gpu=lambda: True).devices == expected


def test_pool_without_cuda_visible_devices_is_every_device_nvidia_smi_lists() -> None:
    pool = choose_pool({}, list_devices=lambda: ("0", "1", "2", "3"), has_gpu=lambda: True)
    assert pool == Pool(("0", "1", "2", "3"), "nvidia-smi -L")


def test_machine_without_gpus_asks_nothing_and_assigns_nothing() -> None:
    for environ in ({}, {"CUDA_VISIBLE_DEVICES": "0,1"}, {"STAGE1_GPUS": "auto"}):
        pool = choose_pool(environ, list_devices=no_devices, has_gpu=lambda: False)
        assert pool.devices == () and pool.quiet


def test_empty_nvidia_smi_with_device_nodes_gives_a_pool_and_a_warning_naming_both() -> None:
    """A driver but no usable nvidia-smi (a slim container): count /dev/nvidia[0-9]*, say so."""
    nodes = ("/dev/nvidia0", "/dev/nvidia1")
    pool = choose_pool({}, list_devices=lambda: (), has_gpu=lambda: True, list_nodes=lambda: nodes)
    assert pool.devices == ("0", "1") and pool.warning and not pool.quiet
    assert (
        "nvidia-smi" in pool.source and "counted 2 device node(s): /dev/nvidia0, /dev/nvidia1" in pool.source
    )
    # No nodes either: an empty pool, never a silent one.
    empty = choose_pool({}, list_devices=lambda: (), has_gpu=lambda: True, list_nodes=lambda: ())
    assert empty.devices == () and empty.warning and not empty.quiet
    assert "nvidia-smi" in empty.source and "no /dev/nvidia[0-9]* device node" in empty.source
    # nvidia-smi listing devices wins; the nodes are not even looked at.
    listed = choose_pool({}, list_devices=lambda: ("0",), has_gpu=lambda: True, list_nodes=no_devices)
    assert listed == Pool(("0",), "nvidia-smi -L")


def test_device_nodes_are_the_gpus_not_the_control_nodes(tmp_path: Path) -> None:
    for name in (
        "nvidia0",
        "nvidia10",
        "nvidia2",
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-modeset",
        "nvidia-caps",
    ):
        (tmp_path / name).touch()
    assert gpu_pool.device_nodes(tmp_path) == tuple(str(tmp_path / f"nvidia{i}") for i in (0, 2, 10))
    assert gpu_pool.device_nodes(tmp_path / "missing") == ()


def test_a_pool_counted_from_device_nodes_is_warned_in_the_job_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def guessed(environ: Mapping[str, str]) -> Pool:
        return choose_pool(
            environ, list_devices=lambda: (), has_gpu=lambda: True, list_nodes=lambda: ("/dev/nvidia0",)
        )

    monkeypatch.setattr(gpu_locks, "choose_pool", guessed)
    environ: dict[str, str] = {}
    with caplog.at_level("INFO", logger="workflow_scripts.gpu_slots"):
        slot = gpu_locks.take_slot(environ, tmp_path / "slots")
    assert slot is not None and environ["CUDA_VISIBLE_DEVICES"] == "0"
    gpu_locks.release_slot(slot)
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and "counted 1 device node(s): /dev/nvidia0" in warnings[0]


def test_a_setting_that_names_no_device_is_an_error() -> None:
    with pytest.raises(ValueError, match="STAGE1_GPUS"):
        choose_pool({"STAGE1_GPUS": ","}, list_devices=no_devices, has_gpu=lambda: True)


def test_parse_nvidia_smi_counts_gpus_and_mig_instances() -> None:
    listing = (
        "GPU 0: NVIDIA H200 (UUID: GPU-11111111-2222-3333-4444-555555555555)\n"
        "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaa)\n"
        "  MIG 1g.5gb      Device  0: (UUID: MIG-bbbb)\n"
        "  MIG 1g.5gb      Device  1: (UUID: MIG-cccc)\n"
        "GPU 2: NVIDIA H200 (UUID: GPU-dddd)\n"
    )
    assert parse_nvidia_smi(listing) == ("0", "MIG-bbbb", "MIG-cccc", "2")
    assert parse_nvidia_smi("") == ()
    assert parse_device_list(" 0 , 2 ,") == ("0", "2")


def test_the_decision_imports_no_torch() -> None:
    code = (
        "import sys, workflow_scripts.jobs.gpu_pool as g\n"
        "g.choose_pool({})\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], env=base_environment(), check=True)


# --------------------------------------------------------------------------- the device in summary.json


def test_describe_device_names_the_physical_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from workflow_scripts.training import device as device_module

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "NVIDIA H200")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    assert device_module.describe_device(torch.device("cuda", 0)) == "cuda:0 = physical GPU 2 (NVIDIA H200)"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert device_module.describe_device(torch.device("cuda", 1)) == "cuda:1 = physical GPU 1 (NVIDIA H200)"
    assert device_module.describe_device(torch.device("cpu")) == "cpu"
    assert device_module.physical_gpu(1, {"CUDA_VISIBLE_DEVICES": "GPU-aaaa,GPU-bbbb"}) == "GPU-bbbb"


# --------------------------------------------------------------------------- jobs through the wrapper


def test_four_jobs_on_two_gpus_never_share_one(tmp_path: Path) -> None:
    env = base_environment(STAGE1_GPUS="0,1")
    jobs = [start_job(tmp_path, f"job{index}", env, seconds=2.0) for index in range(4)]
    for process, _, log in jobs:
        assert process.wait(timeout=60) == 0, log.read_text()
    records = [json.loads(record.read_text()) for _, record, _ in jobs]
    assert all(record["device"] in ("0", "1") for record in records), records
    assert all(record["order"] == "PCI_BUS_ID" for record in records)
    assert_no_shared_device(
        [(r["start"], r["end"], r["device"], f"job{index}") for index, r in enumerate(records)]
    )
    # Four jobs, two slots: some waited (never more than two ran at once), and their logs say so.
    logs = [log.read_text() for _, _, log in jobs]
    assert all(re.search(r"GPU slot: took \S+gpu[01]\.lock .* after waiting", text) for text in logs), logs
    assert any("are taken; waiting" in text for text in logs), logs
    assert {record["device"] for record in records} == {"0", "1"}


def test_a_job_killed_with_kill_9_frees_its_slot(tmp_path: Path) -> None:
    env = base_environment(STAGE1_GPUS="0")
    first, first_record, _ = start_job(tmp_path, "first", env, seconds=120)
    wait_for(Path(f"{first_record}.started"))
    # exec: the training process is the wrapper's process, holding the lock itself.
    assert json.loads(Path(f"{first_record}.started").read_text())["pid"] == first.pid
    second, second_record, second_log = start_job(tmp_path, "second", env, seconds=0)
    wait_for(second_log, "are taken; waiting")
    time.sleep(1.0)
    assert not Path(f"{second_record}.started").exists(), "second job ran while the only slot was held"
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    assert second.wait(timeout=30) == 0, second_log.read_text()
    assert json.loads(second_record.read_text())["device"] == "0"
    waited = float(re.search(r"after waiting ([\d.]+) s", second_log.read_text()).group(1))  # type: ignore[union-attr]
    assert waited >= 1.0


def _running_per_device(tmp_path: Path, names: list[str]) -> dict[str, int]:
    """Jobs among ``names`` that have started and not ended, per device they saw."""
    counts: dict[str, int] = {}
    for name in names:
        started = Path(f"{tmp_path / name}.json.started")
        if started.exists() and not (tmp_path / f"{name}.json").exists():
            device = json.loads(started.read_text())["device"]
            counts[device] = counts.get(device, 0) + 1
    return counts


def test_two_jobs_per_gpu_spread_two_per_device_never_three(tmp_path: Path) -> None:
    """gpu_slots.jobs_per_gpu = 2 on two (simulated) GPUs: four jobs at once, two on each."""
    env = base_environment(STAGE1_GPUS="0,1", STAGE1_JOBS_PER_GPU="2")
    four = [start_job(tmp_path, f"job{index}", env, seconds=120) for index in range(4)]
    for _, record, _ in four:
        wait_for(Path(f"{record}.started"))
    names = [f"job{index}" for index in range(4)]
    assert _running_per_device(tmp_path, names) == {"0": 2, "1": 2}
    # A fifth job finds every slot taken: it waits, and never makes a third on one device.
    fifth, fifth_record, fifth_log = start_job(tmp_path, "job4", env, seconds=0)
    wait_for(fifth_log, "are taken; waiting")
    time.sleep(1.0)
    assert not Path(f"{fifth_record}.started").exists(), "a third job ran on one GPU"
    # kill -9 of one job frees its slot, and the fifth job takes that device.
    killed, killed_record, _ = four[1]
    killed_device = json.loads(Path(f"{killed_record}.started").read_text())["device"]
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait(timeout=10) == -signal.SIGKILL
    assert fifth.wait(timeout=30) == 0, fifth_log.read_text()
    assert json.loads(fifth_record.read_text())["device"] == killed_device
    locks = sorted(path.name for path in (tmp_path / "slots").iterdir())
    assert locks == ["gpu0.lock", "gpu0.slot1.lock", "gpu1.lock", "gpu1.slot1.lock"]
    for process, _, _ in four:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_the_first_jobs_take_a_free_gpu_before_sharing_one() -> None:
    assert gpu_pool.pool_slots(("0", "1"), 2) == [("0", 0), ("1", 0), ("0", 1), ("1", 1)]
    assert gpu_pool.pool_slots(("0",), 1) == [("0", 0)]
    assert gpu_pool.jobs_per_gpu({}) == 1 and gpu_pool.jobs_per_gpu({"STAGE1_JOBS_PER_GPU": "4"}) == 4
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match="STAGE1_JOBS_PER_GPU"):
            gpu_pool.jobs_per_gpu({"STAGE1_JOBS_PER_GPU": bad})


def test_a_cpu_job_takes_no_slot(tmp_path: Path) -> None:
    """--claim 0 (the rule's gpu=0): the job runs at once, even with every slot held."""
    with gpu_locks.gpu_slot({"STAGE1_GPUS": "0"}, lock_dir=tmp_path / "slots"):
        script = tmp_path / "job.py"
        script.write_text(JOB)
        record = tmp_path / "cpu.json"
        command = [sys.executable, "-m", "workflow_scripts.gpu_slots", "--lock-dir", str(tmp_path / "slots")]
        command += ["--claim", "0", "--", sys.executable, str(script), str(record), "0"]
        subprocess.run(command, env=base_environment(STAGE1_GPUS="0"), cwd=tmp_path, check=True, timeout=30)
    assert json.loads(record.read_text())["device"] is None


def test_in_process_slot_blocks_a_wrapped_job_until_released(tmp_path: Path) -> None:
    environ: dict[str, str] = {"STAGE1_GPUS": "7"}
    with gpu_locks.gpu_slot(environ, lock_dir=tmp_path / "slots") as slot:
        assert slot is not None and environ["CUDA_VISIBLE_DEVICES"] == "7"
        job, record, log = start_job(tmp_path, "job", base_environment(STAGE1_GPUS="7"), seconds=0)
        wait_for(log, "are taken; waiting")
        time.sleep(0.5)
        assert not Path(f"{record}.started").exists()
    assert job.wait(timeout=30) == 0, log.read_text()
    assert json.loads(record.read_text())["device"] == "7"


@pytest.mark.parametrize(
    "scheduler",
    [{"SLURM_JOB_ID": "42"}, {gpu_pool.SCHEDULER_VARIABLE: "a Snakemake remote executor"}],
)
def test_a_job_whose_gpu_a_scheduler_chose_keeps_it(tmp_path: Path, scheduler: dict[str, str]) -> None:
    job, record, log = start_job(tmp_path, "job", base_environment(CUDA_VISIBLE_DEVICES="3", **scheduler), 0)
    assert job.wait(timeout=30) == 0, log.read_text()
    assert json.loads(record.read_text())["device"] == "3"
    assert json.loads(record.read_text())["order"] is None
    assert not (tmp_path / "slots").exists()
    assert "none assigned" in log.read_text()


@pytest.mark.skipif(
    Path("/dev/nvidiactl").exists(), reason="this machine has an NVIDIA driver: not a GPU-less machine"
)
def test_without_gpus_nothing_changes(tmp_path: Path) -> None:
    env = base_environment(PATH=str(tmp_path / "empty-bin"))  # no nvidia-smi to find
    job, record, log = start_job(tmp_path, "job", env, seconds=0)
    assert job.wait(timeout=30) == 0, log.read_text()
    seen = json.loads(record.read_text())
    assert seen["device"] is None and seen["order"] is None
    assert not (tmp_path / "slots").exists()
    assert log.read_text() == ""


def test_devices_counted_by_nvidia_smi(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-a)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-b)'\n"
    )
    fake.chmod(0o755)
    env = base_environment(PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    jobs = [start_job(tmp_path, f"job{index}", env, seconds=1.0) for index in range(2)]
    for process, _, log in jobs:
        assert process.wait(timeout=60) == 0, log.read_text()
    assert sorted(json.loads(record.read_text())["device"] for _, record, _ in jobs) == ["0", "1"]


# --------------------------------------------------------------------------- the workflow


_TOOK = re.compile(
    r"^(\S+) INFO workflow_scripts\.gpu_slots: GPU slot: took \S+ \(CUDA_VISIBLE_DEVICES=(\w+);", re.MULTILINE
)
_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}) ", re.MULTILINE)


@pytest.mark.slow
def test_smoke_dag_on_a_simulated_two_gpu_pool(tmp_path: Path) -> None:
    """The smoke DAG with two simulated GPUs and gpu=2: every train job holds a slot of its own.

    torch is CPU-only here, so the jobs train on the CPU on purpose (``train.device: cpu``;
    with ``auto`` a job given a slot's CUDA_VISIBLE_DEVICES and no CUDA device stops,
    test_gpu_paths.py) while still claiming a slot (``--set-resources train:gpu=1``);
    the slot a job held is in its log.
    """
    workdir = copy_workflow(tmp_path / "workflow")
    (workdir / "config" / "cpu.yaml").write_text("train:\n  device: cpu\n")
    env = job_environment()
    env.update(STAGE1_GPUS="0,1")
    for name in (*gpu_pool.SCHEDULER_JOB_VARIABLES, gpu_pool.SCHEDULER_VARIABLE):
        env.pop(name, None)
    command = [sys.executable, "-m", "snakemake", "--configfile", "config/smoke.yaml", "config/cpu.yaml"]
    command += ["--cores", "4", "--resources", "gpu=2", "--set-threads", "train=2"]
    command += ["--set-resources", "train:gpu=1"]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-6000:]

    intervals = []
    for log in sorted((workdir / "logs" / "train").rglob("*.log")):
        text = log.read_text()
        took = _TOOK.search(text)
        assert took, f"{log} does not say which GPU slot it took"
        end = _STAMP.findall(text)[-1]
        intervals.append(
            (
                datetime.fromisoformat(took.group(1)).timestamp(),
                datetime.fromisoformat(end).timestamp(),
                took.group(2),
                str(log.relative_to(workdir)),
            )
        )
    # results/runs/{series}/fold{fold}/{variant}/seed{seed}: 2 series x 2 folds x 5 arms x 1 seed
    runs = list((workdir / "results" / "runs").glob("*/fold*/*/seed*/summary.json"))
    assert len(intervals) == len(runs) >= 20
    assert_no_shared_device(intervals)
    # Two train jobs ran at once (gpu=2), so both slots were used.
    assert {device for _, _, device, _ in intervals} == {"0", "1"}
    assert sorted(path.name for path in (workdir / ".snakemake" / "gpu-slots").iterdir()) == [
        "gpu0.lock",
        "gpu1.lock",
    ]
    run = Path("results", "runs", "smoke-msft-daily", "fold0", "baseline", "seed0")
    summary = json.loads((workdir / run / "summary.json").read_text())
    assert summary["device"] == "cpu"

    # The same job as a cluster or cloud executor runs it (Snakemake's remote mode, here
    # with the scheduler's CUDA_VISIBLE_DEVICES=1): the pool assigns nothing.
    shutil.rmtree(workdir / run)
    command = [sys.executable, "-m", "snakemake", str(run / "summary.json")]
    command += ["--mode", "remote", "--configfile", "config/smoke.yaml", "config/cpu.yaml", "--cores", "2"]
    command += ["--set-resources", "train:gpu=1"]
    env["CUDA_VISIBLE_DEVICES"] = "1"
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-6000:]
    log = (workdir / "logs" / "train" / "smoke-msft-daily" / "fold0" / "baseline" / "seed0.log").read_text()
    assert "GPU slot: none assigned (the scheduler chose this job's GPUs: a Snakemake remote executor" in log
    assert "CUDA_VISIBLE_DEVICES=1" in log and "GPU slot: took" not in log
