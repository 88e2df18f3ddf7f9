"""The part of the ``data:`` configuration this stage reads.

The stage is written against the ``DataSpec`` protocol, which
``workflow_scripts.config.DataConfig`` satisfies, so the data code can be tested without
the experiment-wide configuration. ``data_config_from_params`` is the one place where
the JSON the rule passes becomes a configuration object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from workflow_scripts.config.base import DataConfig
from workflow_scripts.data.validation import DataValidationError

KINDS = ("ohlc", "derived_dir", "generic")


class DataSpec(Protocol):
    """Read-only view of ``DataConfig`` (see docs/DESIGN.md)."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def timeframes(self) -> tuple[str, ...]: ...
    @property
    def seq_len(self) -> int: ...
    @property
    def patch_len(self) -> int: ...
    @property
    def sample_stride(self) -> int: ...
    @property
    def train_fraction(self) -> float: ...
    @property
    def val_fraction(self) -> float: ...
    @property
    def timestamp_column(self) -> str | None: ...
    @property
    def columns(self) -> tuple[str, ...] | None: ...
    @property
    def features(self) -> str: ...
    @property
    def folds(self) -> int: ...
    def to_params(self) -> dict[str, Any]: ...


def data_config_from_params(params: Mapping[str, Any]) -> DataSpec:
    """Build the ``DataConfig`` from the canonical JSON dict the preprocess rule passes."""
    return DataConfig.from_params(dict(params))


def check_spec(spec: DataSpec) -> None:
    """Cross-field checks this stage depends on, repeated here so library callers get them too."""
    if spec.kind not in KINDS:
        raise DataValidationError(f"data.kind: {spec.kind!r} is not one of {KINDS}")
    if not spec.timeframes:
        raise DataValidationError("data.timeframes: at least one timeframe is needed")
    if spec.seq_len < 2:
        raise DataValidationError(f"data.seq_len: {spec.seq_len} must be at least 2")
    if spec.sample_stride < 1:
        raise DataValidationError(f"data.sample_stride: {spec.sample_stride} must be at least 1")
    if not 0 < spec.train_fraction < 1 or not 0 < spec.val_fraction < 1:
        raise DataValidationError(
            "data.train_fraction and data.val_fraction must each lie strictly between 0 and 1"
        )
    if spec.train_fraction + spec.val_fraction >= 1:
        raise DataValidationError(
            f"data.train_fraction + data.val_fraction = "
            f"{spec.train_fraction + spec.val_fraction} must be below 1 to leave a test split"
        )
