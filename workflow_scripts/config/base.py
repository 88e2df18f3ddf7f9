"""The typed configuration's building blocks: one frozen dataclass per section.

The bottom layer of the config package: no I/O, no schema, no checks, so every other
module (the data layer included) can import it. ``to_params()`` is each section's
canonical (sorted) form: the rules pass it as a param, so changing one variant's value
reruns only that variant, and reordering YAML keys reruns nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Task = Literal["reconstruct", "forecast"]
Precision = Literal["auto", "bf16", "fp32", "fp16"]
Init = Literal["pretrained", "random", "timeseries", "timeseries_encoder"]
#: The inits that start from the pretrain rule's output (docs/controls.md): the whole
#: pretrained Stage-1 model, or its encoder alone behind the seed's fresh new layers.
TIMESERIES_INITS = ("timeseries", "timeseries_encoder")
EncoderKind = Literal["checkpoint", "none", "small"]

VARIANT_OWN_KEYS = (
    "description",
    "enabled",
    "init",
    "encoder",
    "freeze_epochs",
    "trainable_while_frozen",
    "small_encoder",
    "init_seed_offset",
    "model",
)
#: The name of the study's own model (``model:``) among the named models (``models:``): the
#: model every variant starts from unless it names another (docs/models.md, Several encoders).
DEFAULT_MODEL = "text"


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key path and what is allowed."""


@dataclass(frozen=True)
class ModelConfig:
    """Which pretrained encoder to use: a Hub repo id, a local directory or ``package:...``.

    ``pretraining_cutoff`` (ISO date) is the last day of market data the model may have been
    pretrained on; a cut-off at or after a fold's test period is refused before training
    (models/lookahead.py), so no arm sees its test period through pretraining.
    """

    name_or_path: str = "google-t5/t5-small"
    revision: str | None = None
    pretraining_cutoff: str | None = None

    @property
    def slug(self) -> str:
        return model_slug(self.name_or_path, self.revision)

    def to_params(self) -> dict[str, Any]:
        params = dataclasses.asdict(self)
        if params["pretraining_cutoff"] is None:
            del params["pretraining_cutoff"]  # unset: the params of older configs stand
        return params


@dataclass(frozen=True)
class DataConfig:
    """One series: where its bars come from and how they are cut into aligned windows and folds."""

    name: str = "msft-daily"
    path: str = "embedded"
    kind: Literal["ohlc", "derived_dir", "generic"] = "ohlc"
    timeframes: tuple[str, ...] = ("d", "w")
    seq_len: int = 128
    patch_len: int = 32
    sample_stride: int = 1
    train_fraction: float = 0.7
    val_fraction: float = 0.15
    timestamp_column: str | None = None
    columns: tuple[str, ...] | None = None
    features: Literal["bars", "bars_and_changes"] = "bars"
    #: rolling-origin folds (data.folds.plan_folds): 1 is the single chronological split
    folds: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DataConfig:
        values = dict(params)
        values["timeframes"] = tuple(values["timeframes"])
        if values.get("columns") is not None:
            values["columns"] = tuple(values["columns"])
        return cls(**values)

    def to_params(self) -> dict[str, Any]:
        return _sorted_params(self)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; any of them can be overridden per variant."""

    task: Task = "reconstruct"
    mask_ratio: float = 0.15
    mask_span: int = 8
    horizon: int = 16
    epochs: int = 10
    steps_per_epoch: int = 100
    batch_size: int = 64
    eval_batch_size: int = 256
    max_eval_batches: int | None = None
    learning_rate: float = 3e-4
    encoder_learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    precision: Precision = "auto"
    force_fp16: bool = False
    early_stopping_patience: int = 5
    embedding_scale: Literal["experiment", "own", "none"] = "experiment"
    normalisation: Literal["window", "global"] = "window"
    tokens: Literal["per_timeframe", "per_feature"] = "per_timeframe"
    max_test_batches: int | None = None
    #: independent draws of test masks the final test pass scores (the skill is their mean)
    test_mask_draws: int = 4
    #: contiguous sub-periods of the test split, each scored and compared on its own
    test_periods: int = 4
    #: steps after which the current model is scored on the test split (the budget curve)
    test_budgets: Literal["every_epoch"] | tuple[int, ...] = "every_epoch"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    compile: bool = False
    inject_failure_at_epoch: int | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainConfig:
        values = dict(params)
        if isinstance(values.get("test_budgets"), list | tuple):
            values["test_budgets"] = tuple(int(step) for step in values["test_budgets"])
        return cls(**values)

    def budget_steps(self) -> tuple[int, ...]:
        """The steps (epoch ends) at which the run scores its current model on the test split."""
        if self.test_budgets == "every_epoch":
            return tuple(epoch * self.steps_per_epoch for epoch in range(1, self.epochs + 1))
        return tuple(sorted(self.test_budgets))

    def to_params(self) -> dict[str, Any]:
        return _sorted_params(self)


@dataclass(frozen=True)
class VariantConfig:
    """One way of using the encoder (freeze, nofreeze, ...) with its effective training config."""

    name: str
    train: TrainConfig = field(default_factory=TrainConfig)
    description: str = ""
    enabled: bool = True
    init: Init = "pretrained"
    encoder: EncoderKind = "checkpoint"
    freeze_epochs: int = 0
    trainable_while_frozen: Literal["none", "layernorm"] = "none"
    small_encoder: Mapping[str, Any] = field(default_factory=dict)
    init_seed_offset: int = 0
    #: the named model the arm starts from (or, init random, whose architecture it builds)
    model: str = DEFAULT_MODEL

    @property
    def always_frozen(self) -> bool:
        return self.freeze_epochs >= self.train.epochs

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> VariantConfig:
        values = dict(params)
        values["train"] = TrainConfig.from_params(values["train"])
        values["small_encoder"] = dict(values.get("small_encoder") or {})
        return cls(**values)

    def to_params(self) -> dict[str, Any]:
        params = _sorted_params(self)
        params["train"] = self.train.to_params()
        if not params["init_seed_offset"]:
            del params["init_seed_offset"]  # unset: the params (and results) of older configs stand
        if params["model"] == DEFAULT_MODEL:
            del params["model"]  # the study's model: the params (and results) of older configs stand
        return params


@dataclass(frozen=True)
class ContrastConfig:
    """A planned paired comparison ``a vs b`` (Δ per seed = metric(a) − metric(b)).

    ``role`` is primary (the headline), secondary, positive_control, encoder_control,
    negative_control or pretraining (another pretrained encoder against its random twin or
    against the text encoder: the study adds these, docs/models.md);
    ``label`` is what the report calls it. A contrast naming a variant that is defined
    but not enabled is skipped by the report, which says so.
    """

    a: str
    b: str
    role: Literal[
        "primary", "secondary", "positive_control", "encoder_control", "negative_control", "pretraining"
    ] = "secondary"
    label: str = ""

    def to_params(self) -> dict[str, Any]:
        return _sorted_params(self)


@dataclass(frozen=True)
class GpuSlotsConfig:
    """The local GPU slot pool: how many training jobs may share one device.

    Placement only, never part of what a run computes (not in ``to_params``).
    """

    jobs_per_gpu: int = 1


def _sorted_params(instance: Any) -> dict[str, Any]:
    """``asdict`` with tuples as lists and keys sorted, so ``repr`` and JSON are canonical."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {key: plain(value[key]) for key in sorted(value)}
        if isinstance(value, list | tuple):
            return [plain(item) for item in value]
        return value

    return plain({f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)})


# --------------------------------------------------------------------------- model slug

_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def is_local_model_path(name_or_path: str) -> bool:
    """Hugging Face convention: an existing directory or an explicit path is local."""
    return name_or_path.startswith(("/", "./", "../", "~")) or os.path.isdir(name_or_path)


def model_slug(name_or_path: str, revision: str | None = None) -> str:
    """File-name-safe directory name for a model under ``resources/models``.

    Distinct sources never share a directory: local paths get a hash of their absolute
    path, and a pinned revision is part of the name.
    """
    if name_or_path.startswith("package:"):
        slug = "package--" + name_or_path.removeprefix("package:").strip("/").replace("/", "--")
    elif is_local_model_path(name_or_path):
        # Hash the path as written, not its absolute form, so a moved checkout keeps its names.
        digest = hashlib.sha256(name_or_path.encode()).hexdigest()[:8]
        slug = f"local--{Path(name_or_path).expanduser().resolve().name}-{digest}"
    else:
        slug = name_or_path.replace("/", "--")
    if revision:
        slug += "--" + revision[:12]
    return _SLUG_UNSAFE.sub("_", slug)
