"""The runs the experiment planned, whether or not they produced results.

The report lists every planned (variant, unit), so a crashed or missing run shows as such
instead of silently shrinking a variant's n; these helpers merge the plan (the experiment
config) with what summary.json holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from workflow_scripts.reporting.aggregate import variant_order
from workflow_scripts.reporting.measures import METRICS
from workflow_scripts.reporting.results import ArmResult, IqmStats, RunEntry, StudyResult
from workflow_scripts.reporting.runs import MISSING, OK_STATUSES
from workflow_scripts.reporting.stats import describe
from workflow_scripts.reporting.units import Unit


def planned_variants(experiment: Mapping[str, Any]) -> list[str]:
    """Variants the experiment meant to run (``enabled: false`` ones are not planned)."""
    variants = experiment.get("variants") or {}
    return variant_order(n for n, v in variants.items() if v.get("enabled", True))


def planned_seeds(experiment: Mapping[str, Any]) -> list[int]:
    return sorted(int(s) for s in experiment.get("seeds") or [])


def planned_units(experiment: Mapping[str, Any]) -> list[Unit]:
    """Every (series, fold, seed) the experiment meant to run, from its canonical params."""
    seeds = planned_seeds(experiment)
    return sorted(
        Unit(str(data["name"]), fold, seed)
        for data in experiment.get("series") or []
        for fold in range(int(data.get("folds", 1)))
        for seed in seeds
    )


def _missing_entry(unit: Unit) -> RunEntry:
    return RunEntry(
        unit.series,
        unit.fold,
        unit.seed,
        MISSING,
        "planned by the experiment but no results were collected for it",
    )


def _empty_arm(description: str) -> ArmResult:
    """An arm the experiment planned but collect saw no run of: no numbers, no seeds."""
    empty = describe([])
    return ArmResult(
        description=description,
        task=None,
        n_runs=0,
        n_ok=0,
        runs=[],
        metrics={name: empty for name in METRICS},
        iqm={name: IqmStats(None, None, None, 0) for name in METRICS},
        never={name: 0 for name, spec in METRICS.items() if spec.censored},
        runtime_s=empty,
        samples_per_s=empty,
        peak_rss_mb=empty,
        peak_rss_mb_max=None,
        params_total=None,
        params_trainable=None,
        naive_baselines={},
        best_naive=None,
        beats_naive=None,
        beats_naive_clearly=None,
    )


def with_planned_runs(study: StudyResult, experiment: Mapping[str, Any]) -> StudyResult:
    """Add an explicit ``missing`` run for every planned (variant, unit) with no result.

    A run whose job never ran leaves no file for collect to read; the experiment config
    is what says it should exist, so the report lists it instead of silently dropping it.
    """
    variants = dict(study.variants)
    units = planned_units(experiment)
    for name in planned_variants(experiment):
        planned_description = experiment["variants"][name].get("description", "")
        arm = variants.get(name) or _empty_arm(planned_description)
        present = {run.unit for run in arm.runs}
        runs = sorted(
            [*arm.runs, *(_missing_entry(u) for u in units if u not in present)], key=lambda r: r.unit
        )
        variants[name] = replace(
            arm, runs=runs, n_runs=len(runs), description=arm.description or planned_description
        )
    return replace(
        study,
        variants=variants,
        variant_order=variant_order(variants),
        series=list(dict.fromkeys([*(u.series for u in units), *study.series])),
        folds=max([study.folds, *(u.fold + 1 for u in units)]),
        seeds=sorted({*(u.seed for u in units), *study.seeds}),
    )


def ok_run_keys(study: StudyResult) -> set[tuple[str, Unit]]:
    """(variant, unit) of runs whose curves and numbers may enter the statistics."""
    return {
        (name, run.unit)
        for name, arm in study.variants.items()
        for run in arm.runs
        if run.status in OK_STATUSES
    }
