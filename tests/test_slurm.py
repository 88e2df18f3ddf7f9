"""The workflow on a real Slurm cluster, through snakemake-executor-plugin-slurm.

``pytest -m slurm -rs tests/test_slurm.py`` starts a private single-node Slurm cluster on
localhost (tests/slurm/start_cluster.sh: munged, slurmctld and slurmd with their own
slurm.conf, ports, state, logs and munge socket), runs workflows through
``--executor slurm``, and stops the daemons by PID afterwards (tests/slurm/stop_cluster.sh),
also when a test fails.

What the test cluster cannot do, and how the tests deal with it:

* It has no GPU, and slurmd refuses ``GresTypes=gpu`` without a device, so the smoke run
  overrides the ``train`` rule's ``gpu`` resource to 0 (and its CPUs, threads and memory
  to what this node has). Everything else comes from profiles/slurm unchanged. How
  ``gpu: 1`` becomes ``--gpus=1`` is checked without a cluster, against the plugin's own
  code, in ``test_profile_gpu_maps_to_sbatch_flags``.
* Accounting is off (no slurmdbd), so ``sacct`` fails. The plugin therefore polls with
  ``--slurm-status-command squeue`` (squeue keeps finished jobs for MinJobAge = 600 s;
  the plugin falls back to sacct when MinJobAge < 3 x the initial status delay), and
  ``--slurm-no-account`` is passed. In plugin 2.8.0 that flag is parsed but not used:
  without ``slurm_account`` the plugin tries to guess an account with sacct, fails
  with a warning, and submits without ``-A``, which is what an account-less cluster needs.
* Proof that jobs went through sbatch, without sacct: squeue (all states) lists every
  job under the run's name with its ``rule_...`` comment and COMPLETED, slurmctld's log
  has ``_slurm_rpc_submit_batch_job`` and ``sched: Allocate`` for each job id, and the
  trivial workflow's outputs hold the ``SLURM_JOB_ID`` each job ran under.

If Slurm or munge is not installed, or the machine cannot host the cluster (not root, no
private mount namespace: start_cluster.sh exits 77), every cluster test is SKIPPED with the
reason (shown by ``-ra``). With STAGE1_REQUIRE_COMPONENTS=1 (set by .ci/run) or
SLURM_TEST_REQUIRED=1 that becomes a failure instead (tests/components.py). A cluster whose
prerequisites are all there but that does not come up (any other non-zero exit) is a
failure everywhere: that is a bug, not a missing component.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import NoReturn

import pytest
import yaml
from components import unavailable
from conftest import REPO, copy_workflow, job_environment

pytestmark = pytest.mark.slurm

SLURM_SCRIPTS = REPO / "tests" / "slurm"
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
NON_LOCAL_RULES = ("download_model", "verify_model", "preprocess", "reference", "train", "collect", "report")
# Flags the test cluster needs whatever the profile says (see the module docstring).
CLUSTER_FLAGS = {
    "slurm-status-command": "squeue",
    "slurm-init-seconds-before-status-checks": 2,
    "slurm-no-account": True,
}


def _skip_or_fail(reason: str) -> NoReturn:
    unavailable("slurm", reason)


def check_start(returncode: int, output: str) -> None:
    """What a start_cluster.sh exit status means: 0 up; 77 prerequisites missing (skip, or
    fail when required); anything else a cluster that should have started and did not (fail)."""
    if returncode == 77:
        reasons = [line[len("SKIP: ") :] for line in output.splitlines() if line.startswith("SKIP: ")]
        _skip_or_fail("Slurm test cluster unavailable: " + ("; ".join(reasons) or output))
    if returncode != 0:
        pytest.fail(f"Slurm test cluster did not start (exit {returncode}):\n{output[-4000:]}", pytrace=False)


def _require_plugin() -> None:
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        _skip_or_fail("snakemake-executor-plugin-slurm is not installed (./install.sh --dev)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


# --------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    run_dir: Path
    conf: Path
    node: str
    partitions: tuple[str, ...]
    cpus: int
    memory_mb: int

    def env(self) -> dict[str, str]:
        env = job_environment()
        for name in [name for name in env if name.startswith(("SLURM_", "SBATCH_", "SRUN_"))]:
            del env[name]
        env["SLURM_CONF"] = str(self.conf)
        return env

    def run(self, *command: str) -> str:
        result = subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{' '.join(command)} failed: {result.stderr}"
        return result.stdout

    def slurmctld_log(self) -> str:
        path = self.run_dir / "log" / "slurmctld.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def jobs(self, run_name: str) -> list[dict[str, str]]:
        """Every job of this run still known to slurmctld (MinJobAge=600 s), any state."""
        out = self.run("squeue", "--states=all", "--noheader", "--name", run_name, "--format=%i|%T|%P|%k|%j")
        keys = ("id", "state", "partition", "comment", "name")
        rows = [line.split("|", len(keys) - 1) for line in out.splitlines() if line.strip()]
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def diagnostics(self) -> str:
        parts = []
        for name in ("slurmctld", "slurmd"):
            path = self.run_dir / "log" / f"{name}.log"
            if path.exists():
                parts.append(
                    f"--- {path} (tail) ---\n"
                    + "\n".join(path.read_text(errors="replace").splitlines()[-40:])
                )
        try:
            parts.append(
                "--- squeue --states=all ---\n"
                + self.run("squeue", "--states=all", "--format=%i|%T|%P|%k|%r")
            )
        except AssertionError as error:
            parts.append(str(error))
        return "\n".join(parts)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A running single-node Slurm cluster; always stopped (by PID) afterwards."""
    _require_plugin()
    if not shutil.which("bash"):
        _skip_or_fail("bash is not available")
    # A short path: munged's and slurmd's Unix sockets live under it (108-byte limit).
    run_dir = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp" if os.path.isdir("/tmp") else None))
    train_partition = str(load_profile().get("set-resources", {}).get("train", {}).get("slurm_partition", ""))
    env = dict(os.environ)
    env.update(
        SLURM_TEST_CTLD_PORT=str(_free_port()),
        SLURM_TEST_SLURMD_PORT=str(_free_port()),
        SLURM_TEST_PARTITION="debug",
        # The profile's GPU partition exists here too, on the same node, so the profile's
        # slurm_partition for train is used as written.
        SLURM_TEST_EXTRA_PARTITIONS=train_partition,
    )
    started = time.monotonic()
    try:
        start = subprocess.run(
            ["bash", str(SLURM_SCRIPTS / "start_cluster.sh"), str(run_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = (start.stdout + start.stderr).strip()
        check_start(start.returncode, output)
        print(f"\nSlurm test cluster up in {time.monotonic() - started:.1f}s: {run_dir}\n{output}")
        conf = run_dir / "etc" / "slurm.conf"
        probe = Cluster(run_dir, conf, "", (), 0, 0)
        node_line = probe.run("sinfo", "--noheader", "--Node", "--format=%N|%c|%m").splitlines()[0]
        node, cpus, memory = node_line.split("|")
        partitions = tuple(p.rstrip("*") for p in probe.run("sinfo", "--noheader", "--format=%P").split())
        yield Cluster(run_dir, conf, node, partitions, int(cpus), int(memory.rstrip("+")))
    finally:
        subprocess.run(
            ["bash", str(SLURM_SCRIPTS / "stop_cluster.sh"), str(run_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if not os.environ.get("SLURM_TEST_KEEP_DIR"):
            shutil.rmtree(run_dir, ignore_errors=True)


def run_snakemake_on(
    cluster: Cluster, workdir: Path, *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(f"snakemake {' '.join(args)}: exit {result.returncode} after {time.monotonic() - started:.0f}s")
    if result.returncode != 0:
        # The rules' own logs (logs/{rule}/...) and the Slurm job logs (logs/slurm/...).
        slurm_logs = "\n".join(
            f"--- {path.relative_to(workdir)} ---\n{path.read_text(errors='replace')[-2000:]}"
            for path in sorted((workdir / "logs").rglob("*.log"))
            + sorted(workdir.glob(".snakemake/slurm_logs/**/*.log"))
        )
        raise AssertionError(
            f"snakemake {' '.join(args)} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-5000:]}\n--- stderr ---\n{result.stderr[-8000:]}\n"
            f"{slurm_logs[-8000:]}\n{cluster.diagnostics()}"
        )
    return result


def run_name_of(result: subprocess.CompletedProcess[str]) -> str:
    """The plugin's run id: every sbatch of the run uses it as --job-name."""
    match = re.search(r"SLURM run ID: (\S+)", result.stdout + result.stderr)
    assert match, "no 'SLURM run ID' in snakemake's output: did it use the slurm executor?"
    return match.group(1)


def assert_went_through_sbatch(
    cluster: Cluster, jobs: list[dict[str, str]], expected_rules: dict[str, int]
) -> None:
    """Each rule ran as the expected number of batch jobs, all COMPLETED, all in slurmctld's log."""
    log = cluster.slurmctld_log()
    per_rule: dict[str, int] = {}
    for job in jobs:
        rule = re.match(r"rule_(\w+?)(?:_wildcards_.*)?$", job["comment"])
        assert rule, f"job {job} has no rule_... comment: not submitted by the plugin?"
        per_rule[rule.group(1)] = per_rule.get(rule.group(1), 0) + 1
        assert job["state"] == "COMPLETED", f"job {job} did not complete\n{cluster.diagnostics()}"
        assert re.search(rf"_slurm_rpc_submit_batch_job: JobId={job['id']}\b", log), f"no sbatch for {job}"
        # the main scheduler logs "sched: Allocate JobId=N", the backfill scheduler (which
        # starts some jobs when several are queued) "sched/backfill: _start_job: Started JobId=N"
        started = rf"(sched: Allocate|sched/backfill: _start_job: Started) JobId={job['id']}\b"
        assert re.search(started, log), f"job {job} never allocated"
    assert per_rule == expected_rules, f"batch jobs per rule {per_rule} != expected {expected_rules}"


# --------------------------------------------------------------------------- the profile (no cluster)


def test_profile_settings() -> None:
    profile = load_profile()
    assert profile["executor"] == "slurm"
    assert {"runtime", "mem_mb", "cpus_per_task"} <= set(profile["default-resources"])
    train = profile["set-resources"]["train"]
    assert train["gpu"] == 1
    assert {"cpus_per_gpu", "mem_mb", "runtime", "slurm_partition"} <= set(train)
    # cpus_per_task (from default-resources) would win over cpus_per_gpu unless cancelled.
    assert not train.get("cpus_per_task")
    assert profile["set-threads"]["train"] == train["cpus_per_gpu"] * train["gpu"]
    for rule, resources in {"*": profile["default-resources"], **profile["set-resources"]}.items():
        extra = str(resources.get("slurm_extra", ""))
        assert not re.search(r"--(gpus|gres)\b", extra), (
            f"{rule}: GPUs belong in gpu/gpu_model, not slurm_extra"
        )
    assert "gpu_model" in PROFILE.read_text(), "the profile should show the optional gpu_model"


def gpu_rules() -> tuple[str, ...]:
    """Every rule in rules/*.smk whose resources claim ``gpu`` (``gpu=`` under ``resources:``)."""
    names = []
    for path in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", path.read_text(), flags=re.MULTILINE):
            rule = re.match(r"rule (\w+):", block)
            if rule and re.search(r"^\s+resources:\n(?:\s+\w+=.*\n)*?\s+gpu=", block, re.MULTILINE):
                names.append(rule.group(1))
    return tuple(names)


def gpu_placement_problems(profile: dict, rules: tuple[str, ...]) -> list[str]:
    """What keeps each GPU rule off a GPU node under ``profile`` (empty: every rule is placed)."""
    problems = []
    for rule in rules:
        placed = profile.get("set-resources", {}).get(rule)
        if not placed:
            problems.append(f"{rule}: claims gpu but has no set-resources (default partition, 30 min)")
            continue
        missing = {"gpu", "cpus_per_gpu", "mem_mb", "runtime", "slurm_partition"} - set(placed)
        if missing or not placed.get("gpu"):
            problems.append(f"{rule}: set-resources lacks {sorted(missing) or ['gpu >= 1']}")
        elif placed.get("cpus_per_task"):
            problems.append(f"{rule}: cpus_per_task would hide cpus_per_gpu")
        elif profile.get("set-threads", {}).get(rule) != placed["cpus_per_gpu"] * placed["gpu"]:
            problems.append(f"{rule}: set-threads is not cpus_per_gpu x gpu")
    return problems


def test_every_gpu_rule_has_a_gpu_placement() -> None:
    """pretrain and tune_train claim gpu like train; each needs the GPU partition and its wall time."""
    rules = gpu_rules()
    assert {"train", "pretrain", "tune_train"} <= set(rules), rules
    profile = load_profile()
    assert gpu_placement_problems(profile, rules) == []
    # The check bites: a rule without its block, or with a CPU-only block, is named.
    for rule in rules:
        unplaced = copy.deepcopy(profile)
        del unplaced["set-resources"][rule]
        assert gpu_placement_problems(unplaced, rules) == [
            f"{rule}: claims gpu but has no set-resources (default partition, 30 min)"
        ]
    cpu_only = copy.deepcopy(profile)
    del cpu_only["set-resources"]["pretrain"]["slurm_partition"]
    assert gpu_placement_problems(cpu_only, rules) == ["pretrain: set-resources lacks ['slurm_partition']"]
    # The wall time follows the steps: pretraining (2x a run's steps) gets more than train.
    resources = profile["set-resources"]
    assert resources["pretrain"]["runtime"] >= 2 * resources["train"]["runtime"]


class _Resources(dict):
    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error


def _train_submit_flags(train_overrides: dict | None = None) -> str:
    """The sbatch flags the plugin builds for a train job under profiles/slurm."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    profile = load_profile()
    threads = profile["set-threads"]["train"]
    resources = _Resources()
    for name, value in profile["default-resources"].items():
        # As Snakemake does: a string is a Python expression (e.g. `threads`) if it evaluates.
        try:
            resources[name] = eval(value, {"threads": threads}) if isinstance(value, str) else value
        except (NameError, SyntaxError):
            resources[name] = value
    resources.update(profile["set-resources"]["train"], **(train_overrides or {}))
    job = SimpleNamespace(resources=resources, threads=threads, name="train", is_group=lambda: False)
    params = {
        "run_uuid": "run",
        "slurm_logfile": "log",
        "comment_str": "rule_train",
        "account": "",
        "partition": f" -p {resources['slurm_partition']}",
        "workdir": "/work",
    }
    return get_submit_command(job, params) + set_gres_string(job)


def test_profile_gpu_maps_to_sbatch_flags() -> None:
    _require_plugin()
    train = load_profile()["set-resources"]["train"]
    flags = _train_submit_flags().split()
    assert "--gpus=1" in flags
    assert f"--cpus-per-gpu={train['cpus_per_gpu']}" in flags
    assert not [flag for flag in flags if flag.startswith(("--cpus-per-task", "--gres", "--ntasks"))], flags
    assert ["--mem", str(train["mem_mb"])] == flags[flags.index("--mem") : flags.index("--mem") + 2]
    assert ["-t", str(train["runtime"])] == flags[flags.index("-t") : flags.index("-t") + 2]
    assert ["-p", train["slurm_partition"]] == flags[flags.index("-p") : flags.index("-p") + 2]
    assert "--gpus=a100:1" in _train_submit_flags({"gpu_model": "a100"}).split()
    # What the cluster test runs: no GPU, so CPUs per task instead.
    cpu_only = _train_submit_flags({"gpu": 0, "cpus_per_task": 2}).split()
    assert "--cpus-per-task=2" in cpu_only and not [f for f in cpu_only if f.startswith("--gpus")]


# --------------------------------------------------------------------------- the cluster tests


def test_node_is_idle(cluster: Cluster) -> None:
    state = cluster.run("sinfo", "--noheader", "--Node", "--nodes", cluster.node, "--format=%T").split()
    assert state and state[0] == "idle", f"node {cluster.node} is {state}\n{cluster.diagnostics()}"
    assert "debug" in cluster.partitions


TRIVIAL_SNAKEFILE = """
rule all:
    input: expand("out/{i}.txt", i=range(3))

rule hello:
    output: "out/{i}.txt"
    resources: mem_mb=200, runtime=5
    shell: "echo $SLURM_JOB_ID > {output}"
"""


def test_trivial_workflow_runs_through_sbatch(cluster: Cluster, tmp_path: Path) -> None:
    """Step 1: a workflow of its own, so a plugin/cluster problem shows up on its own."""
    (tmp_path / "Snakefile").write_text(TRIVIAL_SNAKEFILE)
    result = run_snakemake_on(
        cluster,
        tmp_path,
        "--executor", "slurm",
        "--jobs", "3",
        "--workflow-profile", "none",
        *[f"--{key}" if value is True else f"--{key}={value}" for key, value in CLUSTER_FLAGS.items()],
        timeout=300,
    )  # fmt: skip
    jobs = cluster.jobs(run_name_of(result))
    assert_went_through_sbatch(cluster, jobs, {"hello": 3})
    ids_in_outputs = {(tmp_path / "out" / f"{i}.txt").read_text().strip() for i in range(3)}
    assert ids_in_outputs == {job["id"] for job in jobs}, "outputs were not written inside those Slurm jobs"


def write_test_profile(cluster: Cluster, directory: Path) -> dict:
    """A profile layered after profiles/slurm: only what this GPU-less node forces."""
    profile = load_profile()
    set_resources = copy.deepcopy(profile["set-resources"])
    train = set_resources["train"]
    cpus = min(cluster.cpus, 2)
    overrides = {
        "gpu": 0,  # no GPU (and no GresTypes=gpu) on the test node
        "cpus_per_task": 1,  # two train jobs side by side on a 2-CPU node
        "mem_mb": min(train["mem_mb"], cluster.memory_mb // (2 * cpus)),
    }
    for rule in gpu_rules():  # pretrain and tune_train too, should the DAG ever hold them
        set_resources[rule].update(overrides)
    threads = dict.fromkeys(gpu_rules(), 1)
    layer = {"set-resources": set_resources, "set-threads": threads, **CLUSTER_FLAGS}
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(layer, sort_keys=False))
    print(
        f"test profile layered over profiles/slurm: train overrides {overrides}, threads 1, {CLUSTER_FLAGS}"
    )
    return train


@pytest.mark.slow  # five minutes (20 train jobs): the quick tier stays quick on a machine with Slurm
def test_smoke_workflow_on_slurm(cluster: Cluster, tmp_path: Path) -> None:
    """Step 2: the smoke config through --profile profiles/slurm; every contract output exists."""
    from test_workflow import SEEDS, UNITS, VARIANTS, contract_paths

    workdir = copy_workflow(tmp_path / "workflow")
    train = write_test_profile(cluster, tmp_path / "slurm-test-profile")
    result = run_snakemake_on(
        cluster,
        workdir,
        "--profile", "profiles/slurm",
        "--profile", str(tmp_path / "slurm-test-profile"),
        # profiles/default (the workflow profile) would cap the whole cluster at one GPU job.
        "--workflow-profile", "none",
        "--configfile", "config/smoke.yaml",
        timeout=1200,
    )  # fmt: skip
    missing = [str(path.relative_to(workdir)) for path in contract_paths(workdir) if not path.exists()]
    assert not missing, f"contract outputs missing after the Slurm run: {missing}"

    jobs = cluster.jobs(run_name_of(result))
    expected = {rule: 1 for rule in NON_LOCAL_RULES}
    # One preprocess and one reference per (series, fold), one train per (series, fold, variant, seed).
    expected.update(preprocess=len(UNITS), reference=len(UNITS))
    expected["train"] = len(UNITS) * len(VARIANTS) * len(SEEDS)
    assert_went_through_sbatch(cluster, jobs, expected)
    # The train jobs got the profile's partition, i.e. profiles/slurm's set-resources were used.
    train_partitions = {job["partition"] for job in jobs if job["comment"].startswith("rule_train")}
    assert train_partitions == {str(train["slurm_partition"])}
