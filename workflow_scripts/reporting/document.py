"""Assembling the whole report from its inputs: tables, figures, conclusions, provenance.

Everything here is computed in memory; the ``report`` entry point writes the results only
once all of them exist, so a failure in any part leaves no half-updated report behind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workflow_scripts.reporting import (
    conclusions,
    controls,
    curve_tables,
    plan_table,
    plots,
    pretrainings,
    tables,
)
from workflow_scripts.reporting.aggregate import variant_order
from workflow_scripts.reporting.formatting import fmt_value
from workflow_scripts.reporting.measures import CONTRAST_METRICS, MAE_METRIC, PRIMARY_METRIC
from workflow_scripts.reporting.planned import ok_run_keys, planned_seeds, with_planned_runs
from workflow_scripts.reporting.power import POWER
from workflow_scripts.reporting.render import png_data_uri, render_html, render_markdown
from workflow_scripts.reporting.results import NaiveChoice, StudyResult
from workflow_scripts.reporting.runs import RunRecord
from workflow_scripts.reporting.stats import BOOTSTRAP_RESAMPLES
from workflow_scripts.reporting.tune_table import tuning_table
from workflow_scripts.reporting.uninformative import split_contrasts
from workflow_scripts.training.run_contract import CONVERGED_GAIN

TITLE = "Does a pretrained encoder help? Results across variants, series, folds and seeds"
TENSORBOARD_COMMAND = "tensorboard --logdir logs/tensorboard"
PLOT_FILES = {
    "budget_curve": "budget_curve.png",
    "learning_curves": "learning_curves.png",
    "final_comparison": "final_comparison.png",
    "compute": "compute.png",
    "paired_deltas": "paired_deltas.png",
    "test_periods": "test_periods.png",
}
#: Each figure's title and caption; ``{confidence}`` and ``{budget_alpha}`` are the study's
#: rules (:class:`ReportRules`), never written here as numbers.
_FIGURE_TEXT = {
    "budget_curve": (
        "The answer along the run",
        "Δ test skill against training steps for the primary contrast and the positive control: the "
        "line is the mean paired difference over units, the band its {confidence} t interval, a filled "
        "marker a budget where the exact sign-flip p ≤ {budget_alpha} (unadjusted, descriptive). Each "
        "point scores the model of that step on one draw of test masks (draw 0); nothing is chosen on "
        "these scores.",
    ),
    "learning_curves": (
        "Learning curves",
        "Validation loss and validation correlation per epoch: the line is the mean over the "
        "finished runs, the band spans the runs; dashed lines are the naive baselines.",
    ),
    "final_comparison": (
        "Final comparison",
        "Test skill (0 = the strongest naive predictor) and best validation loss per variant: "
        "diamond = mean, bar = {confidence} t interval over units, dots = individual units.",
    ),
    "paired_deltas": (
        "Paired differences per unit",
        "Each planned contrast on test skill: one dot per unit (Δ = a − b on that series, fold and seed), "
        "diamond = mean "
        "Δ, bar = its {confidence} t interval; right of the dashed zero line favours the first-named "
        "variant.",
    ),
    "test_periods": (
        "The answer per series, fold and test period",
        "Each planned contrast on test skill in each series and fold (when there are several), in every "
        "contiguous test period, and as the random-effects estimate for a new period (dot: mean paired Δ "
        "over the units, bar: its {confidence} interval), and over every unit (diamond); left of the "
        "dashed zero line favours the second-named variant.",
    ),
    "compute": (
        "Compute",
        "Runtime, throughput and peak memory (max RSS from Snakemake's benchmark files) per "
        "variant, and the mean gradient norm per epoch.",
    ),
}


@dataclass(frozen=True)
class ReportRules:
    """The study's rules as the report states them, each written from the one value that applies
    it, so a sentence cannot say 2% while the code tests 3%."""

    #: the confidence level of every interval over seeds (``study.confidence``), e.g. "95%"
    confidence: str
    #: α of the planned contrasts, Holm-adjusted (``study.contrasts.alpha``)
    alpha: str
    #: α of the unadjusted, descriptive test at each budget (``study.budget.alpha``)
    budget_alpha: str
    #: the convergence rule's largest last-quarter gain (``run_contract.CONVERGED_GAIN``)
    converged_gain: str
    #: the power the minimum detectable effect is sized for (``power.POWER``)
    power: str
    #: the percentile bootstrap's resamples (``stats.BOOTSTRAP_RESAMPLES``)
    bootstrap_resamples: str
    #: when a positive control counts as detected (``controls.DETECTION_RULE``)
    detection: str


def report_rules(study: StudyResult) -> ReportRules:
    """The rules of ``study`` in the words the report uses."""
    return ReportRules(
        confidence=f"{study.confidence:.0%}",
        alpha=f"{study.contrasts.alpha:g}",
        budget_alpha=f"{study.budget.alpha:g}",
        converged_gain=f"{CONVERGED_GAIN:.0%}",
        power=f"{POWER:.0%}",
        bootstrap_resamples=str(BOOTSTRAP_RESAMPLES),
        detection=controls.DETECTION_RULE,
    )


@dataclass(frozen=True)
class RenderedReport:
    """The report's outputs, complete, before anything is written."""

    html: str
    markdown: str
    plots: dict[str, bytes]


def make_plots(
    study: StudyResult,
    finished_metrics: pd.DataFrame,
    order: list[str],
    grad_clip: float | None = None,
) -> dict[str, bytes]:
    """PNG bytes of the figures, keyed by file name."""
    return {
        PLOT_FILES["budget_curve"]: plots.budget_curve(study.budget),
        PLOT_FILES["learning_curves"]: plots.learning_curves(finished_metrics, order, study.naive_baselines),
        PLOT_FILES["final_comparison"]: plots.final_comparison(study, order),
        PLOT_FILES["compute"]: plots.compute_figure(study, finished_metrics, order, grad_clip),
        PLOT_FILES["paired_deltas"]: plots.paired_deltas(study.contrasts.on(PRIMARY_METRIC)),
        PLOT_FILES["test_periods"]: plots.period_forest(study.contrasts.on(PRIMARY_METRIC)),
    }


def build_context(
    study: StudyResult,
    finished_metrics: pd.DataFrame,
    experiment: Mapping[str, Any],
    provenance: Mapping[str, Any],
    pngs: Mapping[str, bytes],
    plots_href: str,
    tuning: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The template context shared by the HTML and the Markdown report.

    ``study`` must already list every planned run (``planned.with_planned_runs``), and
    ``finished_metrics`` only the epochs of finished runs.
    """
    order = variant_order(study.variants)
    statuses = [
        RunRecord(name, run.series, run.fold, run.seed, run.status, run.reason)
        for name in order
        for run in study.variants[name].runs
    ]
    rules = report_rules(study)
    figures = []
    for key, file_name in PLOT_FILES.items():
        title, caption = _FIGURE_TEXT[key]
        figures.append(
            {
                "id": key,
                "title": title,
                "caption": caption.format(confidence=rules.confidence, budget_alpha=rules.budget_alpha),
                "data_uri": png_data_uri(pngs[file_name]),
                "href": f"{plots_href}/{file_name}" if plots_href else file_name,
            }
        )
    seeds = planned_seeds(experiment) or list(study.seeds)
    return {
        "title": TITLE,
        "model_name": (experiment.get("model") or {}).get("name_or_path", "unknown"),
        "data_name": ", ".join(study.series) or "unknown",
        "seeds": seeds,
        "units_text": units_text(study, seeds),
        "variants": order,
        "rules": rules,
        "headline": conclusions.report_headline(study),
        "controls": controls.control_summary(study.contrasts, controls.pretraining_data(experiment)),
        "pretraining_lines": pretrainings.pretraining_lines(study),
        "pretraining_table": pretrainings.pretraining_table(study, experiment),
        "conclusions": conclusions.write_conclusions(study, statuses),
        "contrasts": tables.contrast_rows(study),
        "uninformative": split_contrasts(study.contrasts.on(*CONTRAST_METRICS)).collapsed,
        "result_columns": tables.result_columns(),
        "results": tables.results_rows(study),
        "runs": tables.run_rows(study),
        "naive": tables.naive_rows(study),
        "best_naive": _best_naive(study.best_naive),
        "convergence": tables.convergence_rows(finished_metrics, order),
        "budget_table": curve_tables.budget_rows(study.budget),
        "period_table": curve_tables.period_rows(study),
        "n_draws": study.n_draws,
        "convergence_status": curve_tables.convergence_status_rows(study, order),
        "channels": curve_tables.channel_rows(study, order),
        "reference": reference_context(study),
        "compute": tables.compute_rows(study, finished_metrics, experiment),
        "compute_plan": {
            "sentence": plan_table.plan_sentence(study.compute),
            "rows": plan_table.rule_time_rows(study.compute),
        },
        "settings": tables.settings_table(experiment),
        "tuning": tuning_table(tuning),
        "model_rows": tables.section_rows(experiment.get("model")),
        "data_rows": tables.section_rows(experiment.get("data")),
        "provenance": provenance,
        "figures": {f["id"]: f for f in figures},
        "tensorboard_command": TENSORBOARD_COMMAND,
    }


def units_text(study: StudyResult, seeds: Sequence[int]) -> str:
    """The study's paired units in words: ``units: 1 series × 3 folds × seeds 0, 1, 2``."""
    folds = f"{study.folds} fold" + ("" if study.folds == 1 else "s")
    return f"units: {len(study.series)} series × {folds} × seeds {', '.join(map(str, seeds))}"


def reference_context(study: StudyResult) -> dict[str, Any] | None:
    """The learned reference's test skill and each arm's distance to it (arm − reference)."""
    reference = study.reference
    if not reference or reference.get("test_skill") is None:
        return None
    skill = float(reference["test_skill"])
    mae = reference.get("test_skill_mae")
    distances = []
    for name in variant_order(study.variants):
        arm = study.variants[name]
        mean, mean_mae = arm.metrics[PRIMARY_METRIC].mean, arm.metrics[MAE_METRIC].mean
        if mean is not None:
            on_mae = (
                ""
                if mae is None or mean_mae is None
                else f" ({mean_mae - float(mae):+.3f} on absolute errors)"
            )
            distances.append({"variant": name, "distance": f"{mean - skill:+.3f}{on_mae}"})
    periods = [p.get("skill") for p in reference.get("test_periods") or []]
    return {
        "name": reference.get("name", "ridge"),
        "skill": f"{skill:+.3f}",
        "skill_mae": fmt_value(mae),
        "draws": len(reference.get("test_draws") or []),
        "periods": ", ".join(fmt_value(value) for value in periods),
        "val_skill": fmt_value(reference.get("val_skill")),
        "description": reference.get("description", ""),
        "distances": distances,
    }


def _best_naive(best: NaiveChoice | None) -> dict[str, str] | None:
    if best is None:
        return None
    return {"name": best.name, "value": fmt_value(best.loss)}


def build_report(
    study: StudyResult,
    metrics: pd.DataFrame,
    experiment: Mapping[str, Any],
    provenance: Mapping[str, Any],
    *,
    md_dir: str,
    plots_dir: str,
    tuning: Sequence[Mapping[str, Any]] = (),
) -> RenderedReport:
    """Render both documents and the figures; ``md_dir``/``plots_dir`` only set the
    Markdown's relative image links."""
    planned = with_planned_runs(study, experiment)
    finished = tables.ok_metrics(metrics, ok_run_keys(planned))
    order = variant_order(planned.variants)
    clip = (experiment.get("train") or {}).get("grad_clip")
    pngs = make_plots(planned, finished, order, float(clip) if clip else None)
    href = os.path.relpath(plots_dir, md_dir).replace(os.sep, "/")
    context = build_context(planned, finished, experiment, provenance, pngs, href, tuning)
    return RenderedReport(render_html(context), render_markdown(context), pngs)
