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

from workflow_scripts.config import (
    ConfigError,
    ContrastConfig,
    ExperimentConfig,
    TrainConfig,
    VariantConfig,
)

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

    def tuned(self, experiment: ExperimentConfig) -> list[str]:
        """The enabled arms tuned on their own (none when tuning is off).

        An A/A arm (the ``a`` of a negative_control contrast) is never tuned on its own: it
        trains at its twin's choice (:meth:`rate_source`), or the A/A pair would differ in its
        rates whenever the two tunings' noise picked different grid points.
        """
        if not self.enabled:
            return []
        wanted = experiment.variant_names if self.variants is None else self.variants
        tuned = [name for name in experiment.variant_names if name in wanted]
        copies = {contrast.a for contrast in _aa_contrasts(experiment) if contrast.b in tuned}
        return [name for name in tuned if name not in copies]

    def rate_source(self, experiment: ExperimentConfig, name: str) -> str | None:
        """The arm whose selected rates ``name`` trains at: itself, its A/A twin, or None."""
        tuned = self.tuned(experiment)
        for contrast in _aa_contrasts(experiment):
            if contrast.a == name and contrast.b in tuned:
                return contrast.b
        return name if name in tuned else None

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


def _aa_contrasts(experiment: ExperimentConfig) -> list[ContrastConfig]:
    """The negative_control contrasts between two enabled arms (``a`` is the A/A copy of ``b``)."""
    return [
        contrast
        for contrast in experiment.contrasts
        if contrast.role == "negative_control"
        and contrast.a in experiment.variants
        and contrast.b in experiment.variants
    ]


def build_tune(raw: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> TuneConfig:
    section = schema["properties"]["tune"]["properties"]
    values = {key: (raw or {}).get(key, sub["default"]) for key, sub in section.items()}
    return TuneConfig(
        enabled=bool(values["enabled"]),
        multipliers=tuple(float(m) for m in values["multipliers"]),
        seeds=tuple(int(s) for s in values["seeds"]),
        variants=None if values["variants"] is None else tuple(values["variants"]),
        train=dict(values["train"]),
    )


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


def check_tune(experiment: ExperimentConfig, tune: TuneConfig, defined: Mapping[str, Any]) -> None:
    """Refuse tuning seeds that are experiment (or pretraining) seeds and arms that do not exist."""
    if not tune.enabled:
        return
    problems = []
    shared = sorted(set(tune.seeds) & set(experiment.seeds))
    if shared:
        problems.append(
            f"tune.seeds {shared} are also in seeds: the rates would be chosen on runs the study then "
            "reports (allowed: seeds not in seeds)"
        )
    if experiment.needs_pretrain and experiment.pretrain.seed in tune.seeds:
        problems.append(
            f"tune.seeds holds pretrain.seed = {experiment.pretrain.seed} (allowed: another seed)"
        )
    for key in RATE_KEYS:
        if key in tune.train:
            problems.append(
                f"tune.train.{key}: the rates are what the grid scales (allowed: set them under train: or "
                "the variant, and the grid under tune.multipliers)"
            )
    for name in tune.variants or ():
        if name not in defined:
            problems.append(
                f"tune.variants: '{name}' is not a variant defined under variants "
                f"(defined: {', '.join(sorted(defined))})"
            )
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
