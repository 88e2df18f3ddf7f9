"""Learning-rate selection per arm, on validation only (issue 19; workflow_scripts/config/tune.py).

Unit tests of the grid, the selection and the validation-only run, then the DAG: tuning
runs as Snakemake jobs, a tuned arm training at its chosen rates, the report's table, and
a grid change that reruns only what it touches (slow).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.training_support import SplitRecorder, variant, write_synthetic_derived
from workflow_scripts import select_lr
from workflow_scripts.config.base import ConfigError
from workflow_scripts.config.loader import load_experiment
from workflow_scripts.config.tune import point_name, tuning_variant, with_rates


def _summary(seed: int, val_loss: float, test: Any = None) -> dict[str, Any]:
    return {"seed": seed, "final": {"val_loss": val_loss}, "test": test}


def _write(root: Path, point: str, seed: int, summary: dict[str, Any]) -> Path:
    path = root / "baseline" / point / f"seed{seed}" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(summary))
    return path


def test_grid_scales_both_rates_and_the_tuning_budget_applies() -> None:
    experiment = load_experiment(
        {
            "train": {"learning_rate": 0.001, "encoder_learning_rate": 0.0003, "epochs": 8},
            "variants": {"baseline": {"init": "random"}, "nofreeze": {}},
            "tune": {
                "enabled": True,
                "multipliers": [0.3, 1, 3],
                "train": {"epochs": 2},
                "variants": ["baseline"],
            },
        }
    )
    tune = experiment.tune
    assert tune.points == ["x0.3", "x1", "x3"] and experiment.tuned_arms() == ["baseline"]
    arm = tuning_variant(experiment.variants["baseline"], tune, point_name(3.0))
    assert arm.train.learning_rate == pytest.approx(0.003)
    assert arm.train.encoder_learning_rate == pytest.approx(0.0009)
    assert arm.train.epochs == 2 and experiment.variants["baseline"].train.epochs == 8
    chosen = with_rates(
        experiment.variants["baseline"], {"learning_rate": 0.01, "encoder_learning_rate": 0.02}
    )
    assert (chosen.train.learning_rate, chosen.train.encoder_learning_rate, chosen.train.epochs) == (
        0.01,
        0.02,
        8,
    )
    assert "tune" in experiment.to_params()
    assert "tune" not in load_experiment({}).to_params()  # off: the report's params are unchanged


def test_the_aa_arm_trains_at_its_twins_choice_and_is_never_tuned_on_its_own() -> None:
    # Two tunings of the same arm can pick different grid points by noise alone; the A/A
    # pair would then differ in its rates and stop being an A/A control.
    raw: dict[str, Any] = {
        "variants": {
            "baseline": {"init": "random"},
            "baseline_aa": {"init": "random", "init_seed_offset": 1000},
            "nofreeze": {},
        },
        "contrasts": [
            {"a": "nofreeze", "b": "baseline", "role": "primary"},
            {"a": "baseline_aa", "b": "baseline", "role": "negative_control"},
        ],
        "tune": {"enabled": True},
    }
    experiment = load_experiment(raw)
    assert experiment.tuned_arms() == ["baseline", "nofreeze"]
    assert experiment.rate_source("baseline_aa") == "baseline"
    assert experiment.rate_source("nofreeze") == "nofreeze"
    untuned = load_experiment({**raw, "tune": {"enabled": True, "variants": ["nofreeze"]}})
    assert untuned.rate_source("baseline_aa") is None  # its twin untuned: neither is


def test_tuning_seeds_may_not_be_experiment_seeds_and_arms_must_exist() -> None:
    with pytest.raises(ConfigError, match=r"tune.seeds \[1\] are also in seeds"):
        load_experiment({"seeds": [0, 1], "tune": {"enabled": True, "seeds": [1, 7]}})
    with pytest.raises(ConfigError, match=r"tune.variants: 'basline' is not a variant"):
        load_experiment({"tune": {"enabled": True, "variants": ["basline"]}})
    with pytest.raises(ConfigError, match=r"tune.train.learning_rate"):
        load_experiment({"tune": {"enabled": True, "train": {"learning_rate": 0.1}}})
    load_experiment({"seeds": [0, 1], "tune": {"enabled": False, "seeds": [1]}})  # off: not checked


def test_selection_takes_the_lowest_mean_validation_loss_and_never_a_test_result(tmp_path: Path) -> None:
    # x0.5 wins on seed 100 alone, x1 on the mean over both tuning seeds.
    losses = {"x0.5": (0.20, 0.60), "x1": (0.30, 0.35), "x2": (0.50, 0.50)}
    paths = [
        _write(tmp_path, point, seed, _summary(seed, loss))
        for point, pair in losses.items()
        for seed, loss in zip((100, 101), pair, strict=True)
    ]
    arm = variant("baseline", init="random", learning_rate=0.001, encoder_learning_rate=0.0003)
    out = tmp_path / "selected.json"
    argv = ["--variant-json", json.dumps(arm.to_params()), "--out", str(out), "--summaries", *map(str, paths)]
    assert select_lr.main(argv) == 0
    selected = json.loads(out.read_text())
    assert selected["point"] == "x1" and selected["multiplier"] == 1.0
    assert selected["learning_rate"] == pytest.approx(0.001)
    assert selected["encoder_learning_rate"] == pytest.approx(0.0003)
    assert [row["point"] for row in selected["grid"]] == ["x0.5", "x1", "x2"]
    assert selected["grid"][0]["val_losses"] == {"100": 0.2, "101": 0.6}
    assert selected["tuning_seeds"] == [100, 101]
    # A tuning run holding a test result is refused: the selection cannot read test.
    paths[0].write_text(json.dumps(_summary(100, 0.20, test={"skill": 0.9, "loss": 0.01})))
    out.unlink()
    assert select_lr.main(argv) == 1 and not out.exists()
    # Ties go to the earlier grid point; different seeds per point are refused.
    assert select_lr.choose({"x0.5": {1: 0.3}, "x1": {1: 0.3}}) == "x0.5"
    with pytest.raises(select_lr.SelectionError, match="different seeds"):
        select_lr.select(arm.to_params(), [("x1", 1, 0.3), ("x2", 2, 0.3)])


def test_a_tuning_run_never_reads_the_test_split(tmp_path: Path) -> None:
    import torch

    from tests.tiny_models import make_tiny_t5
    from tests.training_support import verified_model
    from workflow_scripts.data.derived import load_derived
    from workflow_scripts.training.build import build_run
    from workflow_scripts.training.identity import RunIdentity
    from workflow_scripts.training.loop import fit

    model = verified_model(make_tiny_t5(tmp_path / "t5"), tmp_path / "model")
    dataset = SplitRecorder(load_derived(write_synthetic_derived(tmp_path / "derived")))
    run = build_run(
        variant("baseline", init="random", epochs=1, steps_per_epoch=2),
        100,
        dataset,
        model,
        patch_len=8,
        device=torch.device("cpu"),
    )
    identity = RunIdentity("c", "m", "d", "k")
    summary = fit(run, tmp_path / "run", tmp_path / "tb", tmp_path / "resume", identity, with_test=False)
    assert dataset.read == {"train", "val"}
    assert summary.test is None and summary.final.val_loss > 0
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.csv", "summary.json"]
    logging.getLogger(__name__).info("tuning run: %s", summary.final)


# --------------------------------------------------------------------------- the DAG (slow)

#: One series and one fold of the smoke study: tuning runs per (series, fold), and one is enough here.
ONE_UNIT = {
    "folds": 1,
    "series": [{"name": "smoke-msft-daily", "path": "embedded", "timeframes": ["d", "w"]}],
}
UNIT = "smoke-msft-daily/fold0"
TUNE = {
    "data": ONE_UNIT,
    "seeds": [0],
    "variants": {
        "freeze": {"enabled": False},
        "frozen_all": {"enabled": False},
        "frozen_random": {"enabled": False},
    },
    "tune": {
        "enabled": True,
        "multipliers": [0.5, 1.0],
        "seeds": [100],
        "variants": ["baseline"],
        "train": {"epochs": 1},
    },
}
ARGS = ("--cores", "2", "--resources", "gpu=2", "--set-threads", "train=1", "tune_train=1")


def _configfiles(workdir: Path, tune: dict[str, Any]) -> tuple[str, ...]:
    (workdir / "config" / "tune.yaml").write_text(yaml.safe_dump(tune, sort_keys=False))
    return ("--configfile", "config/smoke.yaml", "config/tune.yaml")


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import copy_workflow, run_snakemake

    workdir = copy_workflow(tmp_path_factory.mktemp("tune") / "workflow")
    run_snakemake(workdir, *_configfiles(workdir, TUNE), *ARGS, timeout=1200)
    return workdir


@pytest.mark.slow
def test_tuned_arm_trains_at_its_chosen_rates_and_the_report_shows_the_grid(tuned_run: Path) -> None:
    selected = json.loads((tuned_run / "results" / "tune" / UNIT / "baseline" / "selected.json").read_text())
    assert selected["point"] in ("x0.5", "x1") and len(selected["grid"]) == 2
    for point in ("x0.5", "x1"):
        tuning = json.loads(
            (
                tuned_run / "results" / "tune" / UNIT / "baseline" / point / "seed100" / "summary.json"
            ).read_text()
        )
        assert tuning["test"] is None
    assert not (tuned_run / "results" / "tune" / UNIT / "nofreeze").exists()  # not a tuned arm
    log = (tuned_run / "logs" / "train" / UNIT / "baseline" / "seed0.log").read_text()
    assert f"learning_rate {selected['learning_rate']:g}" in log
    report = (tuned_run / "results" / "report.md").read_text()
    assert "Learning rates chosen per arm (validation only)" in report
    assert f"{selected['point']}: learning_rate" in report


@pytest.mark.slow
def test_a_grid_change_reruns_only_the_tuning_and_runs_it_touches(tuned_run: Path) -> None:
    from conftest import planned_jobs, run_snakemake

    changed = json.loads(json.dumps(TUNE))
    changed["tune"]["multipliers"] = [0.5, 1.0, 2.0]
    result = run_snakemake(tuned_run, "-n", *_configfiles(tuned_run, changed), *ARGS)
    jobs = planned_jobs(result.stdout + result.stderr)
    assert sorted(job.split("[")[0] for job in jobs) == sorted(
        ["all", "collect", "report", "select_lr", "train", "tune_train"]
    )
    unit = "series=smoke-msft-daily, fold=0"
    assert [job for job in jobs if job.startswith("tune_train[")] == [
        f"tune_train[{unit}, variant=baseline, point=x2, seed=100]"
    ]
    assert [job for job in jobs if job.startswith("train[")] == [f"train[{unit}, variant=baseline, seed=0]"]
    same = run_snakemake(tuned_run, "-n", *_configfiles(tuned_run, TUNE), *ARGS)
    assert planned_jobs(same.stdout + same.stderr) == []


def test_the_aa_arms_train_jobs_read_the_twins_selection(tmp_path: Path) -> None:
    """A dry run: no tuning job of baseline_aa; its train job reads baseline's selected.json."""
    from conftest import copy_workflow, planned_jobs, run_snakemake

    workdir = copy_workflow(tmp_path / "workflow")
    aa = json.loads(json.dumps(TUNE))
    aa["variants"]["baseline_aa"] = {"enabled": True}
    result = run_snakemake(workdir, "-n", "-p", *_configfiles(workdir, aa), *ARGS)
    output = result.stdout + result.stderr
    jobs = planned_jobs(output)
    assert "train[series=smoke-msft-daily, fold=0, variant=baseline_aa, seed=0]" in jobs
    assert not [job for job in jobs if "variant=baseline_aa" in job and job.startswith("tune_train[")]
    assert f"--rates results/tune/{UNIT}/baseline/selected.json --rates-of baseline" in output
