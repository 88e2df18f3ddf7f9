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
SEEDS = (0, 1)


def contract_paths(workdir: Path) -> list[Path]:
    """Every output the contract promises for the smoke config."""
    smoke = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    model_dirs = list((workdir / "resources" / "models").glob("local--tiny-t5-*"))
    assert len(model_dirs) == 1, model_dirs
    model = model_dirs[0]
    data = workdir / "data" / "derived" / smoke["data"]["name"]
    paths = [
        model / "manifest.json",
        model / "verification.json",
        data / "stats.json",
        data / "manifest.json",
    ]
    for variant in VARIANTS:
        for seed in SEEDS:
            run = workdir / "results" / "runs" / variant / f"seed{seed}"
            paths += [run / "metrics.csv", run / "summary.json", run / "best.safetensors"]
            paths.append(workdir / "logs" / "tensorboard" / variant / f"seed{seed}")
            paths.append(workdir / "logs" / "train" / variant / f"seed{seed}.log")
            paths.append(workdir / "benchmarks" / "train" / variant / f"seed{seed}.tsv")
    paths += [
        workdir / "results" / name
        for name in ("metrics.csv", "summary.json", "summary_table.csv", "report.html", "report.md")
    ]
    paths += [
        workdir / "results" / "plots" / f"{name}.png"
        for name in ("budget_curve", "learning_curves", "final_comparison", "compute")
    ]
    paths.append(workdir / "results" / "reference" / "summary.json")
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
    summary = json.loads((smoke_run / "results" / "runs" / "baseline" / "seed0" / "summary.json").read_text())
    pretrained = json.loads(
        (smoke_run / "results" / "runs" / "nofreeze" / "seed0" / "summary.json").read_text()
    )
    assert summary["params_total"] == pretrained["params_total"]
    assert list((smoke_run / "logs" / "tensorboard" / "baseline" / "seed0").glob("events.out.tfevents.*"))
    collected = json.loads((smoke_run / "results" / "summary.json").read_text())
    assert collected["reference"]["test_skill"] is not None  # the learned reference, beside the arms
    assert [p["step"] for p in collected["budget"]["contrasts"][0]["points"]] == [4, 8]
    markdown = (smoke_run / "results" / "report.md").read_text()
    assert "### Learned reference" in markdown and "| ridge reference |" in markdown


def test_complete_run_plans_nothing(smoke_run: Path) -> None:
    assert only_rules(dry_run(smoke_run)) == []


# --------------------------------------------------------------------------- 3. targeted invalidation


def test_one_variant_learning_rate_change_plans_only_that_variant(completed_run: Path) -> None:
    config = smoke_config(completed_run)
    config["variants"]["freeze"]["learning_rate"] = 0.0007
    jobs = dry_run(completed_run, write_config(completed_run, "changed.yaml", config))
    train_jobs = [job for job in jobs if job.startswith("train[")]
    assert len(train_jobs) == len(SEEDS) and all("variant=freeze" in job for job in train_jobs), jobs
    assert only_rules(jobs) == sorted(["all", "collect", "report", *["train"] * len(SEEDS)])


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
            ["all", "collect", "reference", "report", *["train"] * 10],
        ),
        (
            "workflow_scripts/data/resample.py",
            ["all", "collect", "preprocess", "reference", "report", *["train"] * 10],
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
    for seed in SEEDS:
        subprocess.run(
            ["rm", "-rf", str(completed_run / "results" / "runs" / "baseline" / f"seed{seed}")], check=True
        )
    config = smoke_config(completed_run)
    config["variants"]["baseline"]["inject_failure_at_epoch"] = 1
    failing = write_config(completed_run, "failing.yaml", config)
    result = run_snakemake(
        completed_run, "-k", "--configfile", failing, "--cores", "4", "--resources", "gpu=1", check=False
    )
    assert result.returncode != 0
    log = (completed_run / "logs" / "train" / "baseline" / "seed0.log").read_text()
    assert "inject_failure_at_epoch" in log or "injected" in log.lower()
    for variant in ("freeze", "frozen_all", "nofreeze"):
        for seed in SEEDS:
            assert (completed_run / "results" / "runs" / variant / f"seed{seed}" / "summary.json").exists()
    assert not (completed_run / "results" / "runs" / "baseline" / "seed0" / "summary.json").exists()
    assert not (completed_run / "results" / "report.html").exists()

    jobs = dry_run(completed_run)
    assert only_rules(jobs) == sorted(["all", "collect", "report", *["train"] * len(SEEDS)])
    assert all("variant=baseline" in job for job in jobs if job.startswith("train["))
    run_snakemake(completed_run, *SMOKE_ARGS)
    assert (completed_run / "results" / "report.html").exists()


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
    assert len(intervals) == len(VARIANTS) * len(SEEDS)
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
