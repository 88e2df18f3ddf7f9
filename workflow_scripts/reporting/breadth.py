"""How one contrast holds across series and folds, and what it predicts for a new one.

A contrast's pooled test runs over every paired unit (series, fold, seed): a claim about
these series in these periods. A reviewer varies more than the seed, so each contrast on a
test metric also gets

- its paired Δ **per series** and **per fold** (mean over the group's units, Student-t
  interval over them): where the effect lives;
- a **random-effects estimate for a new period**: the (series, fold) cells are the groups,
  each with its mean Δ over seeds and that mean's sampling variance; the estimate and its
  interval (:func:`~workflow_scripts.reporting.random_effects.random_effects`) say what Δ to
  expect in a period this study did not see;
- a **random-effects estimate for a new series**: the series are the groups, each with its
  mean Δ over all its units.

With fewer than two groups there is no between-group spread to estimate: the estimate is
None and the report says why; with fewer than ``random_effects.MIN_GROUPS`` it is computed
but marked uninformative.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from workflow_scripts.reporting.contrast_results import Breadth, GroupDelta, PairedComparison
from workflow_scripts.reporting.random_effects import RandomEffects, group_effects, random_effects
from workflow_scripts.reporting.stats import t_interval
from workflow_scripts.reporting.units import Unit


def unit_deltas(row: PairedComparison) -> list[tuple[Unit, float]]:
    """The contrast's finite paired differences with their units."""
    return [
        (unit, float(delta)) for unit, delta in zip(row.units, row.deltas, strict=True) if delta is not None
    ]


def grouped(
    pairs: Sequence[tuple[Unit, float]], key: Callable[[Unit], Hashable]
) -> dict[Hashable, list[float]]:
    """The Δ of each group of units, groups in unit order."""
    groups: dict[Hashable, list[float]] = {}
    for unit, delta in sorted(pairs):
        groups.setdefault(key(unit), []).append(delta)
    return groups


def group_deltas(groups: dict[Hashable, list[float]], name: Callable[[Hashable], str]) -> list[GroupDelta]:
    """Mean Δ and t interval per group."""
    rows = []
    for group, values in groups.items():
        low, high = t_interval(values)
        rows.append(GroupDelta(name(group), len(values), sum(values) / len(values), low, high))
    return rows


def new_unit_estimate(groups: dict[Hashable, list[float]]) -> RandomEffects | None:
    """The random-effects estimate over ``groups`` (None with fewer than two groups, or when no
    group has the two units a within-group variance needs)."""
    if len(groups) < 2 or all(len(values) < 2 for values in groups.values()):
        return None
    effects, variances = group_effects(groups)
    return random_effects(effects, variances)


def breadth(row: PairedComparison) -> Breadth:
    """The contrast per series and per fold, and its new-period and new-series estimates."""
    pairs = unit_deltas(row)
    by_series = grouped(pairs, lambda unit: unit.series)
    by_fold = grouped(pairs, lambda unit: unit.fold)
    by_cell = grouped(pairs, lambda unit: (unit.series, unit.fold))
    return Breadth(
        series=group_deltas(by_series, str),
        folds=group_deltas(by_fold, lambda fold: f"fold {fold}"),
        # one fold: the cells are the series, and their spread says nothing about periods
        new_period=new_unit_estimate(by_cell) if len(by_fold) > 1 else None,
        new_series=new_unit_estimate(by_series),
    )
