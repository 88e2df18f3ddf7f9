"""Two pretrained encoders and their random twins, end to end through Snakemake (issue 28).

The smoke study with config/smoke_models.yaml over it: the committed tiny T5 (text) and a tiny
Chronos-Bolt replica (tests/fixtures/tiny-chronos-bolt), each beside its random twin, on one
series, one fold and two seeds. The report must show the pairwise contrasts; a change to one
model's revision must plan only that model's jobs and its arms.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow, planned_jobs, run_snakemake

pytestmark = pytest.mark.slow

CONFIGS = ("--configfile", "config/smoke.yaml", "config/smoke_models.yaml")
RUN = (*CONFIGS, "--cores", "2", "--resources", "gpu=1")
UNIT = "smoke-msft-daily/fold0"


@pytest.fixture(scope="module")
def models_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("models") / "workflow")
    run_snakemake(workdir, *RUN)
    return workdir


def test_both_encoders_are_verified_once_each_and_every_arm_trains_from_its_own(models_run: Path) -> None:
    models = sorted(path.name for path in (models_run / "resources" / "models").iterdir())
    assert [name.rsplit("-", 1)[0] for name in models] == ["local--tiny-chronos-bolt", "local--tiny-t5"]
    assert all((models_run / "resources" / "models" / name / "verification.json").exists() for name in models)
    log = (models_run / "logs" / "train" / UNIT / "bolt_nofreeze" / "seed0.log").read_text()
    assert "local--tiny-chronos-bolt" in log and "(chronos_bolt)" in log
    text_log = (models_run / "logs" / "train" / UNIT / "nofreeze" / "seed0.log").read_text()
    assert "chronos" not in text_log
    # every arm's patch embeddings at the study model's scale (train --scale-model-dir)
    scales = {
        arm: json.loads(
            (models_run / "results" / "runs" / UNIT / arm / "seed0" / "summary.json").read_text()
        )["embedding_scale"]
        for arm in ("nofreeze", "baseline", "bolt_nofreeze", "bolt_baseline")
    }
    assert len(set(scales.values())) == 1, scales


def test_the_report_shows_each_encoder_against_its_twin_and_text_against_it(models_run: Path) -> None:
    summary = json.loads((models_run / "results" / "summary.json").read_text())
    rows = {(r["a"], r["b"], r["role"]) for r in summary["contrasts"]["results"]}
    assert ("bolt_nofreeze", "bolt_baseline", "pretraining") in rows
    assert ("nofreeze", "bolt_nofreeze", "pretraining") in rows
    assert ("nofreeze", "baseline", "primary") in rows
    curves = {(c["a"], c["b"]) for c in summary["budget"]["contrasts"]}
    assert {("bolt_nofreeze", "bolt_baseline"), ("nofreeze", "bolt_nofreeze")} <= curves
    report = (models_run / "results" / "report.md").read_text()
    assert "Which pretraining helps" in report
    assert "chronos_bolt pretraining: bolt_nofreeze vs its random twin bolt_baseline:" in report
    assert "text vs chronos_bolt pretraining: nofreeze vs bolt_nofreeze:" in report
    table = report[report.index("Which pretraining helps") :].split("\n\n")[1]
    assert "| text | nofreeze − baseline |" in table
    assert "| chronos_bolt | bolt_nofreeze − bolt_baseline |" in table
    assert "| text vs chronos_bolt | nofreeze − bolt_nofreeze |" in table
    html = (models_run / "results" / "report.html").read_text()
    assert 'id="which-pretraining"' in html


def test_a_change_to_one_models_revision_plans_only_its_jobs_and_arms(
    models_run: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "copy"
    shutil.copytree(models_run, workdir, symlinks=True)
    assert planned_jobs(run_snakemake(workdir, "-n", *RUN).stdout) == []
    overlay = workdir / "config" / "bolt_revision.yaml"
    overlay.write_text(yaml.safe_dump({"models": {"chronos_bolt": {"revision": "v2"}}}))
    dry = run_snakemake(
        workdir, "-n", *CONFIGS, "config/bolt_revision.yaml", "--cores", "2", "--resources", "gpu=1"
    )
    jobs = planned_jobs(dry.stdout)
    slug = "local--tiny-chronos-bolt-"
    downloads = [job for job in jobs if job.startswith(("download_model", "verify_model"))]
    assert len(downloads) == 2 and all(slug in job and job.endswith("--v2]") for job in downloads)
    trains = sorted(job for job in jobs if job.startswith("train"))
    assert trains == sorted(
        f"train[series=smoke-msft-daily, fold=0, variant={arm}, seed={seed}]"
        for arm in ("bolt_baseline", "bolt_nofreeze")
        for seed in (0, 1)
    )
    assert sorted(
        job.split("[")[0] for job in jobs if not job.startswith(("download", "verify", "train"))
    ) == [
        "all",
        "collect",
        "report",
    ]
