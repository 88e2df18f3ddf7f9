"""Per-variant statistics across seeds: the content of results/summary.json.

Kept separate from reading (``runs``) and from presentation (``tables``) so the numbers
the conclusions rest on can be checked on hand-made runs without any files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from workflow_scripts.reporting.runs import RunRecord, finite_or_none
from workflow_scripts.reporting.stats import CONFIDENCE, SummaryStats, describe

#: summary.json metric name -> (section of the run summary, key in that section)
METRICS: dict[str, tuple[str, str]] = {
    "best_val_correlation": ("best", "val_correlation"),
    "best_val_loss": ("best", "val_loss"),
    "final_val_correlation": ("final", "val_correlation"),
    "final_val_loss": ("final", "val_loss"),
}
#: the metric the conclusions and the naive comparison use: the kept (best) checkpoint's
#: validation correlation, higher is better.
PRIMARY_METRIC = "best_val_correlation"
COMPUTE_FIELDS = ("runtime_s", "samples_per_s")
NAIVE_METRICS = ("val_correlation", "val_loss", "val_mae")

#: the study's own variants first, in the order the questions are asked, then the rest.
PREFERRED_ORDER = (
    "baseline",
    "frozen_all",
    "freeze",
    "nofreeze",
    "frozen_ln",
    "no_encoder",
    "small_scratch",
)


def variant_order(names: Iterable[str]) -> list[str]:
    """Stable display order, so colours and table rows match across every section."""
    unique = set(names)
    known = [n for n in PREFERRED_ORDER if n in unique]
    return known + sorted(unique - set(known))


def run_entry(run: RunRecord) -> dict[str, Any]:
    """One run's line in summary.json: its status and, only if it finished, its numbers."""
    summary = run.summary or {}
    entry: dict[str, Any] = {
        "seed": run.seed,
        "status": run.status,
        "reason": run.reason,
        "epochs_completed": summary.get("epochs_completed") if run.ok else None,
        "best_epoch": summary.get("best_epoch") if run.ok else None,
        "resumed_from_epoch": summary.get("resumed_from_epoch"),
        "peak_rss_mb": run.peak_rss_mb,
        "benchmark_s": run.benchmark_s,
        "epochs_logged": None if run.metrics is None else len(run.metrics),
    }
    for name, (section, key) in METRICS.items():
        entry[name] = run.value(section, key)
    for key in (*COMPUTE_FIELDS, "params_total", "params_trainable", "params_encoder"):
        entry[key] = run.top(key)
    for key in ("config_hash", "model_hash", "data_hash", "device", "precision"):
        entry[key] = summary.get(key)
    return entry


def naive_means(runs: Sequence[RunRecord]) -> dict[str, dict[str, float | None]]:
    """Mean of each naive baseline's metrics over the finished runs that report it.

    Each run scores the baselines on its own validation windows and masks, so the mean
    over runs is the reference a variant's mean over seeds is compared with.
    """
    collected: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        if not run.ok or run.summary is None:
            continue
        for name, block in (run.summary.get("naive_baselines") or {}).items():
            slot = collected.setdefault(name, {m: [] for m in NAIVE_METRICS})
            for metric in NAIVE_METRICS:
                value = finite_or_none(block.get(metric))
                if value is not None:
                    slot[metric].append(value)
    means: dict[str, dict[str, float | None]] = {}
    for name in sorted(collected):
        means[name] = {
            metric: (sum(vals) / len(vals) if vals else None) for metric, vals in collected[name].items()
        }
    return means


def best_naive(naive: Mapping[str, Mapping[str, float | None]]) -> tuple[str, float] | None:
    """The naive baseline with the highest validation correlation: the bar to clear."""
    scored = [
        (value, name)
        for name, block in naive.items()
        if (value := finite_or_none(block.get("val_correlation"))) is not None
    ]
    if not scored:
        return None
    value, name = max(scored)
    return name, value


def beats_naive(primary: SummaryStats, naive: tuple[str, float] | None) -> tuple[bool | None, bool | None]:
    """(mean beats the best naive baseline, whole CI lies above it); ``None`` = cannot tell."""
    if naive is None or primary.mean is None:
        return None, None
    beats = primary.mean > naive[1]
    clearly = None if primary.ci_low is None else primary.ci_low > naive[1]
    return beats, clearly


def _unique_int(values: Iterable[float | None]) -> int | None:
    """The parameter count shared by the seeds (they build the same model); the largest if not."""
    kept = {int(v) for v in values if v is not None}
    return max(kept) if kept else None


def summarise_variant(runs: Sequence[RunRecord], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """summary.json block for one variant: statistics over its finished seeds, plus every run."""
    ordered = sorted(runs, key=lambda r: r.seed)
    entries = [run_entry(r) for r in ordered]
    ok = [r for r in ordered if r.ok]
    stats = {name: describe((e[name] for e in entries), confidence) for name in METRICS}
    naive = naive_means(ordered)
    bar = best_naive(naive)
    beats, clearly = beats_naive(stats[PRIMARY_METRIC], bar)
    first = next((r.summary for r in [*ok, *ordered] if r.summary is not None), None) or {}
    return {
        "description": first.get("description", ""),
        "task": first.get("task"),
        "n_runs": len(ordered),
        "n_ok": len(ok),
        "runs": entries,
        "metrics": {name: s.to_dict() for name, s in stats.items()},
        "runtime_s": describe((e["runtime_s"] for e in entries), confidence).to_dict(),
        "samples_per_s": describe((e["samples_per_s"] for e in entries), confidence).to_dict(),
        "peak_rss_mb": describe((e["peak_rss_mb"] for e in entries), confidence).to_dict(),
        "peak_rss_mb_max": max(
            (e["peak_rss_mb"] for e in entries if e["peak_rss_mb"] is not None), default=None
        ),
        "params_total": _unique_int(e["params_total"] for e in entries),
        "params_trainable": _unique_int(e["params_trainable"] for e in entries),
        "naive_baselines": naive,
        "best_naive": None if bar is None else {"name": bar[0], "val_correlation": bar[1]},
        "beats_naive": beats,
        "beats_naive_clearly": clearly,
    }


def summarise(runs: Sequence[RunRecord], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The whole results/summary.json: one block per variant and the pooled naive baselines."""
    by_variant: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_variant.setdefault(run.variant, []).append(run)
    naive = naive_means(runs)
    bar = best_naive(naive)
    return {
        "confidence": confidence,
        "primary_metric": PRIMARY_METRIC,
        "seeds": sorted({r.seed for r in runs}),
        "variant_order": variant_order(by_variant),
        "variants": {name: summarise_variant(rs, confidence) for name, rs in by_variant.items()},
        "naive_baselines": naive,
        "best_naive": None if bar is None else {"name": bar[0], "val_correlation": bar[1]},
    }


def summary_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """results/summary_table.csv: one flat row per variant; an absent number stays empty."""
    rows = []
    for name in variant_order(summary["variants"]):
        block = summary["variants"][name]
        row: dict[str, Any] = {
            "variant": name,
            "description": block.get("description", ""),
            "task": block.get("task"),
            "runs": block["n_runs"],
            "runs_ok": block["n_ok"],
            "run_status": " ".join(f"seed{e['seed']}:{e['status']}" for e in block["runs"]),
        }
        for metric, stats in block["metrics"].items():
            for field in ("n", "mean", "std", "ci_low", "ci_high"):
                row[f"{metric}_{field}"] = stats[field]
        row["runtime_s_mean"] = block["runtime_s"]["mean"]
        row["samples_per_s_mean"] = block["samples_per_s"]["mean"]
        row["peak_rss_mb_max"] = block["peak_rss_mb_max"]
        row["params_total"] = block["params_total"]
        row["params_trainable"] = block["params_trainable"]
        best = block.get("best_naive") or {}
        row["best_naive"] = best.get("name")
        row["best_naive_val_correlation"] = best.get("val_correlation")
        row["beats_naive"] = block["beats_naive"]
        row["beats_naive_clearly"] = block["beats_naive_clearly"]
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in table.columns:
        if column.endswith("_n") or column in ("runs", "runs_ok", "params_total", "params_trainable"):
            table[column] = table[column].astype("Int64")
    return table
