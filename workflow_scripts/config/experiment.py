"""The whole experiment: the sections together, and what depends on more than one of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflow_scripts.config.base import (
    DEFAULT_MODEL,
    TIMESERIES_INITS,
    ContrastConfig,
    DataConfig,
    GpuSlotsConfig,
    ModelConfig,
    TrainConfig,
    VariantConfig,
)
from workflow_scripts.config.pretraining import PretrainConfig
from workflow_scripts.config.tune import TuneConfig


@dataclass(frozen=True)
class ExperimentConfig:
    """The whole experiment: one model, its series (each with its folds), the enabled variants
    and the seeds. A paired unit is one (series, fold, seed)."""

    model: ModelConfig
    series: tuple[DataConfig, ...]
    train: TrainConfig
    variants: Mapping[str, VariantConfig]
    seeds: tuple[int, ...]
    pretrain: PretrainConfig  # docs/controls.md
    contrasts: tuple[ContrastConfig, ...] = ()
    gpu_slots: GpuSlotsConfig = field(default_factory=GpuSlotsConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)  # docs/training.md
    #: further encoders by name (``models:``); ``model`` is the one named text (docs/models.md)
    models: Mapping[str, ModelConfig] = field(default_factory=dict)

    def named_model(self, name: str) -> ModelConfig:
        """The model called ``name``: text is ``model:``, any other a ``models:`` entry."""
        return self.model if name == DEFAULT_MODEL else self.models[name]

    def variant_model(self, variant: str) -> ModelConfig:
        """The model enabled arm ``variant`` starts from (or, init random, whose architecture it builds)."""
        return self.named_model(self.variants[variant].model)

    @property
    def used_models(self) -> list[str]:
        """text (the pretraining and the report use it always), then every model an enabled arm names."""
        named = {variant.model for variant in self.variants.values()} - {DEFAULT_MODEL}
        return [DEFAULT_MODEL, *sorted(named)]

    @property
    def variant_names(self) -> list[str]:
        return sorted(self.variants)

    @property
    def series_names(self) -> list[str]:
        """The series in configuration order (each one's derived data: data/derived/<name>/)."""
        return [data.name for data in self.series]

    @property
    def folds(self) -> int:
        """Folds per series (data.folds: one value for the study, checks.check_series)."""
        return self.series[0].folds

    def series_config(self, name: str) -> DataConfig:
        """The data settings of series ``name``."""
        for data in self.series:
            if data.name == name:
                return data
        raise KeyError(f"no series {name!r} (series: {', '.join(self.series_names)})")

    def pretrain_source(self, series: str) -> DataConfig:
        """The dataset the positive control of ``series`` pretrains on: pretrain.data when set (one
        pretraining serves every series), else the series itself (its earliest fold's train split)."""
        return self.pretrain.data if self.pretrain.data is not None else self.series_config(series)

    @property
    def needs_pretrain(self) -> bool:
        """Whether an enabled variant starts from the time-series-pretrained encoder."""
        return any(variant.init in TIMESERIES_INITS for variant in self.variants.values())

    def to_params(self) -> dict[str, Any]:
        return {
            "series": [data.to_params() for data in self.series],
            "model": self.model.to_params(),
            "seeds": list(self.seeds),
            "train": self.train.to_params(),
            "variants": {name: self.variants[name].to_params() for name in self.variant_names},
            "contrasts": [contrast.to_params() for contrast in self.contrasts],
            "pretrain": self.pretrain.to_params(),
            **({"tune": self.tune.to_params()} if self.tune.enabled else {}),
            **(
                {"models": {name: self.models[name].to_params() for name in sorted(self.models)}}
                if self.models
                else {}
            ),
        }

    def tuned_arms(self) -> list[str]:
        """The enabled arms tuned on their own (none when tuning is off).

        An A/A arm (the ``a`` of a negative_control contrast) is never tuned on its own: it
        trains at its twin's choice (:meth:`rate_source`), or the A/A pair would differ in its
        rates whenever the two tunings' noise picked different grid points.
        """
        if not self.tune.enabled:
            return []
        wanted = self.variant_names if self.tune.variants is None else self.tune.variants
        tuned = [name for name in self.variant_names if name in wanted]
        copies = {contrast.a for contrast in self._aa_contrasts() if contrast.b in tuned}
        return [name for name in tuned if name not in copies]

    def rate_source(self, name: str) -> str | None:
        """The arm whose selected rates ``name`` trains at: itself, its A/A twin, or None."""
        tuned = self.tuned_arms()
        for contrast in self._aa_contrasts():
            if contrast.a == name and contrast.b in tuned:
                return contrast.b
        return name if name in tuned else None

    def _aa_contrasts(self) -> list[ContrastConfig]:
        """The negative_control contrasts between two enabled arms (``a`` is the A/A copy of ``b``)."""
        return [
            contrast
            for contrast in self.contrasts
            if contrast.role == "negative_control"
            and contrast.a in self.variants
            and contrast.b in self.variants
        ]
