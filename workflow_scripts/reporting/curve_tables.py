"""Tables of where the answer lives: along the budget, per arm's convergence, per channel.

Pure functions from results/summary.json to rows of strings for the templates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workflow_scripts.reporting.formatting import fmt_value
from workflow_scripts.reporting.sentences import budget_cell


def budget_rows(budget: Mapping[str, Any]) -> dict[str, Any]:
    """One row per scored budget: each curve contrast's Δ [95% CI] and its sign-flip p."""
    curves = budget.get("contrasts") or []
    steps = sorted({p["step"] for curve in curves for p in curve["points"]})
    columns = [f"{c['a']} − {c['b']} ({c['role'].replace('_', ' ')})" for c in curves]
    rows = []
    for step in steps:
        cells = []
        for curve in curves:
            point = next((p for p in curve["points"] if p["step"] == step), None)
            if point is None:
                cells.append("—")
                continue
            cells.append(budget_cell(point))
        rows.append({"step": f"{step:,}", "cells": cells})
    return {"columns": columns, "rows": rows}


def convergence_status_rows(summary: Mapping[str, Any], order: Sequence[str]) -> list[dict[str, str]]:
    """Per arm: converged or not by the stated rule, the largest last-quarter gain, late bests."""
    rows = []
    for name in order:
        status = (summary["variants"][name].get("convergence")) or {}
        if not status:
            continue
        gain = status.get("max_last_quarter_gain")
        rows.append(
            {
                "variant": name,
                "converged": "yes" if status.get("converged") else "no",
                "seeds": f"{status.get('n_converged', 0)} of {status.get('n_seeds', 0)}",
                "max_gain": "—" if gain is None else f"{gain:.1%}",
                "late_best": f"{status.get('best_in_last_quarter', 0)} of {status.get('n_seeds', 0)}",
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


def channel_rows(summary: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """Test skill per timeframe and field for each arm and the learned reference (0 = the
    strongest naive of the field's group, chosen on validation)."""
    names: list[str] = []
    for name in order:
        for channel in summary["variants"][name].get("channel_skill") or {}:
            if channel not in names:
                names.append(channel)
    names = sorted(names, key=_channel_order(names))
    reference = (summary.get("reference") or {}).get("channel_skill") or {}
    rows = [
        {
            "variant": name,
            "cells": [
                fmt_value((summary["variants"][name].get("channel_skill") or {}).get(c)) for c in names
            ],
        }
        for name in order
    ]
    if reference:
        rows.append({"variant": "ridge reference", "cells": [fmt_value(reference.get(c)) for c in names]})
    return {"columns": names, "rows": rows}
