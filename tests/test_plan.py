"""The study's plan (issue 30): counts against a finished smoke study, the schedule against hand
computations, a budget too small for one run, and a plan that writes nothing but plan.json."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import huggingface_hub
import pytest
from conftest import REPO, copy_workflow

from workflow_scripts import plan as plan_entry
from workflow_scripts.planning.advice import advice
from workflow_scripts.planning.costs import FixedCosts, ShapeCost
from workflow_scripts.planning.estimate import estimate
from workflow_scripts.planning.measure import model_config_dir
from workflow_scripts.planning.plan_file import read_plan
from workflow_scripts.planning.schedule import Slots
from workflow_scripts.planning.work import PRETRAINED, TRAINING_RULES, JobWork, Shape, study_jobs
from workflow_scripts.training.steplog import Progress

SHAPE = Shape("m", 32, 8, 2, 16, 64, "fp32", "cpu", "per_timeframe", "reconstruct")
#: Injected costs: 0.1 s per step, nothing else (no start-up, no passes).
STEP = {SHAPE.key: ShapeCost(step_s=0.1, frozen_step_s=0.1, val_pass_s=0.0, test_pass_s=0.0, build_s=0.0)}
NO_FIXED = FixedCosts(import_s={}, work_s={}, job_overhead_s=0.0)


def small_study(gpu: bool) -> list[JobWork]:
    """pretrain (100 steps = 10 s), its verification (0 s), two baseline runs (5 s each) and two
    runs that start from the pretraining (5 s each)."""

    def run(name: str, steps: int, after: tuple[str, ...] = ()) -> JobWork:
        return JobWork("train", name, name, SHAPE, "v", steps_training=steps, gpu=gpu, after=after)

    return [
        JobWork("pretrain", "pretrain", "p", SHAPE, "pretrain", steps_training=100, gpu=gpu),
        JobWork("verify_model", PRETRAINED, "pv", after=("pretrain",)),
        run("baseline seed0", 50),
        run("baseline seed1", 50),
        run("ts seed0", 50, (PRETRAINED,)),
        run("ts seed1", 50, (PRETRAINED,)),
    ]


def test_one_core_runs_the_jobs_in_turn() -> None:
    # 10 + 4 x 5 = 30 s, whatever the order.
    assert estimate(small_study(False), STEP, NO_FIXED, Slots(cores=1)).wall_s == pytest.approx(30.0)


def test_two_cores_start_the_pretraining_first() -> None:
    # t=0: pretrain (longest chain, 15 s) and baseline seed0; t=5: baseline seed1; t=10: the
    # pretraining is verified and both ts runs start; they end at 15.
    result = estimate(small_study(False), STEP, NO_FIXED, Slots(cores=2))
    assert result.wall_s == pytest.approx(15.0)
    assert {p.name: p.start for p in result.placed}["ts seed0"] == pytest.approx(10.0)


def test_two_gpus_two_jobs_each() -> None:
    # gpu=4 slots on 16 cores, each job 1.5x longer on a shared GPU: pretrain 15 s and both
    # baseline runs (7.5 s) start at 0; the ts runs start at 15 and end at 22.5.
    slots = Slots(cores=16, gpu=4, jobs_per_gpu=2, share_slowdown=1.5)
    assert estimate(small_study(True), STEP, NO_FIXED, slots).wall_s == pytest.approx(22.5)
    # One GPU, one job at a time: 10 + 4 x 5 = 30 s.
    assert estimate(small_study(True), STEP, NO_FIXED, Slots(cores=16, gpu=1)).wall_s == pytest.approx(30.0)


def test_the_arms_from_the_pretraining_wait_for_its_verification() -> None:
    """The offline study's DAG: pretrain -> verify_model of its export -> the ts arms' runs."""
    experiment = plan_entry.load_study(REPO, [str(REPO / "config" / "offline.yaml")])
    jobs = {
        job.name: job for job in study_jobs(experiment, dict.fromkeys(("auto", "cpu", "cuda", "mps"), False))
    }
    assert jobs[PRETRAINED].after == ("pretrain",)
    assert jobs[PRETRAINED].output.endswith("--timeseries/verification.json")
    waiting = [job for job in jobs.values() if PRETRAINED in job.after]
    assert waiting and all(job.variant in ("ts_nofreeze", "ts_encoder") for job in waiting)


def test_a_budget_too_small_for_one_run_says_so() -> None:
    lines = advice(None, lambda _e: 1e9, budget_s=60.0, shortest_run_s=300.0)  # type: ignore[arg-type]
    assert lines == [
        "no setting fits: the shortest single run alone takes 300 s, more than the budget of 60 s"
    ]


def test_progress_line_at_a_steady_interval() -> None:
    now = [0.0]
    progress = Progress(total=100, done=20, every_s=30.0, clock=lambda: now[0])
    now[0] = 10.0
    assert progress.step() is None
    now[0] = 40.0
    assert progress.step() == "progress: step 22/100 (22%), 0.05 steps/s, ETA 1560 s"


def test_a_model_it_cannot_read_is_named_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No config.json anywhere (not downloaded, the Hub unreachable) and no known architecture:
    the plan says what it could not time and what it counted, exits 2 and writes nothing."""
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    overlay = tmp_path / "unknown.yaml"
    overlay.write_text("model: {name_or_path: nobody/unknown-model}\n", encoding="utf-8")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _offline)
    out = tmp_path / "results" / "plan.json"
    argv = ["--workdir", str(tmp_path), "--configfile", str(overlay), "--out", str(out)]
    assert plan_entry.main(argv) == 2
    said = capsys.readouterr().err
    assert "nobody/unknown-model's config.json is not available here" in said
    assert "download the model first" in said and "training steps" in said
    assert not out.exists()


def test_t5_small_offline_is_timed_on_its_architecture_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _offline)
    experiment = plan_entry.load_study(REPO, [])
    model_dir, note = model_config_dir(experiment, tmp_path, tmp_path)
    assert json.loads((model_dir / "config.json").read_text())["d_model"] == 512
    assert note is not None and "published architecture, randomly initialised" in note


def _offline(*_args: object, **_kwargs: object) -> None:
    raise OSError("offline: the Hub is not reachable")


@pytest.fixture(scope="module")
def fresh_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[Path], set[Path]]:
    """The plan of the smoke study in a fresh copy of the workflow: (copy, files before, after)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("plan") / "workflow")

    def files() -> set[Path]:
        return {p.relative_to(workdir) for p in workdir.rglob("*") if p.is_file()}

    before = files()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("PYTHONPATH", os.pathsep.join([str(workdir), os.environ.get("PYTHONPATH", "")]))
        assert plan_entry.main(["--configfile", "config/smoke.yaml", "--cores", "2", "--budget", "1h"]) == 0
    return workdir, before, files()


@pytest.mark.slow
def test_the_plan_writes_nothing_but_plan_json(fresh_plan: tuple[Path, set[Path], set[Path]]) -> None:
    workdir, before, after = fresh_plan
    assert after - before == {Path("results/plan.json")}
    assert before <= after
    plan = read_plan(workdir / "results" / "plan.json")
    assert plan.wall_s > 0 and len(plan.jobs) == 16 and plan.budget_s == 3600.0


@pytest.mark.slow
def test_counts_equal_what_the_smoke_study_logged(
    fresh_plan: tuple[Path, set[Path], set[Path]], smoke_run: Path
) -> None:
    """Every training job of the plan (results/plan.json) against what its run logged: steps
    (metrics.csv's last step and summary.json's total), validation passes (one metrics.csv row
    each), budget passes (rows with a budget test loss) and test passes (the final test's draws)."""
    plan = read_plan(fresh_plan[0] / "results" / "plan.json")
    trained = [job for job in plan.jobs if job.rule in TRAINING_RULES]
    assert len(trained) == 10
    assert all((smoke_run / job.output).exists() for job in plan.jobs)  # the same DAG's jobs
    for job in trained:
        run_dir = smoke_run / Path(job.output).parent
        rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
        summary = json.loads((run_dir / "summary.json").read_text())
        assert job.steps == int(rows[-1]["step"]) == summary["learning"]["total_steps"]
        assert job.val_passes == len(rows)
        assert job.budget_passes == sum(1 for row in rows if row["budget_test_loss"] not in ("", "nan"))
        assert job.test_passes == len(summary["test"]["draws"])
