"""The ``pretrain:`` section: the positive control's time-series pretraining (docs/controls.md).

``build_pretrain`` turns the validated raw section into a ``PretrainConfig``;
``check_pretrain`` refuses combinations that cannot run, naming the key. The pretrain
rule receives ``PretrainConfig.to_params()`` (canonical JSON), so changing any of these
settings reruns the pretraining and, through its verified output, only the variants with
``init: timeseries``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflow_scripts.config import (
    TIMESERIES_INITS,
    ConfigError,
    DataConfig,
    ExperimentConfig,
    TrainConfig,
    VariantConfig,
)

#: The name the pretraining run carries (in its logs and its exported manifest).
PRETRAIN_VARIANT = "pretrain"


@dataclass(frozen=True)
class PretrainConfig:
    """One pretraining run: source data, cut, seed and training settings."""

    enabled: bool
    seed: int
    source_fraction: float
    data: DataConfig | None
    train: TrainConfig

    def variant(self) -> VariantConfig:
        """The run as the Trainer sees it: the architecture randomly initialised, trained from step 1.

        No budget curve: the pretraining's "test" is its own held-out samples, already scored
        on every epoch as validation, so scoring them again per budget would buy nothing.
        """
        train = dataclasses.replace(self.train, test_budgets=())
        return VariantConfig(name=PRETRAIN_VARIANT, train=train, init="random", freeze_epochs=0)

    def to_params(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "seed": self.seed,
            "source_fraction": self.source_fraction,
            "data": None if self.data is None else self.data.to_params(),
            "train": self.train.to_params(),
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PretrainConfig:
        data = params.get("data")
        return cls(
            enabled=bool(params["enabled"]),
            seed=int(params["seed"]),
            source_fraction=float(params["source_fraction"]),
            data=None if data is None else DataConfig.from_params(data),
            train=TrainConfig.from_params(params["train"]),
        )


def build_pretrain(
    raw: Mapping[str, Any] | None,
    schema: Mapping[str, Any],
    train_values: Mapping[str, Any],
    experiment_data: DataConfig,
) -> PretrainConfig:
    """The pretraining settings: the experiment's train: section with pretrain.train overrides."""
    section = schema["properties"]["pretrain"]["properties"]
    values = {key: (raw or {}).get(key, sub["default"]) for key, sub in section.items()}
    data = None
    if values["data"] is not None:
        data_schema = schema["properties"]["data"]["properties"]
        merged = {key: values["data"].get(key, sub["default"]) for key, sub in data_schema.items()}
        data = DataConfig.from_params(merged)
    return PretrainConfig(
        enabled=bool(values["enabled"]),
        seed=int(values["seed"]),
        source_fraction=float(values["source_fraction"]),
        data=data,
        train=TrainConfig.from_params({**train_values, **values["train"]}),
    )


def check_pretrain(experiment: ExperimentConfig) -> None:
    """Refuse what cannot run: a timeseries variant without pretraining, an unfit source dataset."""
    problems = []
    pretrain: PretrainConfig = experiment.pretrain
    for name, variant in sorted(experiment.variants.items()):
        if variant.init in TIMESERIES_INITS and not pretrain.enabled:
            problems.append(
                f"variants.{name}.init = {variant.init} needs pretrain.enabled: true (it is false); "
                f"enable the pretraining or disable the variant (variants.{name}.enabled: false)"
            )
        if variant.init in TIMESERIES_INITS and variant.encoder != "checkpoint":
            problems.append(
                f"variants.{name}: init {variant.init} with encoder {variant.encoder} is refused "
                "(allowed: encoder checkpoint, the pretrained architecture)"
            )
        if variant.init_seed_offset and (variant.init != "random" or variant.encoder != "checkpoint"):
            problems.append(
                f"variants.{name}.init_seed_offset = {variant.init_seed_offset} only applies to init random "
                f"with encoder checkpoint (this variant has init {variant.init}, encoder {variant.encoder})"
            )
    uses_pretrain = experiment.needs_pretrain
    if uses_pretrain and pretrain.seed in experiment.seeds:
        problems.append(
            f"pretrain.seed = {pretrain.seed} is also in seeds: that seed's init timeseries run would start "
            "its batches, masks and dropout exactly as the pretraining did (allowed: a seed not in seeds)"
        )
    source, data = pretrain.data, experiment.data
    if source is not None:
        same_shape = (source.timeframes, source.seq_len, source.patch_len, source.features) == (
            data.timeframes,
            data.seq_len,
            data.patch_len,
            data.features,
        )
        if not same_shape:
            problems.append(
                "pretrain.data: timeframes, seq_len, patch_len and features must equal data:'s "
                "(the pretrained encoder is fine-tuned on windows of that shape)"
            )
        if source.path == data.path and (
            source.train_fraction,
            source.val_fraction,
            source.sample_stride,
        ) != (
            data.train_fraction,
            data.val_fraction,
            data.sample_stride,
        ):
            problems.append(
                "pretrain.data: the experiment's own input with other train_fraction, val_fraction or "
                "sample_stride would put the experiment's validation or test bars in the pretraining's "
                "train split (allowed: leave pretrain.data null to pretrain on the experiment's train split)"
            )
        if source.name == data.name and source != data:
            problems.append(
                f"pretrain.data.name = {source.name!r} is the experiment's dataset name with other "
                "settings (allowed: another name, so both derived directories can exist)"
            )
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
