"""The plan checked against the truth (issue 30): each rule's planned seconds beside the measured
ones in results/summary.json's compute block, and the report's words for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow_scripts import collect
from workflow_scripts.planning.plan_file import PlannedJob, StudyPlan, write_plan
from workflow_scripts.reporting.compute_time import benchmark_rule, study_compute
from workflow_scripts.reporting.formatting import ABSENT
from workflow_scripts.reporting.plan_table import plan_sentence, rule_time_rows
from workflow_scripts.reporting.results import StudyCompute

#: One unit's directory (series s, fold 0) in the run, log and benchmark paths.
UNIT = "s/fold0"
TRAIN_BENCH = f"benchmarks/train/{UNIT}/a/seed0.tsv"
PRETRAIN_BENCH = "benchmarks/pretrain/s.tsv"
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def job(name: str, rule: str, output: str, seconds: float) -> PlannedJob:
    return PlannedJob(name, rule, output, 0.0, seconds, 10, 1, 0, 1, {"steps": seconds}, [])


def train_job(seed: int, seconds: float) -> PlannedJob:
    """Arm a's train job of unit (s, 0, seed), named and placed as the plan names and places it."""
    name = f"train[series=s, fold=0, variant=a, seed={seed}]"
    return job(name, "train", f"results/runs/{UNIT}/a/seed{seed}/summary.json", seconds)


def small_plan() -> StudyPlan:
    """pretrain 100 s, two train runs 20 s and 30 s, collect 2 s; 150 s of wall time on 2 cores."""
    jobs = [
        job("pretrain[dataset=s]", "pretrain", "resources/models/m--timeseries--s/manifest.json", 100.0),
        train_job(0, 20.0),
        train_job(1, 30.0),
        job("collect", "collect", "results/summary.json", 2.0),
    ]
    return StudyPlan(["config/config.yaml"], 2, 0, 1, "cpu", 150.0, jobs, [], [], [], {}, 1.0)


def test_benchmark_paths_name_their_rule() -> None:
    assert benchmark_rule(TRAIN_BENCH) == "train"
    assert benchmark_rule(f"/w/benchmarks/tune/{UNIT}/a/x1/seed0.tsv") == "tune_train"
    assert benchmark_rule(PRETRAIN_BENCH) == "pretrain"
    assert benchmark_rule(f"logs/train/{UNIT}/a/seed0.log") is None


def test_each_rule_planned_beside_measured() -> None:
    # seed0 measured 30 s (planned 20), seed1 not measured; pretrain measured 80 s (planned 100).
    measured = {TRAIN_BENCH: 30.0, PRETRAIN_BENCH: 80.0}
    compute = study_compute(small_plan(), measured)
    assert compute.planned_wall_s == 150.0 and compute.plan_cores == 2
    rows = {row.rule: row for row in compute.rules}
    assert [row.rule for row in compute.rules] == ["pretrain", "train", "collect"]
    assert rows["train"].planned_jobs == 2 and rows["train"].planned_s == 50.0
    assert rows["train"].measured_jobs == 1 and rows["train"].measured_s == 30.0
    assert rows["train"].ratio == pytest.approx(1.5)  # 30 s over the 20 s planned for that job alone
    assert rows["pretrain"].ratio == pytest.approx(0.8)
    assert rows["collect"].measured_s is None and rows["collect"].ratio is None


def test_without_a_plan_only_measured_times() -> None:
    compute = study_compute(None, {TRAIN_BENCH: 30.0})
    assert compute.planned_wall_s is None
    rules = [(r.rule, r.planned_jobs, r.measured_s, r.ratio) for r in compute.rules]
    assert rules == [("train", 0, 30.0, None)]
    assert "No plan" in plan_sentence(compute)
    row = rule_time_rows(compute)[0]
    assert (row["planned_jobs"], row["planned_total"], row["measured_total"]) == (ABSENT, ABSENT, "30.0 s")


def test_the_report_says_what_the_plan_estimated() -> None:
    compute = study_compute(small_plan(), {TRAIN_BENCH: 30.0})
    sentence = plan_sentence(compute)
    assert "2.5 min of wall time on 2 cores" in sentence and "train 1.50" in sentence
    row = next(r for r in rule_time_rows(compute) if r["rule"] == "train")
    assert (row["planned_per_job"], row["measured_total"], row["ratio"]) == ("25.0 s", "30.0 s", "1.50")


def test_collect_reads_the_plan_only_if_it_exists(tmp_path: Path) -> None:
    bench = tmp_path / TRAIN_BENCH
    bench.parent.mkdir(parents=True)
    bench.write_text(HEADER + "30.0\t0:00:30\t500\t600\t1\t1\t0\t0\t90\t29\n", encoding="utf-8")
    absent = collect.study_compute_of(tmp_path / "results" / "plan.json", [bench])
    assert absent == StudyCompute(rules=absent.rules) and absent.rules[0].measured_s == 30.0
    write_plan(tmp_path / "results" / "plan.json", small_plan())
    present = collect.study_compute_of(tmp_path / "results" / "plan.json", [bench])
    assert present.planned_wall_s == 150.0
    assert next(r for r in present.rules if r.rule == "train").ratio == pytest.approx(1.5)
