"""Render the study's report: results/report.html (self-contained), report.md and the plots.

Entry point of the ``report`` rule::

    python -m workflow_scripts.report --summary results/summary.json --tidy-metrics results/metrics.csv
        --experiment-json '<canonical ExperimentConfig JSON>' --verification V --data-manifests M...
        --out-html results/report.html --out-md results/report.md --plots-dir results/plots

Everything is rendered in memory first and written only when complete, each file
atomically, so a failure never leaves a report that mixes old and new results.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from workflow_scripts.jobs.cli import InputError
from workflow_scripts.jobs.io_utils import atomic_write_bytes, atomic_write_text
from workflow_scripts.jobs.logs import setup_logging
from workflow_scripts.jobs.typed_json import ResultFormatError
from workflow_scripts.reporting.aggregate import variant_order
from workflow_scripts.reporting.document import build_report
from workflow_scripts.reporting.planned import planned_variants
from workflow_scripts.reporting.provenance import git_state, package_versions, provenance
from workflow_scripts.reporting.results import StudyResult, read_study

TIDY_COLUMNS = ("variant", "seed", "epoch", "val_loss", "val_correlation")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.report",
        description="Render the HTML and Markdown report and its plots from the collected results.",
    )
    parser.add_argument("--summary", type=Path, required=True, help="results/summary.json from collect")
    parser.add_argument(
        "--tidy-metrics",
        type=Path,
        required=True,
        help="results/metrics.csv from collect: every run's epochs",
    )
    parser.add_argument("--experiment-json", required=True, help="canonical ExperimentConfig JSON")
    parser.add_argument("--verification", type=Path, required=True, help="the model's verification.json")
    parser.add_argument(
        "--data-manifests",
        type=Path,
        nargs="+",
        required=True,
        help="the manifest.json of every series' derived folds",
    )
    parser.add_argument("--out-html", type=Path, required=True)
    parser.add_argument("--out-md", type=Path, required=True)
    parser.add_argument("--plots-dir", type=Path, required=True)
    parser.add_argument(
        "--tuning", type=Path, nargs="*", default=[], help="select_lr's selected.json of each tuned arm"
    )
    return parser.parse_args(argv)


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``, or an :class:`InputError` that names the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: {what} not found.") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {what} is not readable JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: {what} must be a JSON object, got {type(data).__name__}.")
    return data


def parse_experiment(text: str) -> dict[str, Any]:
    """The ``--experiment-json`` argument, checked for the keys the report reads."""
    try:
        experiment = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--experiment-json: not valid JSON ({exc}).") from exc
    if not isinstance(experiment, dict):
        raise InputError("--experiment-json: must be a JSON object (the canonical ExperimentConfig).")
    for key, kind in (("variants", dict), ("seeds", list), ("train", dict)):
        if not isinstance(experiment.get(key), kind):
            raise InputError(f"--experiment-json: key '{key}' is missing or not a {kind.__name__}.")
    for name, spec in experiment["variants"].items():
        if not isinstance(spec, dict):
            raise InputError(f"--experiment-json: key 'variants.{name}' must be an object.")
    return experiment


def read_collected(path: Path) -> StudyResult:
    """results/summary.json as the typed study; an :class:`InputError` naming the file and key."""
    try:
        return read_study(path)
    except ResultFormatError as exc:
        raise InputError(f"{exc} (the collected summary)") from exc


def read_tidy_metrics(path: Path) -> pd.DataFrame:
    """results/metrics.csv, checked for the columns the curves and tables need."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: tidy metrics file not found.") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable metrics CSV ({exc}).") from exc
    missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; rerun collect.")
    frame["variant"] = frame["variant"].astype(str)
    return frame


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = setup_logging("workflow_scripts.report")
    try:
        experiment = parse_experiment(args.experiment_json)
        study = read_collected(args.summary)
        metrics = read_tidy_metrics(args.tidy_metrics)
        verification = read_json_object(args.verification, "model verification record")
        manifests = [read_json_object(path, "data manifest") for path in args.data_manifests]
        tuning = [read_json_object(path, "learning-rate selection") for path in args.tuning]
    except InputError as exc:
        log.error("report: cannot read its inputs. %s", exc)
        return 2
    variants = variant_order([*planned_variants(experiment), *study.variants])
    prov = provenance(
        experiment,
        verification,
        manifests,
        study,
        git=git_state(Path.cwd()),
        versions=package_versions(),
        data_dirs=[path.parent.as_posix() for path in args.data_manifests],
        model_dir=args.verification.parent.as_posix(),
        variants=variants,
    )
    rendered = build_report(
        study,
        metrics,
        experiment,
        prov,
        md_dir=str(args.out_md.parent),
        plots_dir=str(args.plots_dir),
        tuning=tuning,
    )
    for name, png in rendered.plots.items():
        atomic_write_bytes(args.plots_dir / name, png)
    atomic_write_text(args.out_md, rendered.markdown)
    atomic_write_text(args.out_html, rendered.html)
    log.info(
        "wrote %s, %s and %d plot(s) in %s", args.out_html, args.out_md, len(rendered.plots), args.plots_dir
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
