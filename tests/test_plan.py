"""The study's plan (issue 30): counts against a finished smoke study, the schedule against hand
computations, a budget too small for one run, a plan that writes nothing but plan.json, and the
plan's jobs against Snakemake's own DAG for several series and folds (issue 32)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import huggingface_hub
import pytest
from conftest import REPO, copy_workflow, run_snakemake

from workflow_scripts import plan as plan_entry
from workflow_scripts import progress
from workflow_scripts.config.base import VariantConfig
from workflow_scripts.config.experiment import ExperimentConfig
from workflow_scripts.data.derived import DerivedDataset
from workflow_scripts.data.embedded import load_embedded
from workflow_scripts.planning.advice import advice
from workflow_scripts.planning.costs import FixedCosts, ShapeCost
from workflow_scripts.planning.estimate import estimate, largest_parts
from workflow_scripts.planning.measure import model_config_dir
from workflow_scripts.planning.plan_file import PlannedJob, StudyPlan, read_plan, write_plan
from workflow_scripts.planning.schedule import Slots
from workflow_scripts.planning.status import job_files
from workflow_scripts.planning.work import TRAINING_RULES, JobWork, Shape, pretrained, study_jobs
from workflow_scripts.training.steplog import Progress

SHAPE = Shape("m", 32, 8, 2, 16, 64, "fp32", "cpu", "per_timeframe", "reconstruct")
#: Injected costs: 0.1 s per step, nothing else (no start-up, no passes).
STEP = {SHAPE.key: ShapeCost(step_s=0.1, frozen_step_s=0.1, val_pass_s=0.0, test_pass_s=0.0, build_s=0.0)}
NO_FIXED = FixedCosts(import_s={}, work_s={}, job_overhead_s=0.0)
PRETRAINED = pretrained("src")
BENCHMARK = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
CPU = dict.fromkeys(("auto", "cpu", "cuda", "mps"), False)


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
    assert largest_parts(result)[-1] == (
        "2 jobs of the arms that start from the pretraining wait for it: it is verified at 10 s"
    )


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
    jobs = {job.name: job for job in study_jobs(experiment, CPU)}
    (series,) = experiment.series_names
    verified = pretrained(series)
    assert jobs[verified].after == (f"pretrain {series}",)
    assert jobs[verified].output.endswith(f"--timeseries--{series}/verification.json")
    waiting = [job for job in jobs.values() if verified in job.after]
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
    smoke = plan_entry.load_study(REPO, [str(REPO / "config" / "smoke.yaml")])
    units = len(smoke.series) * smoke.folds  # each with a preprocess and (OHLC bars) a reference
    jobs = 2 + units * (2 + len(smoke.variants) * len(smoke.seeds)) + 2  # model, units, collect, report
    assert plan.wall_s > 0 and len(plan.jobs) == jobs and plan.budget_s == 3600.0


@pytest.mark.slow
def test_counts_equal_what_the_smoke_study_logged(
    fresh_plan: tuple[Path, set[Path], set[Path]], smoke_run: Path
) -> None:
    """Every training job of the plan (results/plan.json) against what its run logged: steps
    (metrics.csv's last step and summary.json's total), validation passes (one metrics.csv row
    each), budget passes (rows with a budget test loss) and test passes (the final test's draws)."""
    plan = read_plan(fresh_plan[0] / "results" / "plan.json")
    trained = [job for job in plan.jobs if job.rule in TRAINING_RULES]
    smoke = plan_entry.load_study(REPO, [str(REPO / "config" / "smoke.yaml")])
    assert len(trained) == len(smoke.series) * smoke.folds * len(smoke.variants) * len(smoke.seeds)
    assert all((smoke_run / job.output).exists() for job in plan.jobs)  # the same DAG's jobs
    for job in trained:
        run_dir = smoke_run / Path(job.output).parent
        rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
        summary = json.loads((run_dir / "summary.json").read_text())
        assert job.steps == int(rows[-1]["step"]) == summary["learning"]["total_steps"]
        assert job.val_passes == len(rows)
        assert job.budget_passes == sum(1 for row in rows if row["budget_test_loss"] not in ("", "nan"))
        assert job.test_passes == len(summary["test"]["draws"])


# Several series and folds (issue 32): the paired unit is (series, fold, seed).
TWO_SERIES = """
data:
  folds: 2
  series:
    - {name: a, path: embedded}
    - {name: b, path: b.csv}
"""
#: the positive control (one pretraining per series) and tuning on every (series, fold)
CONTROLS = (
    TWO_SERIES
    + """
variants:
  ts_nofreeze: {enabled: true}
tune: {enabled: true, multipliers: [0.5, 1.0], seeds: [1000], variants: [baseline, ts_nofreeze]}
"""
)
#: one pretraining on pretrain.data, a dataset that is not a series, for both series
SHARED_PRETRAINING = (
    TWO_SERIES
    + """
variants:
  ts_nofreeze: {enabled: true}
pretrain:
  data: {name: src, path: b.csv, timeframes: [d, w], seq_len: 32, patch_len: 8, sample_stride: 4}
"""
)
#: a second pretrained encoder (issue 28): its own download and verification, its arms (one tuned)
#: after it, the text arms after the study's model
MODELS = (
    TWO_SERIES
    + """
models:
  chronos_bolt: {name_or_path: ./tests/fixtures/tiny-chronos-bolt}
variants:
  bolt_nofreeze: {enabled: true}
  bolt_baseline: {enabled: true}
tune: {enabled: true, multipliers: [1.0], seeds: [1000], variants: [bolt_baseline]}
"""
)
OVERLAYS = {
    "two_series": TWO_SERIES,
    "controls": CONTROLS,
    "shared_pretraining": SHARED_PRETRAINING,
    "models": MODELS,
}


def smoke_with(tmp_path: Path, overlay: str) -> ExperimentConfig:
    path = tmp_path / "overlay.yaml"
    path.write_text(overlay, encoding="utf-8")
    return plan_entry.load_study(REPO, [str(REPO / "config" / "smoke.yaml"), str(path)])


def of_rule(jobs: list[JobWork], rule: str) -> list[JobWork]:
    return [job for job in jobs if job.rule == rule]


def test_two_series_two_folds_plan_every_unit(tmp_path: Path) -> None:
    experiment = smoke_with(tmp_path, CONTROLS)
    jobs = study_jobs(experiment, CPU)
    arms, seeds, slug = experiment.variant_names, experiment.seeds, experiment.model.slug
    assert len({job.name for job in jobs}) == len(jobs)
    trains = of_rule(jobs, "train")
    assert len(trains) == 2 * 2 * len(arms) * len(seeds)
    assert sorted(job.output for job in trains) == sorted(
        f"results/runs/{series}/fold{fold}/{arm}/seed{seed}/summary.json"
        for series in "ab"
        for fold in (0, 1)
        for arm in arms
        for seed in seeds
    )
    assert "train b fold1 baseline seed0" in {job.name for job in trains}
    units = [f"{series}/fold{fold}" for series in "ab" for fold in (0, 1)]
    assert [job.output for job in of_rule(jobs, "preprocess")] == [f"data/derived/{u}" for u in units]
    assert [job.output for job in of_rule(jobs, "reference")] == [
        f"results/reference/{u}/summary.json" for u in units
    ]
    assert [job.output for job in of_rule(jobs, "pretrain")] == [
        f"resources/models/{slug}--timeseries--{series}/manifest.json" for series in "ab"
    ]
    every = {job.name for job in of_rule(jobs, "preprocess")}
    for job in trains + of_rule(jobs, "tune_train") + of_rule(jobs, "pretrain"):
        assert every <= set(job.after), job.name
    for job in of_rule(jobs, "train") + of_rule(jobs, "tune_train"):
        series, fold = job.output.split("/")[2:4]
        waits = {name for name in job.after if name.startswith("verify_model timeseries")}
        assert waits == ({pretrained(series)} if job.variant == "ts_nofreeze" else set()), job.name
        if job.rule == "train" and job.variant in ("baseline", "ts_nofreeze"):
            assert f"select_lr {series} {fold} {job.variant}" in job.after
    selects = of_rule(jobs, "select_lr")
    assert len(selects) == 2 * 2 * 2 and len(of_rule(jobs, "tune_train")) == 2 * 2 * 2 * 2
    assert set(jobs[-1].after) == {"collect", *(job.name for job in selects)}


def test_one_pretraining_when_pretrain_data_is_set(tmp_path: Path) -> None:
    jobs = study_jobs(smoke_with(tmp_path, SHARED_PRETRAINING), CPU)
    (pretrain,) = of_rule(jobs, "pretrain")
    assert pretrain.name == "pretrain src" and pretrain.dataset == "src"
    preprocess = [job.name for job in of_rule(jobs, "preprocess")]
    assert len(preprocess) == 5 and "preprocess src fold0" in preprocess
    assert set(preprocess) <= set(pretrain.after)
    ts_runs = [job for job in of_rule(jobs, "train") if job.variant == "ts_nofreeze"]
    assert len(ts_runs) == 4 and all(pretrained("src") in job.after for job in ts_runs)
    assert not any("preprocess src fold0" in job.after for job in of_rule(jobs, "train"))


def test_each_shape_is_measured_on_a_series_that_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Series with other timeframes are other shapes; each is timed on its own series' fold 0,
    and series of one shape share a measurement."""
    from workflow_scripts.planning import measure

    load_embedded().frame.to_csv(tmp_path / "three.csv")
    overlay = (
        "data:\n  folds: 2\n  series:\n"
        "    - {name: one, path: embedded, timeframes: [d]}\n"
        "    - {name: two, path: embedded, timeframes: [d, w]}\n"
        f"    - {{name: three, path: {tmp_path / 'three.csv'}, timeframes: [d, w]}}\n"
        "variants: {freeze: {enabled: false}, nofreeze: {enabled: false}, frozen_all: {enabled: false}}\n"
    )
    experiment = smoke_with(tmp_path, overlay)
    jobs = study_jobs(experiment, CPU)
    trains = of_rule(jobs, "train")
    assert {job.dataset: job.shape.n_timeframes for job in trains if job.shape} == {
        "one": 1,
        "two": 2,
        "three": 2,
    }
    timed: list[tuple[str, int]] = []

    def fake_measure(variant: VariantConfig, dataset: DerivedDataset, *_args: object) -> ShapeCost:
        timed.append((dataset.root.parent.name, len(dataset.manifest["timeframes"])))
        return ShapeCost(0.1, 0.1, 1.0, 1.0, 1.0)

    monkeypatch.setattr(measure, "measure_shape", fake_measure)
    monkeypatch.setattr(measure, "model_config_dir", lambda *_a: (tmp_path, None))
    measured = measure.measure_shapes(experiment, jobs, dict(experiment.variants), tmp_path)
    assert sorted(timed) == [("one", 1), ("two", 2)]
    assert set(measured.shapes) == {job.shape.key for job in trains if job.shape}
    assert measured.preprocess_s > 0


def test_progress_reads_the_new_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """progress against a two-series plan: a finished run (its benchmark calibrates the rest) and
    a running one (its log under logs/train/<series>/fold<f>/), the rest waiting."""
    jobs = [
        dataclasses.replace(planned(job), parts={"steps": 10.0})
        for job in study_jobs(smoke_with(tmp_path, TWO_SERIES), CPU)
    ]
    plan = StudyPlan(["config/config.yaml"], 2, 0, 1, "cpu", 100.0, jobs, [], [], [], {}, 1.0)
    write_plan(tmp_path / "results" / "plan.json", plan)
    done = tmp_path / "results/runs/a/fold0/baseline/seed0/summary.json"
    done.parent.mkdir(parents=True)
    done.write_text("{}", encoding="utf-8")
    bench = tmp_path / "benchmarks/train/a/fold0/baseline/seed0.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text(BENCHMARK + "20.0\t0:00:20\t500\t600\t1\t1\t0\t0\t90\t19\n", encoding="utf-8")
    log = tmp_path / "logs/train/b/fold1/freeze/seed0.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026-01-01T00:00:00 INFO start\nx progress: step 2/8 (25%)\n", encoding="utf-8")
    assert progress.main(["--plan", str(tmp_path / "results" / "plan.json"), "--workdir", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert f"jobs: 1 done, 1 running, {len(jobs) - 2} waiting (of {len(jobs)} planned)" in said
    assert "train b fold1 freeze seed0: step 2/8 (25%)" in said
    assert "took 2.00x their planned time" in said


def planned(job: JobWork) -> PlannedJob:
    return PlannedJob(job.name, job.rule, job.output, 0.0, 0.0, 0, 0, 0, 0, {}, list(job.after))


@pytest.fixture(scope="module")
def dag_workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the workflow with the overlays and series b's CSV (the embedded bars)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("dag") / "workflow")
    load_embedded().frame.to_csv(workdir / "b.csv")
    for name, overlay in OVERLAYS.items():
        (workdir / f"{name}.yaml").write_text(overlay, encoding="utf-8")
    return workdir


_RULE = re.compile(r"^(?:local)?rule (\w+):$")
_FIELD = re.compile(r"^    (input|output|log|benchmark): (.*)$")


def dry_run_jobs(output: str) -> list[tuple[str, dict[str, list[str]]]]:
    """The jobs of ``snakemake -n``'s output but ``all``: (rule, {input, output, log, benchmark})."""
    jobs: list[tuple[str, dict[str, list[str]]]] = []
    for line in output.splitlines():
        header, field = _RULE.match(line), _FIELD.match(line)
        if header:
            jobs.append((header.group(1), {}))
        elif field and jobs:
            jobs[-1][1][field.group(1)] = field.group(2).split(", ")
    return [job for job in jobs if job[0] != "all"]


def ancestors(after: dict[int, set[int]]) -> dict[int, set[int]]:
    """Every job's transitive dependencies."""
    found: dict[int, set[int]] = {}

    def visit(node: int) -> set[int]:
        if node not in found:
            found[node] = set()
            for parent in after[node]:
                found[node] |= {parent} | visit(parent)
        return found[node]

    for node in after:
        visit(node)
    return found


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_plan_is_snakemakes_dag(dag_workflow: Path, overlay: str) -> None:
    """The planned jobs are exactly the DAG's (each one job of its rule with the planned output among
    its outputs, every DAG job planned), with the same dependencies (transitively), and each
    training job's log and benchmark are where its rule writes them."""
    configs = ["config/smoke.yaml", f"{overlay}.yaml"]
    dry = run_snakemake(dag_workflow, "-n", "--configfile", *configs, "--cores", "4", "--resources", "gpu=1")
    dag = dry_run_jobs(dry.stdout)
    experiment = plan_entry.load_study(dag_workflow, [str(dag_workflow / config) for config in configs])
    jobs = study_jobs(experiment, CPU)
    match: dict[str, int] = {}
    for job in jobs:
        found = [
            i for i, (rule, fields) in enumerate(dag) if rule == job.rule and job.output in fields["output"]
        ]
        assert len(found) == 1, f"{job.name} ({job.output}): {len(found)} DAG jobs"
        match[job.name] = found[0]
    assert sorted(match.values()) == list(range(len(dag)))
    trains = sorted(fields["output"][1] for rule, fields in dag if rule == "train")
    assert trains == sorted(job.output for job in of_rule(jobs, "train"))
    assert len(trains) == 2 * 2 * len(experiment.variants) * len(experiment.seeds)
    producer = {out: i for i, (_rule, fields) in enumerate(dag) for out in fields["output"]}
    dag_after = {
        i: {producer[path] for path in fields.get("input", []) if path in producer}
        for i, (_rule, fields) in enumerate(dag)
    }
    plan_after = {match[job.name]: {match[name] for name in job.after} for job in jobs}
    assert ancestors(plan_after) == ancestors(dag_after)
    for job in jobs:
        if job.rule in TRAINING_RULES:
            fields = dag[match[job.name]][1]
            assert job_files(planned(job)) == (fields["log"][0], fields["benchmark"][0])
