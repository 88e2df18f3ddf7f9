"""The ``tune:`` section: each arm's learning rates chosen on validation only (docs/training.md).

One untuned rate for every arm may measure which arm that rate happens to suit. With
``tune.enabled`` each tuned arm trains once per grid point and tuning seed (rule
``tune_train``, validation only: no test pass), at rates ``multiplier x`` its configured
``learning_rate`` and ``encoder_learning_rate`` (one shared grid, the ratio of the two
rates fixed), and ``select_lr`` keeps the multiplier with the lowest mean validation loss
at the end of the tuning budget. The arm's train jobs then read those rates. Tuning seeds
are never experiment seeds, so no experiment run is ever chosen on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflow_scripts.config.base import TrainConfig, VariantConfig

#: What a tuned arm's rates are multiplied by: the two train keys the grid scales.
RATE_KEYS = ("learning_rate", "encoder_learning_rate")


def point_name(multiplier: float) -> str:
    """The grid point's file-name token, e.g. ``x0.3``: a value, so a grid edit keeps the others."""
    return f"x{multiplier:g}"


def point_multiplier(name: str) -> float:
    """The inverse of :func:`point_name`."""
    if not name.startswith("x"):
        raise ValueError(f"{name!r} is not a grid point name (allowed: x<multiplier>, e.g. x0.3)")
    return float(name[1:])


@dataclass(frozen=True)
class TuneConfig:
    """The tuning grid, seeds, arms and budget."""

    enabled: bool = False
    multipliers: tuple[float, ...] = (0.3, 1.0, 3.0)
    seeds: tuple[int, ...] = (1000, 1001)
    variants: tuple[str, ...] | None = None
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def points(self) -> list[str]:
        return [point_name(m) for m in self.multipliers]

    def to_params(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "multipliers": list(self.multipliers),
            "seeds": list(self.seeds),
            "variants": None if self.variants is None else list(self.variants),
            "train": {key: self.train[key] for key in sorted(self.train)},
        }


def tuning_variant(variant: VariantConfig, tune: TuneConfig, point: str) -> VariantConfig:
    """The arm as one tuning run trains it: the tuning budget, its rates times the point's multiplier."""
    multiplier = point_multiplier(point)
    train = {**variant.train.to_params(), **tune.train}
    for key in RATE_KEYS:
        train[key] = train[key] * multiplier
    return dataclasses.replace(variant, train=TrainConfig.from_params(train))


def with_rates(variant: VariantConfig, rates: Mapping[str, float]) -> VariantConfig:
    """The arm at the rates its tuning chose (``select_lr``'s selected.json)."""
    train = {**variant.train.to_params(), **{key: float(rates[key]) for key in RATE_KEYS}}
    return dataclasses.replace(variant, train=TrainConfig.from_params(train))
