"""The controls end to end (issue 14): the DAG with a positive and a negative control.

A smoke-sized study on CPU, deterministic: baseline, nofreeze (the text-pretrained arm),
ts_nofreeze (the positive control, from the pretrain rule) and baseline_aa (the A/A
negative control), on 8 units (the smoke study's MSFT daily series, 2 rolling-origin folds
x 4 seeds) so that the exact sign-flip test over units can reach Holm's α/4
(smallest p = 2/2^8 = 0.0078 <= 0.05/4). The one series is the pretraining's one source:
one pretraining, on its earliest fold. ts_encoder (the encoder-only positive control)
runs beside ts_nofreeze. The pretraining runs 2,000 steps, the fine-tuning
8, and init: timeseries starts from the whole pretrained Stage-1 model (training.new_layers),
so the in-domain advantage is real; the report must detect it, and must not declare the
A/A contrast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow, planned_jobs, run_snakemake

from workflow_scripts.reporting.controls import CONTROL_NAMES

pytestmark = pytest.mark.slow

SERIES = "smoke-msft-daily"
FOLDS = (0, 1)
SEEDS = list(range(4))
UNITS = len(FOLDS) * len(SEEDS)
CONTROLS = {
    "data": {
        "folds": len(FOLDS),
        "series": [{"name": SERIES, "path": "embedded", "timeframes": ["d", "w"]}],
    },
    "seeds": SEEDS,
    "variants": {
        "freeze": {"enabled": False},
        "frozen_all": {"enabled": False},
        "frozen_random": {"enabled": False},
        "ts_nofreeze": {"enabled": True, "init": "timeseries", "freeze_epochs": 0},
        "ts_encoder": {"enabled": True, "init": "timeseries_encoder", "freeze_epochs": 0},
        "baseline_aa": {"enabled": True, "init": "random", "freeze_epochs": 0, "init_seed_offset": 1000},
    },
    "contrasts": [
        {"a": "nofreeze", "b": "baseline", "role": "primary", "label": "transfer effect"},
        {"a": "ts_nofreeze", "b": "baseline", "role": "positive_control", "label": "positive control"},
        {"a": "ts_encoder", "b": "baseline", "role": "encoder_control", "label": "encoder-only control"},
        {"a": "baseline_aa", "b": "baseline", "role": "negative_control", "label": "negative control (A/A)"},
    ],
    "pretrain": {
        "enabled": True,
        "seed": 99991,
        "source_fraction": 0.8,
        "train": {
            "epochs": 20,
            "steps_per_epoch": 100,
            "batch_size": 32,
            "warmup_steps": 10,
            "learning_rate": 0.001,
            "encoder_learning_rate": 0.001,
        },
    },
}
# Two single-threaded jobs at once on 2 cores: every job is mostly Python start-up.
ARGS = ("--cores", "2", "--resources", "gpu=2", "--set-threads", "train=1", "pretrain=1")


def configfiles(workdir: Path, controls: dict) -> tuple[str, ...]:
    (workdir / "config" / "controls.yaml").write_text(yaml.safe_dump(controls, sort_keys=False))
    return ("--configfile", "config/smoke.yaml", "config/controls.yaml")


@pytest.fixture(scope="module")
def controls_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("controls") / "workflow")
    run_snakemake(workdir, *configfiles(workdir, CONTROLS), *ARGS, timeout=1500)
    return workdir


def test_report_detects_the_positive_control(controls_run: Path) -> None:
    report = (controls_run / "results" / "report.md").read_text()
    assert f"{CONTROL_NAMES['positive_control']}: detected — ts_nofreeze beats baseline" in report
    assert "could not detect a known effect" not in report
    # The encoder-only control is reported beside it; the ratio divides by it, or is withheld.
    assert f"{CONTROL_NAMES['encoder_control']}:" in report
    assert "(nofreeze − baseline) / (ts_encoder − baseline)" in report
    summary = json.loads((controls_run / "results" / "summary.json").read_text())
    row = next(
        r
        for r in summary["contrasts"]["results"]
        if r["role"] == "positive_control" and r["metric"] == "test_skill"
    )
    assert row["significant"] and row["favours"] == "a" and row["holm_family_size"] == 4
    assert row["n"] == UNITS  # the test runs over every (series, fold, seed)
    runs = controls_run / "results" / "runs" / SERIES
    for fold in FOLDS:
        ts = json.loads((runs / f"fold{fold}" / "ts_nofreeze" / "seed0" / "summary.json").read_text())
        base = json.loads((runs / f"fold{fold}" / "baseline" / "seed0" / "summary.json").read_text())
        assert ts["params_total"] == base["params_total"]  # identical architecture and size


def test_report_does_not_declare_the_negative_control(controls_run: Path) -> None:
    report = (controls_run / "results" / "report.md").read_text()
    assert "Negative control: no difference declared between baseline_aa and baseline" in report
    assert "FALSE ALARM" not in report
    assert "baseline_aa is better than baseline" not in report
    assert "baseline is better than baseline_aa" not in report


def test_pretrained_encoder_is_verified_and_its_manifest_complete(controls_run: Path) -> None:
    # One pretraining: resources/models/<model>--timeseries--<source dataset>.
    ts_dirs = list((controls_run / "resources" / "models").glob("*--timeseries*"))
    assert [path.name.rpartition("--timeseries--")[2] for path in ts_dirs] == [SERIES], ts_dirs
    ts_dir = ts_dirs[0]
    verification = json.loads((ts_dir / "verification.json").read_text())
    assert verification["source"] == "pretrain"
    assert all(status == "passed" for status in verification["checks"].values())
    manifest = json.loads((ts_dir / "manifest.json").read_text())
    assert manifest["pretrain"]["steps"] == 2000 and len(manifest["pretrain"]["loss_curve"]) == 20
    layers = manifest["pretrain"]["stage1_layers"]
    assert layers["path"] == "stage1_layers.safetensors" and (ts_dir / layers["path"]).is_file()


def test_changing_pretrain_settings_reruns_only_the_control(controls_run: Path) -> None:
    changed = json.loads(json.dumps(CONTROLS))
    changed["pretrain"]["seed"] = 99989
    result = run_snakemake(controls_run, "-n", *configfiles(controls_run, changed), *ARGS)
    jobs = planned_jobs(result.stdout + result.stderr)
    rules = sorted(job.split("[")[0] for job in jobs)
    assert rules == sorted(["all", "collect", "pretrain", "report", "verify_model", *["train"] * 2 * UNITS])
    assert f"pretrain[dataset={SERIES}]" in jobs
    assert all("variant=ts_" in job for job in jobs if job.startswith("train["))
    assert {job for job in jobs if job.startswith("train[")} == {
        f"train[series={SERIES}, fold={fold}, variant={variant}, seed={seed}]"
        for fold in FOLDS
        for variant in ("ts_nofreeze", "ts_encoder")
        for seed in SEEDS
    }
    # Unchanged settings plan nothing at all.
    same = run_snakemake(controls_run, "-n", *configfiles(controls_run, CONTROLS), *ARGS)
    assert planned_jobs(same.stdout + same.stderr) == []
