"""The benchmark harness runs and reports every figure issue 7 asks for (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from conftest import REPO, job_environment

pytestmark = pytest.mark.slow


def _bench(*flags: str) -> dict[str, Any]:
    """``bench --quick --iters 2 *flags``: the JSON object of its last line."""
    result = subprocess.run(
        [sys.executable, "-m", "workflow_scripts.bench", "--quick", "--iters", "2", *flags],
        cwd=REPO,
        env=job_environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_quick_benchmark_prints_the_figures_as_its_last_json_line() -> None:
    figures = _bench()
    assert figures["machine"]["cpu_cores"] >= 1
    assert 0 < figures["train_step_efficiency"] < 2
    # The loop's own milliseconds per step, and the batch's share of them, reported apart.
    assert figures["batch_ms_per_step"] > 0 and figures["batch_steps_ahead"] >= 1
    loop_ms = 1000 * (figures["train_step_s"] - figures["bare_step_s"])
    assert abs(figures["host_ms_per_step"] - loop_ms) < 0.02
    assert set(figures["samples_per_s"]) == {"nofreeze", "freeze", "frozen_all", "baseline"}
    assert all(value > 0 for value in figures["samples_per_s"].values())
    for key in ("bf16_vs_fp32_speedup", "dag_dry_run_s", "preprocess_m1_rows_per_s"):
        assert figures[key] > 0, key


def test_efficiency_only_reports_the_loop_figures_alone() -> None:
    """The t5-small figure on a CPU: efficiency, host and batch milliseconds, nothing slower."""
    figures = _bench("--efficiency-only")
    loop_keys = {
        "train_step_efficiency",
        "train_step_s",
        "bare_step_s",
        "host_ms_per_step",
        "batch_ms_per_step",
    }
    assert loop_keys | {"batch_steps_ahead", "fp32_runs_as", "machine", "quick", "setting"} == set(figures)
    # What "fp32" ran as: fp32 on a CPU, tf32 on CUDA (then the speedup is bf16_vs_tf32_speedup).
    assert figures["fp32_runs_as"] == ("tf32" if figures["machine"].get("gpu") else "fp32")
    assert figures["batch_steps_ahead"] == 25  # the quick point's 32 windows fit many times over
