"""Which pretraining helps: every pretrained encoder against its random twin, at every budget.

The headline answers the study's question (text vs random, the primary contrast). Below it, a
study with further encoders (``models:``, docs/models.md) gets one line per other pretraining
(each contrast of role ``pretraining``: an encoder vs its random twin, or the text encoder vs
it), and a table of every pretrained arm's Δ test skill at each scored budget and at the kept
checkpoint, with the bar-pretrained controls beside them for scale. Numbers come from collect
(results/summary.json: the contrast family and the budget curves); the words are written here,
at report time. Pure functions of the study and the experiment's params.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflow_scripts.config.base import DEFAULT_MODEL
from workflow_scripts.reporting.contrast_results import ContrastResult
from workflow_scripts.reporting.formatting import fmt_p
from workflow_scripts.reporting.results import StudyResult
from workflow_scripts.reporting.sentences import CONCLUSION, budget_cell, contrast_sentence, row_delta

#: The rows of the table, in order, and what each row's first cell calls its pretraining.
_TABLE_ROLES = ("primary", "pretraining", "positive_control", "encoder_control")
_CONTROL_NAMES = {
    "positive_control": "bars (control: whole model, own train split)",
    "encoder_control": "bars (control: encoder only, own train split)",
}


def arm_model(experiment: Mapping[str, Any], arm: str) -> str:
    """The named model an arm starts from (text unless its params name another)."""
    variant = (experiment.get("variants") or {}).get(arm) or {}
    return str(variant.get("model", DEFAULT_MODEL))


def pretraining_lines(study: StudyResult) -> list[str]:
    """One sentence per other pretraining (role pretraining, primary metric), Holm-adjusted."""
    family = study.contrasts
    return [contrast_sentence(row) for row in family.on(family.primary_metric) if row.role == "pretraining"]


def _pretraining_name(row: ContrastResult, experiment: Mapping[str, Any]) -> str:
    """What a row compares: "<model>" against its twin, "text vs <model>", or a control."""
    if row.role in _CONTROL_NAMES:
        return _CONTROL_NAMES[row.role]
    a, b = arm_model(experiment, row.a), arm_model(experiment, row.b)
    return a if a == b else f"{a} vs {b}"


def pretraining_table(study: StudyResult, experiment: Mapping[str, Any]) -> dict[str, Any] | None:
    """{"steps": [...], "rows": [{pretraining, contrast, cells, final}]}; None without any
    contrast of role pretraining (a one-encoder study: the budget table already says it all)."""
    family = study.contrasts
    rows_on_metric = family.on(family.primary_metric)
    if not any(row.role == "pretraining" for row in rows_on_metric):
        return None
    curves = {(c.a, c.b): c for c in study.budget.contrasts}
    steps = sorted({p.step for curve in curves.values() for p in curve.points})
    rows = []
    for role in _TABLE_ROLES:
        for row in (r for r in rows_on_metric if r.role == role):
            curve = curves.get((row.a, row.b))
            points = {p.step: p for p in curve.points} if curve else {}
            rows.append(
                {
                    "pretraining": _pretraining_name(row, experiment),
                    "contrast": f"{row.a} − {row.b}",
                    "cells": [budget_cell(points[s]) if s in points else "—" for s in steps],
                    "final": f"{row_delta(row, CONCLUSION)}, Holm p = {fmt_p(row.p_adjusted)}",
                }
            )
    return {"steps": [f"{step:,}" for step in steps], "rows": rows}
