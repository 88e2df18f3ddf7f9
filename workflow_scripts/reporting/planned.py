"""The runs the experiment planned, whether or not they produced results.

The report lists every planned (variant, seed), so a crashed or missing run shows as such
instead of silently shrinking a variant's n; these helpers merge the plan (the experiment
config) with what summary.json holds.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from workflow_scripts.reporting.aggregate import IQM_INTERVAL, variant_order
from workflow_scripts.reporting.metrics import METRICS
from workflow_scripts.reporting.runs import MISSING, OK_STATUSES
from workflow_scripts.reporting.stats import describe


def planned_variants(experiment: Mapping[str, Any]) -> list[str]:
    """Variants the experiment meant to run (``enabled: false`` ones are not planned)."""
    variants = experiment.get("variants") or {}
    return variant_order(n for n, v in variants.items() if v.get("enabled", True))


def planned_seeds(experiment: Mapping[str, Any]) -> list[int]:
    return sorted(int(s) for s in experiment.get("seeds") or [])


def _missing_entry(seed: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "seed": seed,
        "status": MISSING,
        "reason": "planned by the experiment but no results were collected for it",
    }
    for name in METRICS:
        entry[name] = None
    return entry


def _empty_block() -> dict[str, Any]:
    empty = describe([]).to_dict()
    return {
        "description": "",
        "task": None,
        "n_runs": 0,
        "n_ok": 0,
        "runs": [],
        "metrics": {name: dict(empty) for name in METRICS},
        "iqm": {
            name: {"iqm": None, "ci_low": None, "ci_high": None, "n": 0, "interval": IQM_INTERVAL}
            for name in METRICS
        },
        "never": {name: 0 for name, spec in METRICS.items() if spec.censored},
        "runtime_s": dict(empty),
        "samples_per_s": dict(empty),
        "peak_rss_mb": dict(empty),
        "peak_rss_mb_max": None,
        "params_total": None,
        "params_trainable": None,
        "naive_baselines": {},
        "best_naive": None,
        "beats_naive": None,
        "beats_naive_clearly": None,
    }


def with_planned_runs(summary: Mapping[str, Any], experiment: Mapping[str, Any]) -> dict[str, Any]:
    """Add an explicit ``missing`` run for every planned (variant, seed) with no result.

    A run whose job never ran leaves no file for collect to read; the experiment config
    is what says it should exist, so the report lists it instead of silently dropping it.
    """
    merged = copy.deepcopy(dict(summary))
    variants = merged.setdefault("variants", {})
    seeds = planned_seeds(experiment)
    for name in planned_variants(experiment):
        block = variants.setdefault(name, _empty_block())
        if not block.get("description"):
            block["description"] = experiment["variants"][name].get("description", "")
        present = {int(run["seed"]) for run in block["runs"]}
        for seed in seeds:
            if seed not in present:
                block["runs"].append(_missing_entry(seed))
        block["runs"].sort(key=lambda run: int(run["seed"]))
        block["n_runs"] = len(block["runs"])
    merged["variant_order"] = variant_order(variants)
    merged["seeds"] = sorted({*seeds, *(int(s) for s in merged.get("seeds", []))})
    return merged


def ok_run_keys(summary: Mapping[str, Any]) -> set[tuple[str, int]]:
    """(variant, seed) of runs whose curves and numbers may enter the statistics."""
    return {
        (name, int(run["seed"]))
        for name, block in summary["variants"].items()
        for run in block["runs"]
        if run["status"] in OK_STATUSES
    }
