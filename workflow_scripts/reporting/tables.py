"""Rows of the report's tables, built from summary.json, metrics.csv and the experiment.

Each function returns plain dicts of already formatted strings, so the HTML and Markdown
templates stay free of logic and both show exactly the same numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from workflow_scripts.reporting.aggregate import variant_order
from workflow_scripts.reporting.formatting import (
    ABSENT,
    fmt_int,
    fmt_interval,
    fmt_mean_ci,
    fmt_p,
    fmt_seconds,
    fmt_value,
)
from workflow_scripts.reporting.measures import CONTRAST_METRICS, METRICS, NEVER
from workflow_scripts.reporting.planned import planned_variants
from workflow_scripts.reporting.results import ArmResult, StudyResult
from workflow_scripts.reporting.runs import OK_STATUSES
from workflow_scripts.reporting.stats import describe
from workflow_scripts.reporting.uninformative import split_contrasts
from workflow_scripts.reporting.units import Unit

CONVERGENCE_EPOCHS = (1, 3, 5)
VARIANT_KEYS = ("init", "encoder", "freeze_epochs", "trainable_while_frozen", "small_encoder")
#: the per-variant columns of the results table, in measures' order (the primary metric first)
RESULT_METRICS = tuple(name for name, spec in METRICS.items() if spec.in_results_table)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def settings_table(experiment: Mapping[str, Any]) -> dict[str, Any]:
    """Effective configuration per variant: rows are keys, columns are variants.

    Train keys whose value differs from the global ``train:`` section are flagged, which
    is where a reader looks first ("what is different about this variant?").
    """
    names = planned_variants(experiment)
    variants = experiment.get("variants") or {}
    global_train = experiment.get("train") or {}
    rows = []
    for key in VARIANT_KEYS:
        values = [_plain(variants[n].get(key)) if key in variants[n] else ABSENT for n in names]
        rows.append({"key": key, "global": "", "cells": [{"text": v, "differs": False} for v in values]})
    train_keys = sorted(set(global_train).union(*(variants[n].get("train", {}) for n in names)))
    for key in train_keys:
        cells = []
        for name in names:
            train = variants[name].get("train", {})
            present = key in train
            differs = present and (key not in global_train or train[key] != global_train[key])
            cells.append({"text": _plain(train[key]) if present else ABSENT, "differs": differs})
        rows.append(
            {
                "key": f"train.{key}",
                "global": _plain(global_train[key]) if key in global_train else ABSENT,
                "cells": cells,
            }
        )
    descriptions = [{"name": n, "description": variants[n].get("description", "") or ABSENT} for n in names]
    disabled = sorted(n for n, v in variants.items() if not v.get("enabled", True))
    return {"variants": names, "rows": rows, "descriptions": descriptions, "disabled": disabled}


def section_rows(section: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """A config section (model, data) as key/value rows."""
    return [{"key": k, "value": _plain(v)} for k, v in sorted((section or {}).items())]


def _naive_flag(arm: ArmResult) -> str:
    if arm.beats_naive is None:
        return "cannot tell (no test skill)"
    if not arm.beats_naive:
        return "no: learned nothing beyond naive (test skill ≤ 0)"
    if arm.beats_naive_clearly:
        return "yes, whole CI of test skill above 0"
    return "on the mean only (CI includes 0)"


def _iqm_text(arm: ArmResult, metric: str) -> str:
    iqm = arm.iqm.get(metric)
    if iqm is None or iqm.iqm is None:
        return ""
    interval = "" if iqm.ci_low is None else f" [{fmt_value(iqm.ci_low)}, {fmt_value(iqm.ci_high)}]"
    return f"IQM {fmt_value(iqm.iqm)}{interval}"


def results_rows(study: StudyResult) -> list[dict[str, Any]]:
    """One row per variant: mean ± CI (t interval) and IQM [bootstrap interval] of each
    result metric, the count of "never" for a censored one, run statuses, naive check."""
    rows = []
    for name in variant_order(study.variants):
        arm = study.variants[name]
        metrics = {}
        for metric in RESULT_METRICS:
            stats = arm.metrics[metric]
            never = arm.never.get(metric, 0)
            extra = f"never in {never} run(s)" if never else _iqm_text(arm, metric)
            metrics[metric] = {
                "mean_ci": fmt_mean_ci(stats)
                if arm.n_ok and stats.n
                else ("no successful run" if not arm.n_ok else "no value"),
                "interval": " ".join(t for t in (fmt_interval(stats) if stats.has_ci else "", extra) if t),
                "n": stats.n,
            }
        runs = [
            {
                "unit": unit_name(run.unit, study),
                "status": run.status,
                "ok": run.status in OK_STATUSES,
                "reason": run.reason,
            }
            for run in arm.runs
        ]
        rows.append(
            {
                "name": name,
                "description": arm.description,
                "n_ok": arm.n_ok,
                "n_runs": arm.n_runs,
                "metrics": metrics,
                "runs": runs,
                "naive": _naive_flag(arm),
            }
        )
    return rows


def result_columns() -> list[dict[str, str]]:
    """Headers of the results table: metric key, title and direction."""
    return [
        {"key": m, "title": f"{METRICS[m].title} ({METRICS[m].direction} is better)"} for m in RESULT_METRICS
    ]


def contrast_rows(study: StudyResult) -> list[dict[str, Any]]:
    """Every informative contrast as formatted cells (per-unit Δ shown, "never" for censored);
    the ones that carry no information are one line under the table (:mod:`.uninformative`)."""
    rows = []
    for row in split_contrasts(study.contrasts.on(*CONTRAST_METRICS)).informative:
        interval = "" if row.ci_low is None else f"[{fmt_value(row.ci_low)}, {fmt_value(row.ci_high)}]"
        per_unit = ", ".join(
            f"{unit_name(unit, study)}: {NEVER if d is None else fmt_value(d)}"
            for unit, d in zip(row.units, row.deltas, strict=True)
        )
        rows.append(
            {
                "label": row.label,
                "pair": f"{row.a} − {row.b}",
                "role": row.role,
                "metric": f"{METRICS[row.metric].title} ({row.direction} is better)",
                "n": row.n,
                "mean_delta": fmt_value(row.mean_delta),
                "interval": interval or ABSENT,
                "p": fmt_p(row.p),
                "p_adjusted": fmt_p(row.p_adjusted),
                "test": row.test,
                "d_z": fmt_value(row.d_z, 2),
                "poi": fmt_value(row.prob_improvement, 2),
                "share": fmt_value(row.paired_share, 2),
                "min_p": f"{row.min_attainable_p:.3g}",
                "mde": fmt_value(row.mde),
                "units_needed": fmt_int(row.units_needed),
                "per_unit": per_unit,
                "significant": row.significant,
            }
        )
    return rows


def run_rows(study: StudyResult) -> list[dict[str, Any]]:
    """Every run with its status and numbers; a failed or missing run shows a dash, not 0."""
    rows = []
    for name in variant_order(study.variants):
        for run in study.variants[name].runs:
            first = run.first_step_beats_naive
            rows.append(
                {
                    "variant": name,
                    "unit": unit_name(run.unit, study),
                    "seed": run.seed,
                    "status": run.status,
                    "ok": run.status in OK_STATUSES,
                    "reason": run.reason,
                    "epochs": fmt_int(run.epochs_completed),
                    "best_epoch": fmt_int(run.best_epoch),
                    "test_skill": fmt_value(run.test_skill),
                    "auc_val_loss": fmt_value(run.auc_val_loss),
                    "first_step": NEVER if first == NEVER else fmt_int(first),
                    "best_val_loss": fmt_value(run.best_val_loss),
                    "runtime": fmt_seconds(run.runtime_s),
                    "resumed": fmt_int(run.resumed_from_epoch),
                }
            )
    return rows


def naive_rows(study: StudyResult) -> list[dict[str, str]]:
    """The pooled naive baselines (mean over all finished runs)."""
    return [
        {
            "name": name,
            "val_loss": fmt_value(block.get("val_loss")),
            "test_loss": fmt_value(block.get("test_loss")),
            "val_correlation": fmt_value(block.get("val_correlation")),
        }
        for name, block in sorted(study.naive_baselines.items())
    ]


def ok_metrics(metrics: pd.DataFrame, ok_keys: set[tuple[str, Unit]]) -> pd.DataFrame:
    """Epoch rows of finished runs only: a crashed run's partial curve must not bend a mean."""
    if metrics.empty:
        return metrics
    keys = [
        (str(variant), Unit(str(series), int(fold), int(seed)))
        for variant, series, fold, seed in zip(
            metrics["variant"], metrics["series"], metrics["fold"], metrics["seed"], strict=True
        )
    ]
    return metrics[[key in ok_keys for key in keys]]


def unit_name(unit: Unit, study: StudyResult) -> str:
    """A unit as short as the study allows: ``seed 3`` with one series and one fold, else more."""
    parts = [unit.series] if len(study.series) > 1 else []
    parts += [f"fold {unit.fold}"] if study.folds > 1 else []
    return " ".join([*parts, f"seed {unit.seed}"])


def convergence_rows(
    metrics: pd.DataFrame, order: Sequence[str], epochs: Iterable[int] = CONVERGENCE_EPOCHS
) -> dict[str, Any]:
    """Mean ± CI of val_correlation and val_loss at fixed epochs: how fast each variant learns."""
    epochs = list(epochs)
    rows = []
    for name in order:
        frame = metrics[metrics["variant"] == name] if not metrics.empty else metrics
        cells = []
        for epoch in epochs:
            at = frame[frame["epoch"] == epoch] if not frame.empty else frame
            if at.empty:
                cells.append({"correlation": "not reached", "loss": "not reached"})
                continue
            cells.append(
                {
                    "correlation": fmt_mean_ci(describe(at["val_correlation"])),
                    "loss": fmt_mean_ci(describe(at["val_loss"])),
                }
            )
        rows.append({"name": name, "cells": cells})
    return {"epochs": epochs, "rows": rows}


def grad_norm_pattern(epochs: Sequence[int], values: Sequence[float], clip: float | None) -> str:
    """Describe a (seed-averaged) gradient-norm curve in one phrase.

    What matters for diagnosis: the trend from first to last epoch, where the peak is,
    and how often the norm exceeded the clipping threshold (clipping then shaped training).
    """
    pairs = [(int(e), float(v)) for e, v in zip(epochs, values, strict=True) if math.isfinite(float(v))]
    if not pairs:
        return "not logged"
    first, last = pairs[0], pairs[-1]
    peak = max(pairs, key=lambda p: p[1])
    if len(pairs) == 1:
        text = f"{fmt_value(first[1])} (one epoch)"
    else:
        ratio = last[1] / first[1] if first[1] > 0 else math.inf
        trend = "falling" if ratio < 0.8 else "rising" if ratio > 1.25 else "flat"
        text = (
            f"{trend}: {fmt_value(first[1])} at epoch {first[0]} → {fmt_value(last[1])} at epoch "
            f"{last[0]}, peak {fmt_value(peak[1])} at epoch {peak[0]}"
        )
    if clip is not None and clip > 0:
        above = sum(1 for _, v in pairs if v > clip)
        text += f"; above the clip threshold {fmt_value(clip)} in {above} of {len(pairs)} epochs"
    return text


def grad_clip_of(experiment: Mapping[str, Any], variant: str) -> float | None:
    """The variant's effective ``train.grad_clip`` (0 or absent = no clipping)."""
    spec = (experiment.get("variants") or {}).get(variant) or {}
    value = (spec.get("train") or {}).get("grad_clip", (experiment.get("train") or {}).get("grad_clip"))
    return None if value in (None, 0) else float(value)


def mean_curve(metrics: pd.DataFrame, variant: str, column: str) -> pd.DataFrame:
    """Per-epoch mean, min and max of ``column`` across the variant's seeds."""
    if metrics.empty or column not in metrics.columns:
        return pd.DataFrame(columns=["epoch", "mean", "min", "max", "n"])
    frame = metrics[metrics["variant"] == variant][["epoch", column]].copy()
    frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame = frame.dropna()
    grouped = frame.groupby("epoch")[column]
    curve = grouped.agg(["mean", "min", "max", "count"]).reset_index()
    return curve.rename(columns={"count": "n"})


def compute_rows(
    study: StudyResult, metrics: pd.DataFrame, experiment: Mapping[str, Any]
) -> list[dict[str, str]]:
    """Runtime, throughput, peak memory, parameter counts and grad-norm pattern per variant."""
    rows = []
    for name in variant_order(study.variants):
        arm = study.variants[name]
        curve = mean_curve(metrics, name, "grad_norm")
        throughput = arm.samples_per_s.mean
        rows.append(
            {
                "name": name,
                "runtime": fmt_seconds(arm.runtime_s.mean),
                "throughput": ABSENT if throughput is None else f"{throughput:,.0f}",
                "peak_rss": ABSENT if arm.peak_rss_mb_max is None else f"{arm.peak_rss_mb_max:,.0f} MB",
                "params_total": fmt_int(arm.params_total),
                "params_trainable": fmt_int(arm.params_trainable),
                "grad_norm": grad_norm_pattern(
                    list(curve["epoch"]), list(curve["mean"]), grad_clip_of(experiment, name)
                ),
            }
        )
    return rows
