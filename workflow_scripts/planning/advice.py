"""Which settings fit a time budget: seeds, steps per run, arms. Pure, given a wall-time function.

Each option changes one setting and keeps the rest: the most seeds (the first ``k``), the most
steps per epoch (every run, the pretraining scaled by the same factor), or the most arms (the
primary contrast's two always kept; the others dropped from the last in name order). A budget
below the shortest single run's duration fits nothing, and says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from workflow_scripts.config.base import VariantConfig
from workflow_scripts.config.experiment import ExperimentConfig

WallOf = Callable[[ExperimentConfig], float]


def with_seeds(experiment: ExperimentConfig, k: int) -> ExperimentConfig:
    return dataclasses.replace(experiment, seeds=tuple(experiment.seeds[:k]))


def with_steps(experiment: ExperimentConfig, steps: int) -> ExperimentConfig:
    """Every arm at ``steps`` per epoch; the pretraining's steps scaled by the same factor."""
    factor = steps / experiment.train.steps_per_epoch

    def scaled(variant: VariantConfig) -> VariantConfig:
        per_epoch = max(1, round(variant.train.steps_per_epoch * factor))
        return dataclasses.replace(
            variant, train=dataclasses.replace(variant.train, steps_per_epoch=per_epoch)
        )

    pre = experiment.pretrain
    pre_steps = max(1, round(pre.train.steps_per_epoch * factor))
    return dataclasses.replace(
        experiment,
        train=dataclasses.replace(experiment.train, steps_per_epoch=steps),
        variants={name: scaled(v) for name, v in experiment.variants.items()},
        pretrain=dataclasses.replace(pre, train=dataclasses.replace(pre.train, steps_per_epoch=pre_steps)),
    )


def with_arms(experiment: ExperimentConfig, arms: list[str]) -> ExperimentConfig:
    keep = set(arms)
    contrasts = tuple(c for c in experiment.contrasts if c.a in keep and c.b in keep)
    variants = {name: v for name, v in experiment.variants.items() if name in keep}
    return dataclasses.replace(experiment, variants=variants, contrasts=contrasts)


def largest(low: int, high: int, fits: Callable[[int], bool]) -> int | None:
    """The largest ``n`` in ``[low, high]`` with ``fits(n)`` (``fits`` monotone), or None."""
    if not fits(low):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


def advice(
    experiment: ExperimentConfig, wall_of: WallOf, budget_s: float, shortest_run_s: float
) -> list[str]:
    """What fits ``budget_s``: one line per setting, or why nothing does."""
    if shortest_run_s > budget_s:
        return [
            f"no setting fits: the shortest single run alone takes {shortest_run_s:.0f} s, "
            f"more than the budget of {budget_s:.0f} s"
        ]
    if wall_of(experiment) <= budget_s:
        return ["the study as configured fits the budget"]
    lines = []
    seeds = largest(1, len(experiment.seeds), lambda k: wall_of(with_seeds(experiment, k)) <= budget_s)
    lines.append(f"seeds: {seeds} of {len(experiment.seeds)} fit" if seeds else "seeds: not even 1 fits")
    per_epoch = experiment.train.steps_per_epoch
    steps = largest(1, per_epoch, lambda n: wall_of(with_steps(experiment, n)) <= budget_s)
    epochs = experiment.train.epochs
    lines.append(
        f"steps per run: {steps * epochs} ({steps} per epoch instead of {per_epoch}) fit"
        if steps
        else "steps per run: not even 1 per epoch fits"
    )
    primary = [c for c in experiment.contrasts if c.role == "primary"]
    kept = [name for c in primary for name in (c.a, c.b) if name in experiment.variants]
    others = [name for name in experiment.variant_names if name not in kept]
    arms = largest(0, len(others), lambda k: wall_of(with_arms(experiment, kept + others[:k])) <= budget_s)
    lines.append(
        f"arms: {', '.join(kept + others[:arms])} ({len(kept) + arms} of {len(experiment.variants)}) fit"
        if arms is not None
        else f"arms: not even the primary pair ({', '.join(kept)}) fits"
    )
    return lines
