"""Tables of where the answer lives: along the budget, per arm's convergence, per channel.

Pure functions from results/summary.json to rows of strings for the templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workflow_scripts.reporting.formatting import fmt_p, fmt_value, period_name
from workflow_scripts.reporting.results import BudgetResult, StudyResult
from workflow_scripts.reporting.sentences import budget_cell, period_cell


def budget_rows(budget: BudgetResult) -> dict[str, Any]:
    """One row per scored budget: each curve contrast's Δ [95% CI] and its sign-flip p."""
    curves = budget.contrasts
    steps = sorted({p.step for curve in curves for p in curve.points})
    columns = [f"{c.a} − {c.b} ({c.role.replace('_', ' ')})" for c in curves]
    rows = []
    for step in steps:
        cells = []
        for curve in curves:
            point = next((p for p in curve.points if p.step == step), None)
            if point is None:
                cells.append("—")
                continue
            cells.append(budget_cell(point))
        rows.append({"step": f"{step:,}", "cells": cells})
    return {"columns": columns, "rows": rows}


def convergence_status_rows(study: StudyResult, order: Sequence[str]) -> list[dict[str, str]]:
    """Per arm: converged or not by the stated rule, the largest last-quarter gain, late bests."""
    rows = []
    for name in order:
        status = study.variants[name].convergence
        if status is None:
            continue
        gain = status.max_last_quarter_gain
        rows.append(
            {
                "variant": name,
                "converged": "yes" if status.converged else "no",
                "runs": f"{status.n_converged} of {status.n_runs}",
                "max_gain": "—" if gain is None else f"{gain:.1%}",
                "late_best": f"{status.best_in_last_quarter} of {status.n_runs}",
            }
        )
    return rows


_FIELDS = ("open", "high", "low", "close")


def _channel_order(names: Sequence[str]) -> Any:
    """Sort key: timeframes in first-seen order, then open, high, low, close, then the rest."""
    timeframes = list(dict.fromkeys(name.split(".", 1)[0] for name in names))

    def key(name: str) -> tuple[int, int, str]:
        timeframe, _, field = name.partition(".")
        rank = _FIELDS.index(field) if field in _FIELDS else len(_FIELDS)
        return timeframes.index(timeframe), rank, field

    return key


def channel_rows(study: StudyResult, order: Sequence[str]) -> dict[str, Any]:
    """Test skill per timeframe and field for each arm and the learned reference (0 = the
    strongest naive of the field's group, chosen on validation)."""
    names: list[str] = []
    for name in order:
        for channel in study.variants[name].channel_skill:
            if channel not in names:
                names.append(channel)
    names = sorted(names, key=_channel_order(names))
    reference = (study.reference or {}).get("channel_skill") or {}
    rows = [
        {
            "variant": name,
            "cells": [fmt_value(study.variants[name].channel_skill.get(c)) for c in names],
        }
        for name in order
    ]
    if reference:
        rows.append({"variant": "ridge reference", "cells": [fmt_value(reference.get(c)) for c in names]})
    return {"columns": names, "rows": rows}


def period_rows(study: StudyResult) -> dict[str, Any]:
    """Per test period, each primary-metric contrast's Δ [CI] and p; per contrast, the draw
    spread and the arm × period interaction test (reporting.within_test)."""
    contrasts = [
        (row, row.within_test)
        for row in study.contrasts.on(study.primary_metric)
        if row.within_test is not None
    ]
    columns = [f"{row.a} − {row.b} ({row.role.replace('_', ' ')})" for row, _ in contrasts]
    rows = []
    for index, span in enumerate(study.periods):
        cells = [
            period_cell(within.periods[index]) if index < len(within.periods) else "—"
            for _, within in contrasts
        ]
        rows.append({"period": period_name(span.start, span.end), "windows": span.n_windows, "cells": cells})
    holds = {True: "yes", False: "no", None: "—"}
    summary = [
        {
            "contrast": column,
            "heterogeneity": fmt_p(within.heterogeneity_p),
            "sign_holds": holds[within.sign_holds],
            "draw_sd": fmt_value(within.draw_sd),
            "seed_sd": fmt_value(row.sd_delta),
        }
        for column, (row, within) in zip(columns, contrasts, strict=True)
    ]
    return {"columns": columns, "rows": rows, "summary": summary}
