"""The report's figures, rendered headless (Agg) straight to PNG bytes.

Figures are built as ``Figure`` objects on an explicit Agg canvas, never through pyplot,
so no GUI backend or global figure state is involved (safe on a cluster node).

Readers would rather look than read: curves and comparisons are plots, with the spread
over units drawn rather than hidden. Each function returns PNG bytes so the same image is
embedded in the HTML (base64) and written as a file for Snakemake's ``--report``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from workflow_scripts.reporting.contrast_results import ContrastResult
from workflow_scripts.reporting.formatting import fmt_p, period_name
from workflow_scripts.reporting.paired import ALPHA
from workflow_scripts.reporting.results import BudgetResult, StudyResult
from workflow_scripts.reporting.stats import SummaryStats
from workflow_scripts.reporting.tables import mean_curve

_PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_NAIVE_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))
DPI = 100


def variant_colours(order: Sequence[str]) -> dict[str, str]:
    """One fixed colour per variant, the same in every figure."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(order)}


def to_png(figure: Figure) -> bytes:
    """PNG bytes without a software/date stamp, so identical inputs give identical files."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _no_data(ax: Axes, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777777")


def learning_curves(
    metrics: pd.DataFrame,
    order: Sequence[str],
    naive: Mapping[str, Mapping[str, float | None]] | None = None,
) -> bytes:
    """val_loss and val_correlation per epoch: mean over runs, band spanning the runs.

    ``metrics`` must hold finished runs only. Naive baselines are dashed reference lines.
    """
    colours = variant_colours(order)
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    panels = (("val_loss", "validation loss"), ("val_correlation", "validation correlation"))
    for index, (column, title) in enumerate(panels):
        ax = figure.add_subplot(1, 2, index + 1)
        drawn = False
        for name in order:
            curve = mean_curve(metrics, name, column)
            if curve.empty:
                continue
            drawn = True
            ax.plot(curve["epoch"], curve["mean"], marker="o", ms=3, color=colours[name], label=name)
            if (curve["n"] > 1).any():
                ax.fill_between(curve["epoch"], curve["min"], curve["max"], color=colours[name], alpha=0.18)
        _naive_lines(ax, naive, column, horizontal=True)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            _no_data(ax, "no finished run")
    figure.suptitle("Learning curves (line: mean over runs; band: range across runs)", fontsize=11)
    return to_png(figure)


def _naive_lines(
    ax: Axes,
    naive: Mapping[str, Mapping[str, float | None]] | None,
    metric: str,
    *,
    horizontal: bool,
) -> None:
    for index, (name, block) in enumerate(sorted((naive or {}).items())):
        value = block.get(metric)
        if value is None or not math.isfinite(value):
            continue
        style = _NAIVE_STYLES[index % len(_NAIVE_STYLES)]
        line = ax.axhline if horizontal else ax.axvline
        line(value, color="#444444", linestyle=style, linewidth=1, label=f"naive: {name}")


def _ci_panel(
    ax: Axes,
    order: Sequence[str],
    stats: Mapping[str, SummaryStats],
    colours: Mapping[str, str],
    title: str,
) -> None:
    """Seeds as dots, mean as a diamond, 95% CI as a bar; variants on the y axis."""
    for row, name in enumerate(order):
        s = stats[name]
        if s.mean is None:
            ax.text(
                0.02,
                row,
                "no value",
                va="center",
                transform=ax.get_yaxis_transform(),
                color="#b00020",
                fontsize=8,
            )
            continue
        if s.ci_low is not None and s.ci_high is not None:
            ax.errorbar(
                s.mean,
                row,
                xerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]],
                fmt="none",
                ecolor=colours[name],
                capsize=4,
                linewidth=2,
            )
        ax.plot(s.values, [row] * len(s.values), "o", color=colours[name], alpha=0.5, ms=4)
        ax.plot([s.mean], [row], "D", color=colours[name], ms=7)
        if not s.has_ci:
            ax.annotate(
                f"n={s.n}, no CI", (s.mean, row), xytext=(8, 6), textcoords="offset points", fontsize=8
            )
    ax.set_yticks(range(len(order)), list(order))
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)


def final_comparison(study: StudyResult, order: Sequence[str]) -> bytes:
    """Test skill (0 = strongest naive) and best val_loss per variant with 95% CIs."""
    colours = variant_colours(order)
    figure = Figure(figsize=(11, 0.55 * len(order) + 2.2), layout="constrained")
    naive = study.naive_baselines
    panels = (
        ("test_skill", None, "test skill (higher is better; 0 = strongest naive)"),
        ("best_val_loss", "val_loss", "best validation loss (lower is better)"),
    )
    for index, (metric, naive_metric, title) in enumerate(panels):
        ax = figure.add_subplot(1, 2, index + 1)
        stats = {n: study.variants[n].metrics[metric] for n in order}
        _ci_panel(ax, order, stats, colours, title)
        if naive_metric is None:
            ax.axvline(0.0, color="#444444", linestyle="--", linewidth=1, label="strongest naive")
            ax.legend(fontsize=8, loc="best")
        else:
            _naive_lines(ax, naive, naive_metric, horizontal=False)
            if naive:
                ax.legend(fontsize=8, loc="best")
    figure.suptitle("Final comparison (diamond: mean; bar: 95% CI; dots: units)", fontsize=11)
    return to_png(figure)


def paired_deltas(rows: Sequence[ContrastResult]) -> bytes:
    """One row per contrast: per-unit Δ as dots, mean as a diamond, 95% t interval as a bar."""
    figure = Figure(figsize=(9, 0.6 * max(len(rows), 1) + 1.8), layout="constrained")
    ax = figure.add_subplot(1, 1, 1)
    if not rows:
        _no_data(ax, "no planned contrast could be computed")
        return to_png(figure)
    labels = []
    for index, row in enumerate(rows):
        deltas = [d for d in row.deltas if d is not None]
        ax.plot(deltas, [index] * len(deltas), "o", color="#1f77b4", alpha=0.6, ms=5)
        mean, low, high = row.mean_delta, row.ci_low, row.ci_high
        if mean is not None and low is not None and high is not None:
            ax.errorbar(mean, index, xerr=[[mean - low], [high - mean]], fmt="none", ecolor="#333", capsize=4)
        if mean is not None:
            ax.plot([mean], [index], "D", color="#333", ms=7)
        p_text = fmt_p(row.p_adjusted)
        labels.append(f"{row.a} − {row.b}\n({row.role}, n={row.n}, Holm p={p_text})")
    ax.axvline(0.0, color="#b00020", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("paired difference Δ per unit (test skill; > 0 favours the first variant)")
    ax.grid(axis="x", alpha=0.3)
    figure.suptitle("Paired differences per unit (dots), mean (diamond), 95% t interval (bar)", fontsize=11)
    return to_png(figure)


def compute_figure(
    study: StudyResult,
    metrics: pd.DataFrame,
    order: Sequence[str],
    grad_clip: float | None = None,
) -> bytes:
    """Runtime, throughput, peak memory per variant, and the mean grad-norm curve
    (with the clipping threshold, above which clipping shaped the updates)."""
    colours = variant_colours(order)
    figure = Figure(figsize=(11, 7), layout="constrained")
    panels = (
        ("runtime_s", "runtime per run (s)"),
        ("samples_per_s", "throughput (samples/s)"),
        ("peak_rss_mb", "peak memory, max RSS (MB)"),
    )
    for index, (field, title) in enumerate(panels):
        ax = figure.add_subplot(2, 2, index + 1)
        stats: dict[str, SummaryStats] = {n: getattr(study.variants[n], field) for n in order}
        if all(s.mean is None for s in stats.values()):
            _no_data(ax, "not recorded")
            ax.set_title(title)
            continue
        for row, name in enumerate(order):
            s = stats[name]
            if s.mean is None:
                continue
            ax.barh(row, s.mean, color=colours[name], alpha=0.6)
            ax.plot(s.values, [row] * len(s.values), "o", color=colours[name], ms=4)
        ax.set_yticks(range(len(order)), list(order))
        ax.invert_yaxis()
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    ax = figure.add_subplot(2, 2, 4)
    drawn = False
    for name in order:
        curve = mean_curve(metrics, name, "grad_norm")
        if curve.empty:
            continue
        drawn = True
        ax.plot(curve["epoch"], curve["mean"], marker="o", ms=3, color=colours[name], label=name)
    ax.set_title("gradient norm per epoch (mean over runs)")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if drawn and grad_clip:
        ax.axhline(grad_clip, color="#444444", linestyle="--", linewidth=1, label=f"grad_clip {grad_clip:g}")
    if drawn:
        positive = metrics["grad_norm"].dropna() if "grad_norm" in metrics.columns else pd.Series()
        if len(positive) and (pd.to_numeric(positive, errors="coerce") > 0).all():
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    else:
        _no_data(ax, "not logged")
    figure.suptitle("Compute", fontsize=11)
    return to_png(figure)


def budget_curve(budget: BudgetResult) -> bytes:
    """Δ test skill against training steps for the primary contrast and the positive control:
    the mean paired difference with its 95% t interval as a band, filled markers where the
    budget's sign-flip p ≤ α (unadjusted). The answer before a sentence of it is read."""
    figure = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = figure.add_subplot(1, 1, 1)
    curves = budget.contrasts
    if not curves:
        _no_data(ax, "no budget curve: the runs scored no test budgets")
        return to_png(figure)
    for index, curve in enumerate(curves):
        colour = _PALETTE[index % len(_PALETTE)]
        points = [(p, p.mean_delta) for p in curve.points if p.mean_delta is not None]
        label = f"{curve.a} − {curve.b} ({curve.role.replace('_', ' ')})"
        ax.plot([p.step for p, _ in points], [mean for _, mean in points], "-", color=colour, label=label)
        banded = [
            (p.step, low, high)
            for p, _ in points
            if (low := p.ci_low) is not None and (high := p.ci_high) is not None
        ]
        ax.fill_between(
            [step for step, _, _ in banded],
            [low for _, low, _ in banded],
            [high for _, _, high in banded],
            color=colour,
            alpha=0.18,
            linewidth=0,
        )
        for point, mean in points:
            filled = point.significant
            ax.plot(
                [point.step],
                [mean],
                "o",
                color=colour,
                markerfacecolor=colour if filled else "white",
                ms=6,
            )
    ax.axhline(0.0, color="#b00020", linestyle="--", linewidth=1)
    ax.set_xlabel("training steps (budget)")
    ax.set_ylabel("Δ test skill (a − b; > 0 favours a)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(
        "Δ test skill along the run: mean over units, 95% t band; "
        f"filled = sign-flip p ≤ {ALPHA:g} at that budget",
        fontsize=9,
    )
    return to_png(figure)


def forest_rows(
    row: ContrastResult,
) -> list[tuple[str, tuple[float | None, float | None, float | None], bool]]:
    """One contrast's block of the forest plot: (label, (mean, low, high), is the pooled row):
    each series and each fold when there are several, each test period, the new-period
    estimate, then the pooled Δ over every unit."""
    lines: list[tuple[str, tuple[float | None, float | None, float | None], bool]] = []
    breadth = row.breadth
    for groups in ([], []) if breadth is None else (breadth.series, breadth.folds):
        if len(groups) > 1:
            lines += [
                (group.name, (group.mean_delta, group.ci_low, group.ci_high), False) for group in groups
            ]
    for period in [] if row.within_test is None else row.within_test.periods:
        lines.append(
            (
                period_name(period.start, period.end),
                (period.mean_delta, period.ci_low, period.ci_high),
                False,
            )
        )
    estimate = None if breadth is None else breadth.new_period
    if estimate is not None:
        lines.append(
            ("a new period (random effects)", (estimate.mean, estimate.ci_low, estimate.ci_high), False)
        )
    lines.append((f"{row.a} − {row.b}: every unit", (row.mean_delta, row.ci_low, row.ci_high), True))
    return lines


def period_forest(rows: Sequence[ContrastResult]) -> bytes:
    """Δ test skill per series, per fold, per test period and for a new period (dots, interval
    bars) and pooled over every unit (diamond), one block per contrast; dashed line: Δ = 0."""
    blocks = [forest_rows(row) for row in rows if row.within_test is not None or row.breadth is not None]
    lines = sum(len(block) for block in blocks)
    figure = Figure(figsize=(9, 0.32 * max(lines, 3) + 1.6), layout="constrained")
    ax = figure.add_subplot(1, 1, 1)
    if not lines:
        _no_data(ax, "no test periods were scored")
        return to_png(figure)
    labels: list[str] = []
    for index, block in enumerate(blocks):
        colour = _PALETTE[index % len(_PALETTE)]
        for label, estimate, pooled in block:
            _interval_mark(ax, len(labels), estimate, colour, whole=pooled)
            labels.append(label)
    ax.axvline(0.0, color="#b00020", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Δ test skill (a − b; > 0 favours a), mean over units with its t interval")
    ax.grid(axis="x", alpha=0.3)
    figure.suptitle(
        "The answer per series, fold and test period (dots) and over every unit (diamonds)", fontsize=11
    )
    return to_png(figure)


def _interval_mark(
    ax: Axes, y: int, estimate: tuple[float | None, float | None, float | None], colour: str, *, whole: bool
) -> None:
    """One row of a forest plot: the mean (a diamond for the whole split, a dot per period) and
    its interval as a bar; nothing where the mean is undefined."""
    mean, low, high = estimate
    if mean is None:
        return
    ax.plot([mean], [y], "D" if whole else "o", color=colour, ms=7 if whole else 5)
    if low is not None and high is not None:
        ax.plot([low, high], [y, y], "-", color=colour, lw=2.5 if whole else 1.5)
