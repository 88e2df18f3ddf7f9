"""The ``pretrain:`` section: the positive control's time-series pretraining (docs/controls.md).

The pretrain rule receives ``PretrainConfig.to_params()`` (canonical JSON), so changing
any of these settings reruns the pretraining and, through its verified output, only the
variants with ``init: timeseries`` or ``timeseries_encoder``. Built by ``loader``,
checked by ``checks``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflow_scripts.config.base import DataConfig, TrainConfig, VariantConfig

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
        """The run ``training.build`` builds: the architecture randomly initialised, trained from step 1.

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
