"""The learned reference pooled over the (series, fold) cells it was fitted on.

The reference rule fits and scores the ridge once per series and fold, on that fold's own
splits (rules/reference.smk). An arm's mean test skill is a mean over its units, and every
cell holds the same number of seeds, so the like-for-like reference number is the mean of the
cells' skills. Each number here is that mean over the cells that report it (per channel, per
test period, per draw by position); ``cells`` keeps each cell's own test skill.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: The reference's numbers that pool as a mean over cells.
POOLED_NUMBERS = ("val_skill", "test_skill", "test_skill_mae", "test_skill_price")


def _mean(values: Sequence[Any]) -> float | None:
    kept = [
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]
    return sum(kept) / len(kept) if kept else None


def _mean_by_key(blocks: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    keys = sorted({key for block in blocks for key in block})
    return {key: _mean([block.get(key) for block in blocks]) for key in keys}


def _mean_by_position(
    lists: Sequence[Sequence[Mapping[str, Any]]], key: str
) -> list[dict[str, float | None]]:
    """Entry i of every cell's list, ``key`` averaged (cells with fewer entries skip it)."""
    count = max((len(items) for items in lists), default=0)
    return [{key: _mean([items[i].get(key) for items in lists if i < len(items)])} for i in range(count)]


def pool_references(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One reference summary from the per-cell ones (see the module docstring)."""
    if not cells:
        raise ValueError("no reference summary to pool")
    first = cells[0]
    pooled: dict[str, Any] = {"name": first.get("name", "ridge"), "description": first.get("description", "")}
    for key in POOLED_NUMBERS:
        pooled[key] = _mean([cell.get(key) for cell in cells])
    pooled["channel_skill"] = _mean_by_key([cell.get("channel_skill") or {} for cell in cells])
    pooled["test_periods"] = _mean_by_position([cell.get("test_periods") or [] for cell in cells], "skill")
    pooled["test_draws"] = _mean_by_position([cell.get("test_draws") or [] for cell in cells], "skill")
    pooled["cells"] = [
        {"series": cell.get("series"), "fold": cell.get("fold"), "test_skill": cell.get("test_skill")}
        for cell in cells
    ]
    return pooled
