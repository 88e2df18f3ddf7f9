"""The settings table of the learning-rate selection (``select_lr``'s selected.json per arm).

Shows the grid, each tuned arm's choice and the validation losses it was chosen on, so a
reader can see that every arm had its own best rate and by how much the points differed.
Pure: selections in, rows out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workflow_scripts.reporting.formatting import fmt_value


def tuning_table(selections: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """{points, rows, criterion, seeds, steps} for the templates; None when nothing was tuned."""
    if not selections:
        return None
    points = sorted(
        {(row["multiplier"], row["point"]) for selection in selections for row in selection["grid"]}
    )
    rows = []
    for selection in sorted(selections, key=lambda s: str(s["variant"])):
        by_point = {row["point"]: row for row in selection["grid"]}
        cells = []
        for _multiplier, point in points:
            row = by_point.get(point)
            cells.append(
                {
                    "text": "—"
                    if row is None
                    else f"{fmt_value(row['mean_val_loss'])} ("
                    + ", ".join(f"seed {s}: {fmt_value(v)}" for s, v in row["val_losses"].items())
                    + ")",
                    "chosen": point == selection["point"],
                }
            )
        rows.append(
            {
                "variant": selection["variant"],
                "choice": f"{selection['point']}: learning_rate {selection['learning_rate']:.3g}, "
                f"encoder_learning_rate {selection['encoder_learning_rate']:.3g}",
                "cells": cells,
            }
        )
    first = selections[0]
    return {
        "points": [point for _multiplier, point in points],
        "rows": rows,
        "criterion": first["criterion"],
        "seeds": first["tuning_seeds"],
        "steps": first["tuning_steps"],
    }
