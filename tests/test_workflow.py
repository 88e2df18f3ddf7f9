"""The whole workflow, end to end, through Snakemake itself (the backbone's acceptance)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from components import unavailable
from conftest import REPO, SMOKE_ARGS, job_environment, planned_jobs, run_snakemake

pytestmark = pytest.mark.slow

VARIANTS = ("baseline", "freeze", "frozen_all", "frozen_random", "nofreeze")
SEEDS = (0,)
# The smoke study's series and folds (config/smoke.yaml): every (series, fold, seed) is a unit.
MSFT, SYNTHETIC = "smoke-msft-daily", "smoke-synthetic-h1"
FOLDS = (0, 1)
UNITS = tuple(f"{series}/fold{fold}" for series in (MSFT, SYNTHETIC) for fold in FOLDS)
TRAINS = len(VARIANTS) * len(UNITS) * len(SEEDS)


def contract_paths(workdir: Path) -> list[Path]:
    """Every output the contract promises for the smoke config."""
    model_dirs = list((workdir / "resources" / "models").glob("local--tiny-t5-*"))
    assert len(model_dirs) == 1, model_dirs
    model = model_dirs[0]
    paths = [model / "manifest.json", model / "verification.json"]
    for unit in UNITS:
        data = workdir / "data" / "derived" / unit
        paths += [data / "stats.json", data / "manifest.json"]
        paths.append(workdir / "results" / "reference" / unit / "summary.json")
    for unit, variant, seed in itertools.product(UNITS, VARIANTS, SEEDS):
        run = workdir / "results" / "runs" / unit / variant / f"seed{seed}"
        paths += [run / "metrics.csv", run / "summary.json", run / "best.safetensors"]
        paths.append(workdir / "logs" / "tensorboard" / unit / variant / f"seed{seed}")
        paths.append(workdir / "logs" / "train" / unit / variant / f"seed{seed}.log")
        paths.append(workdir / "benchmarks" / "train" / unit / variant / f"seed{seed}.tsv")
    paths += [
        workdir / "results" / name
        for name in ("metrics.csv", "summary.json", "summary_table.csv", "report.html", "report.md")
    ]
    paths += [
        workdir / "results" / "plots" / f"{name}.png"
        for name in ("budget_curve", "learning_curves", "final_comparison", "compute")
    ]
    for rule in ("download_model", "verify_model", "preprocess", "reference", "collect", "report"):
        assert list((workdir / "logs" / rule).rglob("*.log")), f"no log for rule {rule}"
    return paths


def write_config(workdir: Path, name: str, config: dict) -> str:
    path = workdir / "config" / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return f"config/{name}"


def smoke_config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())


def dry_run(workdir: Path, configfile: str = "config/smoke.yaml") -> list[str]:
    result = run_snakemake(workdir, "-n", "--configfile", configfile, "--cores", "4", "--resources", "gpu=1")
    return planned_jobs(result.stdout + result.stderr)


def only_rules(jobs: list[str]) -> list[str]:
    return sorted(job.split("[")[0] for job in jobs)


# --------------------------------------------------------------------------- 1. static checks


def test_default_config_dry_run_lint_and_format() -> None:
    dry = run_snakemake(REPO, "-n", "--cores", "4")
    assert "train" in dry.stdout
    lint = run_snakemake(REPO, "--lint")
    assert "Congratulations" in lint.stdout + lint.stderr
    fmt = subprocess.run(
        [str(Path(sys.executable).parent / "snakefmt"), "--check", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stderr


def test_rulegraph_renders_without_graphviz() -> None:
    mermaid = run_snakemake(REPO, "--rulegraph", "mermaid-js")
    for rule in ("download_model", "verify_model", "preprocess", "train", "collect", "report", "all"):
        assert rule in mermaid.stdout


def test_rulegraph_renders_to_svg_with_graphviz() -> None:
    if shutil.which("dot") is None:
        unavailable("graphviz", "graphviz (dot) is not installed: apt-get install graphviz")
    graph = run_snakemake(REPO, "--rulegraph")
    svg = subprocess.run(["dot", "-Tsvg"], input=graph.stdout, capture_output=True, text=True, check=True)
    assert svg.stdout.lstrip().startswith(("<?xml", "<svg")) and "verify_model" in svg.stdout


def test_bad_config_fails_at_parse_time_naming_the_key(workflow_copy: Path) -> None:
    config = smoke_config(workflow_copy)
    config["train"]["lerning_rate"] = 0.1
    configfile = write_config(workflow_copy, "typo.yaml", config)
    result = run_snakemake(workflow_copy, "-n", "--configfile", configfile, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "lerning_rate" in output and "did you mean 'learning_rate'" in output


# --------------------------------------------------------------------------- 2. the whole DAG


def test_smoke_run_produces_every_contract_path(smoke_run: Path) -> None:
    missing = [str(path.relative_to(smoke_run)) for path in contract_paths(smoke_run) if not path.exists()]
    assert not missing, missing
    html = (smoke_run / "results" / "report.html").read_text()
    for variant in VARIANTS:
        assert variant in html
    verification = json.loads(
        next((smoke_run / "resources" / "models").glob("*/verification.json")).read_text()
    )
    assert verification["checks"] and all(v == "passed" for v in verification["checks"].values())
    runs = smoke_run / "results" / "runs" / UNITS[0]
    summary = json.loads((runs / "baseline" / "seed0" / "summary.json").read_text())
    pretrained = json.loads((runs / "nofreeze" / "seed0" / "summary.json").read_text())
    assert summary["params_total"] == pretrained["params_total"]
    assert (summary["series"], summary["fold"]) == (MSFT, 0)
    assert list(
        (smoke_run / "logs" / "tensorboard" / UNITS[0] / "baseline" / "seed0").glob("events.out.tfevents.*")
    )
    collected = json.loads((smoke_run / "results" / "summary.json").read_text())
    assert collected["reference"]["test_skill"] is not None  # the learned reference, beside the arms
    assert len(collected["reference"]["cells"]) == len(UNITS)  # pooled over every series and fold
    assert (collected["series"], collected["folds"]) == ([MSFT, SYNTHETIC], 2)
    primary = next(r for r in collected["contrasts"]["results"] if r["role"] == "primary")
    assert primary["n"] == len(UNITS) * len(SEEDS)  # the test runs over every unit
    assert [g["name"] for g in primary["breadth"]["series"]] == [MSFT, SYNTHETIC]
    assert [g["name"] for g in primary["breadth"]["folds"]] == ["fold 0", "fold 1"]
    assert [p["step"] for p in collected["budget"]["contrasts"][0]["points"]] == [4, 8]
    markdown = (smoke_run / "results" / "report.md").read_text()
    assert "### Learned reference" in markdown and "| ridge reference |" in markdown
    assert "is a claim about these 4 units (2 series × 2 folds × 1 seed)" in markdown


def test_complete_run_plans_nothing(smoke_run: Path) -> None:
    assert only_rules(dry_run(smoke_run)) == []


# --------------------------------------------------------------------------- 3. targeted invalidation


def test_one_variant_learning_rate_change_plans_only_that_variant(completed_run: Path) -> None:
    config = smoke_config(completed_run)
    config["variants"]["freeze"]["learning_rate"] = 0.0007
    jobs = dry_run(completed_run, write_config(completed_run, "changed.yaml", config))
    train_jobs = [job for job in jobs if job.startswith("train[")]
    assert len(train_jobs) == len(UNITS) * len(SEEDS), jobs
    assert all("variant=freeze" in job for job in train_jobs), jobs
    assert only_rules(jobs) == sorted(["all", "collect", "report", *["train"] * len(train_jobs)])


def test_reordering_config_keys_plans_nothing(completed_run: Path) -> None:
    config = smoke_config(completed_run)

    def reverse(value):
        if isinstance(value, dict):
            return {key: reverse(value[key]) for key in reversed(list(value))}
        return value

    assert (
        only_rules(dry_run(completed_run, write_config(completed_run, "reordered.yaml", reverse(config))))
        == []
    )


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("workflow_scripts/reporting/plots.py", ["all", "report"]),
        (
            "workflow_scripts/training/running_scores.py",
            ["all", "collect", *["reference"] * len(UNITS), "report", *["train"] * TRAINS],
        ),
        (
            "workflow_scripts/data/resample.py",
            ["all", "collect", *["preprocess", "reference"] * len(UNITS), "report", *["train"] * TRAINS],
        ),
    ],
)
def test_editing_a_helper_module_reruns_exactly_its_consumers(
    completed_run: Path, module: str, expected: list[str]
) -> None:
    path = completed_run / module
    assert path.exists(), f"{module} is not part of the workflow any more; update this test"
    path.write_text(path.read_text() + "\n# edited\n")
    assert only_rules(dry_run(completed_run)) == sorted(expected)


# --------------------------------------------------------------------------- 4. a failing variant


def test_failed_variant_reruns_alone(completed_run: Path) -> None:
    for path in (completed_run / "results").iterdir():
        if path.name != "runs":
            subprocess.run(["rm", "-rf", str(path)], check=True)
    for unit, seed in itertools.product(UNITS, SEEDS):
        subprocess.run(
            ["rm", "-rf", str(completed_run / "results" / "runs" / unit / "baseline" / f"seed{seed}")],
            check=True,
        )
    config = smoke_config(completed_run)
    config["variants"]["baseline"]["inject_failure_at_epoch"] = 1
    failing = write_config(completed_run, "failing.yaml", config)
    result = run_snakemake(
        completed_run, "-k", "--configfile", failing, "--cores", "4", "--resources", "gpu=1", check=False
    )
    assert result.returncode != 0
    log = (completed_run / "logs" / "train" / UNITS[0] / "baseline" / "seed0.log").read_text()
    assert "inject_failure_at_epoch" in log or "injected" in log.lower()
    for unit, variant, seed in itertools.product(UNITS, ("freeze", "frozen_all", "nofreeze"), SEEDS):
        assert (completed_run / "results" / "runs" / unit / variant / f"seed{seed}" / "summary.json").exists()
    assert not (
        completed_run / "results" / "runs" / UNITS[0] / "baseline" / "seed0" / "summary.json"
    ).exists()
    assert not (completed_run / "results" / "report.html").exists()

    jobs = dry_run(completed_run)
    assert only_rules(jobs) == sorted(["all", "collect", "report", *["train"] * (len(UNITS) * len(SEEDS))])
    assert all("variant=baseline" in job for job in jobs if job.startswith("train["))
    run_snakemake(completed_run, *SMOKE_ARGS)
    assert (completed_run / "results" / "report.html").exists()


# --------------------------------------------------------------------------- 4b. one series, one fold


def test_a_change_to_one_series_data_plans_only_that_series_jobs(completed_run: Path) -> None:
    """Replacing one series' file reruns its preprocess, runs and references, and nothing of the
    other series (its training jobs read the changed series' data through ancient())."""
    csv = completed_run / "tests" / "fixtures" / "synthetic-h1.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:-1]))  # one bar fewer: the series' data changed
    jobs = dry_run(completed_run)
    per_fold = ["preprocess", "reference", *["train"] * (len(VARIANTS) * len(SEEDS))]
    assert only_rules(jobs) == sorted(["all", "collect", "report", *per_fold * len(FOLDS)]), jobs
    assert all(SYNTHETIC in job for job in jobs if job.split("[")[0] in ("preprocess", "train", "reference"))


def test_a_change_to_one_fold_plans_only_that_fold_jobs(completed_run: Path) -> None:
    """One fold's derived data made again (--forcerun on it) reruns only that fold's runs and
    reference: the other folds' and series' training jobs read it through ancient()."""
    fold = f"data/derived/{MSFT}/fold1"
    result = run_snakemake(completed_run, "-n", "--forcerun", fold, *SMOKE_ARGS)
    jobs = planned_jobs(result.stdout + result.stderr)
    per_fold = ["preprocess", "reference", *["train"] * (len(VARIANTS) * len(SEEDS))]
    assert only_rules(jobs) == sorted(["all", "collect", "report", *per_fold]), jobs
    assert all(
        f"{MSFT}, fold=1" in job for job in jobs if job.split("[")[0] in ("preprocess", "train", "reference")
    ), jobs


def test_a_bad_file_in_one_series_stops_the_study_before_any_training(workflow_copy: Path) -> None:
    """One series' file has a bar whose high is below its low: its preprocess job fails, naming the
    series and the row, and no training job starts in any series (each waits for every series)."""
    csv = workflow_copy / "tests" / "fixtures" / "synthetic-h1.csv"
    rows = csv.read_text().splitlines()
    header, bad = rows[0].split(","), rows[2001].split(",")
    bad[header.index("high")] = str(float(bad[header.index("low")]) - 1.0)
    rows[2001] = ",".join(bad)
    csv.write_text("\n".join(rows) + "\n")
    result = run_snakemake(workflow_copy, *SMOKE_ARGS, check=False)
    assert result.returncode != 0
    assert (
        not (workflow_copy / "logs" / "train").exists() and not (workflow_copy / "results" / "runs").exists()
    )
    log = (workflow_copy / "logs" / "preprocess" / SYNTHETIC / "fold0.log").read_text()
    assert f"series {SYNTHETIC}" in log and "row 2000" in log, log


# --------------------------------------------------------------------------- 5. CPU jobs side by side

_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3})", re.MULTILINE)


def test_cpu_training_jobs_run_side_by_side(smoke_run: Path) -> None:
    """The smoke study trains on the CPU: its jobs claim no gpu, so --cores 4 runs them at once.

    (GPU jobs never share a slot: test_gpu_slots.py.)
    """
    intervals = []
    for log in sorted((smoke_run / "logs" / "train").rglob("*.log")):
        stamps = _TIMESTAMP.findall(log.read_text())
        assert len(stamps) >= 2, f"{log} has no timestamped start and end"
        start, end = (datetime.fromisoformat(stamp) for stamp in (stamps[0], stamps[-1]))
        intervals.append((start, end, log.name))
        assert "1 CPU threads" in log.read_text(), log
    assert len(intervals) == TRAINS
    overlapping = [
        (a, b) for (s1, e1, a), (s2, e2, b) in itertools.combinations(intervals, 2) if s1 < e2 and s2 < e1
    ]
    assert overlapping, "no two CPU training jobs ran at the same time"


# --------------------------------------------------------------------------- 6. Snakemake's own report


def test_snakemake_report_zip(completed_run: Path) -> None:
    run_snakemake(completed_run, "--configfile", "config/smoke.yaml", "--report", "report.zip")
    assert (completed_run / "report.zip").stat().st_size > 10_000


def test_plain_run_uses_default_profile_gpu_limit(workflow_copy: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", "config/smoke.yaml"],
        cwd=workflow_copy,
        env=job_environment(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "profiles/default" in result.stdout + result.stderr
