"""Per-variant statistics across seeds: the content of results/summary.json.

Kept separate from reading (``runs``) and from presentation (``tables``) so the numbers
the conclusions rest on can be checked on hand-made runs without any files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from workflow_scripts.reporting.breadth import breadth
from workflow_scripts.reporting.budget import arm_convergence, budget_block
from workflow_scripts.reporting.contrast_results import ContrastResult
from workflow_scripts.reporting.contrasts import analyse
from workflow_scripts.reporting.measures import METRICS, NEVER, PRIMARY_METRIC, TEST_METRICS
from workflow_scripts.reporting.results import (
    ArmResult,
    IqmStats,
    NaiveChoice,
    NaiveMeans,
    PeriodSpan,
    RunEntry,
    StudyCompute,
    StudyResult,
)
from workflow_scripts.reporting.runs import OK_STATUSES, RunRecord, finite_or_none
from workflow_scripts.reporting.stats import (
    CONFIDENCE,
    SummaryStats,
    describe,
    iqm,
    iqm_interval,
)
from workflow_scripts.reporting.within_test import periods_of, within_test
from workflow_scripts.training.run_contract import RunSummary, TestScores

COMPUTE_FIELDS = ("runtime_s", "samples_per_s")
NAIVE_METRICS = ("val_loss", "test_loss", "val_correlation", "val_mae")
#: the study's own variants first, in the order the questions are asked, then the rest.
PREFERRED_ORDER = (
    "baseline",
    "frozen_random",
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


def run_entry(run: RunRecord) -> RunEntry:
    """One run's line in summary.json: its status and, only if it finished, its numbers."""
    summary = run.summary if run.ok else None
    values: dict[str, Any] = {}  # the metric fields of RunEntry (MetricValue each)
    for name, spec in METRICS.items():
        values[name] = run.value(spec.section, spec.key)
        section = None if summary is None else getattr(summary, spec.section)
        if spec.censored and section is not None and getattr(section, spec.key) is None:
            values[name] = NEVER  # finished, never reached: censored, worse than any observed value
    known = {
        "series": run.series,
        "fold": run.fold,
        "seed": run.seed,
        "status": run.status,
        "reason": run.reason,
        "peak_rss_mb": run.peak_rss_mb,
        "benchmark_s": run.benchmark_s,
        "epochs_logged": None if run.metrics is None else len(run.metrics),
        **values,
    }
    return RunEntry(**known) if summary is None else RunEntry(**known, **_finished(run, summary))


def _finished(run: RunRecord, summary: RunSummary) -> dict[str, Any]:
    """RunEntry's fields that only a finished run has."""
    return {
        "epochs_completed": summary.epochs_completed,
        "best_epoch": summary.best_epoch,
        "resumed_from_epoch": summary.resumed_from_epoch,
        "runtime_s": run.top("runtime_s"),
        "samples_per_s": run.top("samples_per_s"),
        "params_total": run.top("params_total"),
        "params_trainable": run.top("params_trainable"),
        "params_encoder": run.top("params_encoder"),
        "config_hash": summary.config_hash,
        "model_hash": summary.model_hash,
        "data_hash": summary.data_hash,
        "device": summary.device,
        "precision": summary.precision,
        "budget_curve": {point.step: finite_or_none(point.test_skill) for point in summary.budget_curve},
        "last_quarter_gain": finite_or_none(summary.convergence.last_quarter_gain),
        "best_in_last_quarter": summary.convergence.best_in_last_quarter,
        **_test_parts(summary.test),
    }


def _test_parts(test: TestScores | None) -> dict[str, Any]:
    """RunEntry's fields of the test pass's draws and periods (none for a validation-only run)."""
    if test is None:
        return {}
    return {
        "channel_skill": dict(test.channel_skill),
        "test_skill_draws": [draw.skill for draw in test.draws],
        "test_skill_mae_draws": [draw.skill_mae for draw in test.draws],
        "test_skill_periods": [period.skill for period in test.periods],
        "test_skill_mae_periods": [period.skill_mae for period in test.periods],
        "period_spans": [PeriodSpan(p.start, p.end, p.n_windows) for p in test.periods],
    }


def channel_means(entries: Sequence[RunEntry]) -> dict[str, float | None]:
    """Mean test skill per channel ("w.close") over the seeds that report it."""
    collected: dict[str, list[float]] = {}
    for entry in entries:
        for name, value in entry.channel_skill.items():
            if (number := finite_or_none(value)) is not None:
                collected.setdefault(name, []).append(number)
            else:
                collected.setdefault(name, [])
    return {name: (sum(v) / len(v) if v else None) for name, v in collected.items()}


def naive_means(runs: Sequence[RunRecord]) -> NaiveMeans:
    """Mean of each naive baseline's metrics over the finished runs that report it.

    Each run scores the baselines on its own validation windows and masks, so the mean
    over runs is the reference a variant's mean over seeds is compared with.
    """
    collected: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        if not run.ok or run.summary is None:
            continue
        for name, block in run.summary.naive_baselines.items():
            slot = collected.setdefault(name, {m: [] for m in NAIVE_METRICS})
            for metric in NAIVE_METRICS:
                value = finite_or_none(block.get(metric))
                if value is not None:
                    slot[metric].append(value)
    means: NaiveMeans = {}
    for name in sorted(collected):
        means[name] = {
            metric: (sum(vals) / len(vals) if vals else None) for metric, vals in collected[name].items()
        }
    return means


def best_naive(naive: Mapping[str, Mapping[str, float | None]]) -> NaiveChoice | None:
    """The strongest naive baseline, chosen on **validation** loss as the runs choose it.

    Test skill is measured against it: ``skill = 1 − MSE(model) / MSE(strongest naive)``.
    Choosing it on the test split would pick the bar with the test data it is scored on.
    ``loss`` is its test loss (its validation loss where no run reports a test loss).
    """
    scored = [
        (value, name)
        for name, block in naive.items()
        if (value := finite_or_none(block.get("val_loss"))) is not None
    ]
    if not scored:
        return None
    value, name = min(scored)
    test = finite_or_none(naive[name].get("test_loss"))
    return NaiveChoice(name, "val_loss", value, test, value if test is None else test)


def beats_naive(skill: SummaryStats) -> tuple[bool | None, bool | None]:
    """(mean test skill > 0, whole CI above 0): better than the strongest naive predictor;
    ``None`` = cannot tell."""
    if skill.mean is None:
        return None, None
    clearly = None if skill.ci_low is None else skill.ci_low > 0
    return skill.mean > 0, clearly


def iqm_block(values: Sequence[Any], confidence: float = CONFIDENCE) -> IqmStats:
    """Interquartile mean over the finite values with its bootstrap percentile interval."""
    kept = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    low, high = iqm_interval(kept, confidence)
    return IqmStats(iqm(kept), low, high, len(kept))


def _unique_int(values: Iterable[float | None]) -> int | None:
    """The parameter count shared by the runs (they build the same model); the largest if not."""
    kept = {int(v) for v in values if v is not None}
    return max(kept) if kept else None


def summarise_variant(runs: Sequence[RunRecord], confidence: float = CONFIDENCE) -> ArmResult:
    """summary.json block for one variant: statistics over its finished units, plus every run."""
    ordered = sorted(runs, key=lambda r: r.unit)
    ok = [r for r in ordered if r.ok]
    first = next((r.summary for r in [*ok, *ordered] if r.summary is not None), None)
    return arm_result(
        [run_entry(r) for r in ordered],
        naive_means(ordered),
        description="" if first is None else first.description,
        task=None if first is None else first.task,
        confidence=confidence,
    )


def arm_result(
    entries: Sequence[RunEntry],
    naive: NaiveMeans | None = None,
    *,
    description: str = "",
    task: str | None = None,
    confidence: float = CONFIDENCE,
) -> ArmResult:
    """An arm's statistics over its runs (in unit order): the mean and t interval and the IQM
    of every metric over the finished units, "never" counts, compute, naive check, convergence."""
    naive = naive or {}
    stats = {name: describe((e.value(name) for e in entries), confidence) for name in METRICS}
    beats, clearly = beats_naive(stats[PRIMARY_METRIC])
    peaks = [e.peak_rss_mb for e in entries if e.peak_rss_mb is not None]
    return ArmResult(
        description=description,
        task=task,
        n_runs=len(entries),
        n_ok=sum(1 for e in entries if e.status in OK_STATUSES),
        runs=list(entries),
        metrics=stats,
        iqm={name: iqm_block([e.value(name) for e in entries], confidence) for name in METRICS},
        never={
            name: sum(1 for e in entries if e.value(name) == NEVER)
            for name, spec in METRICS.items()
            if spec.censored
        },
        runtime_s=describe((e.runtime_s for e in entries), confidence),
        samples_per_s=describe((e.samples_per_s for e in entries), confidence),
        peak_rss_mb=describe(peaks, confidence),
        peak_rss_mb_max=max(peaks, default=None),
        params_total=_unique_int(e.params_total for e in entries),
        params_trainable=_unique_int(e.params_trainable for e in entries),
        naive_baselines=naive,
        best_naive=best_naive(naive),
        beats_naive=beats,
        beats_naive_clearly=clearly,
        convergence=arm_convergence(entries),
        channel_skill=channel_means(entries),
    )


def summarise(
    runs: Sequence[RunRecord],
    contrasts: Sequence[Mapping[str, Any]] = (),
    confidence: float = CONFIDENCE,
    reference: Mapping[str, Any] | None = None,
    compute: StudyCompute | None = None,
) -> StudyResult:
    """The whole results/summary.json: one block per variant, the pooled naive baselines and
    the planned paired contrasts (``contrasts``: the configured list of {a, b, role, label});
    ``compute``: planned and measured seconds per rule (``compute_time.study_compute``)."""
    by_variant: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_variant.setdefault(run.variant, []).append(run)
    arms = {name: summarise_variant(rs, confidence) for name, rs in by_variant.items()}
    return study_result(
        arms, contrasts, naive_means(runs), confidence=confidence, reference=reference, compute=compute
    )


def study_result(
    arms: Mapping[str, ArmResult],
    contrasts: Sequence[Mapping[str, Any]] = (),
    naive: NaiveMeans | None = None,
    *,
    confidence: float = CONFIDENCE,
    reference: Mapping[str, Any] | None = None,
    compute: StudyCompute | None = None,
) -> StudyResult:
    """The study from its arms: the planned contrasts between them and the budget curve."""
    naive = naive or {}
    runs = [run for arm in arms.values() for run in arm.runs]
    periods = periods_of(list(arms.values()))
    family = analyse(arms, contrasts, confidence=confidence)
    return StudyResult(
        confidence=confidence,
        primary_metric=PRIMARY_METRIC,
        metric_directions={name: spec.direction for name, spec in METRICS.items()},
        series=list(dict.fromkeys(run.series for run in sorted(runs, key=lambda r: r.unit))),
        folds=len({run.fold for run in runs}),
        seeds=sorted({run.seed for run in runs}),
        variant_order=variant_order(arms),
        variants=dict(arms),
        naive_baselines=naive,
        best_naive=best_naive(naive),
        contrasts=replace(family, results=[_with_test_detail(row, arms, periods) for row in family.results]),
        budget=budget_block(arms, contrasts),
        periods=periods,
        n_draws=max((len(run.test_skill_draws) for arm in arms.values() for run in arm.runs), default=0),
        compute=compute or StudyCompute(),
        reference=None if reference is None else dict(reference),
    )


def _with_test_detail(
    row: ContrastResult, arms: Mapping[str, ArmResult], periods: Sequence[PeriodSpan]
) -> ContrastResult:
    """A test-metric contrast with its spread between draws, its contrast per period, and its
    contrast per series and fold with the new-unit estimates."""
    if row.metric not in TEST_METRICS:
        return row
    return replace(
        row,
        within_test=within_test(arms[row.a], arms[row.b], row.metric, periods),
        breadth=breadth(row),
    )


def summary_table(study: StudyResult) -> pd.DataFrame:
    """results/summary_table.csv: one flat row per variant; an absent number stays empty."""
    rows = []
    for name in variant_order(study.variants):
        arm = study.variants[name]
        row: dict[str, Any] = {
            "variant": name,
            "description": arm.description,
            "task": arm.task,
            "runs": arm.n_runs,
            "runs_ok": arm.n_ok,
            "run_status": " ".join(f"{e.series}/fold{e.fold}/seed{e.seed}:{e.status}" for e in arm.runs),
        }
        for metric, stats in arm.metrics.items():
            for field in ("n", "mean", "std", "ci_low", "ci_high"):
                row[f"{metric}_{field}"] = getattr(stats, field)
        row["runtime_s_mean"] = arm.runtime_s.mean
        row["samples_per_s_mean"] = arm.samples_per_s.mean
        row["peak_rss_mb_max"] = arm.peak_rss_mb_max
        row["params_total"] = arm.params_total
        row["params_trainable"] = arm.params_trainable
        row["best_naive"] = None if arm.best_naive is None else arm.best_naive.name
        row["best_naive_loss"] = None if arm.best_naive is None else arm.best_naive.loss
        row["beats_naive"] = arm.beats_naive
        row["beats_naive_clearly"] = arm.beats_naive_clearly
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in table.columns:
        if column.endswith("_n") or column in ("runs", "runs_ok", "params_total", "params_trainable"):
            table[column] = table[column].astype("Int64")
    return table
