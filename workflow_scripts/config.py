"""Typed experiment configuration: schema validation, defaults, cross-field checks.

The YAML files under ``config/`` are validated against ``config/schema.yaml`` (JSON
Schema draft 2020-12) and then turned into frozen dataclasses. Bad configuration is
refused here, when Snakemake parses the workflow, with the key path and the allowed
values in the message, instead of hours later inside a training job.

Each variant is the global ``train:`` section with the variant's overrides merged in,
plus the variant's own keys. ``VariantConfig.to_params()`` is the canonical (sorted)
form the ``train`` rule receives, so changing one variant's value reruns only that
variant, and reordering YAML keys reruns nothing.
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

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"

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
)


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key path and what is allowed."""


@dataclass(frozen=True)
class ModelConfig:
    """Which pretrained encoder to use: a Hub repo id, a local directory or ``package:...``."""

    name_or_path: str = "google-t5/t5-small"
    revision: str | None = None

    @property
    def slug(self) -> str:
        return model_slug(self.name_or_path, self.revision)

    def to_params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DataConfig:
    """Where the bars come from and how they are cut into aligned windows."""

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
        return params


@dataclass(frozen=True)
class ContrastConfig:
    """A planned paired comparison ``a vs b`` (Δ per seed = metric(a) − metric(b)).

    ``role`` is primary (the headline), secondary, positive_control, encoder_control or
    negative_control;
    ``label`` is what the report calls it. A contrast naming a variant that is defined
    but not enabled is skipped by the report, which says so.
    """

    a: str
    b: str
    role: Literal["primary", "secondary", "positive_control", "encoder_control", "negative_control"] = (
        "secondary"
    )
    label: str = ""

    def to_params(self) -> dict[str, Any]:
        return _sorted_params(self)


@dataclass(frozen=True)
class GpuSlotsConfig:
    """The local GPU slot pool: how many training jobs may share one device.

    Placement only, never part of what a run computes (not in ``to_params``).
    """

    jobs_per_gpu: int = 1


@dataclass(frozen=True)
class ExperimentConfig:
    """The whole experiment: one model, one dataset, the enabled variants and the seeds."""

    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    variants: Mapping[str, VariantConfig]
    seeds: tuple[int, ...]
    contrasts: tuple[ContrastConfig, ...] = ()
    pretrain: Any = None  # config_pretrain.PretrainConfig (docs/controls.md)
    gpu_slots: GpuSlotsConfig = field(default_factory=GpuSlotsConfig)
    tune: Any = None  # config_tune.TuneConfig (docs/training.md)

    @property
    def variant_names(self) -> list[str]:
        return sorted(self.variants)

    @property
    def needs_pretrain(self) -> bool:
        """Whether an enabled variant starts from the time-series-pretrained encoder."""
        return any(variant.init in TIMESERIES_INITS for variant in self.variants.values())

    def to_params(self) -> dict[str, Any]:
        return {
            "data": self.data.to_params(),
            "model": self.model.to_params(),
            "seeds": list(self.seeds),
            "train": self.train.to_params(),
            "variants": {name: self.variants[name].to_params() for name in self.variant_names},
            "contrasts": [contrast.to_params() for contrast in self.contrasts],
            **({"pretrain": self.pretrain.to_params()} if self.pretrain is not None else {}),
            **({"tune": self.tune.to_params()} if self.tune is not None and self.tune.enabled else {}),
        }


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


# --------------------------------------------------------------------------- loading


# libyaml's loader where PyYAML was built with it: the schema is read on every
# Snakemake start, and the pure-Python loader alone costs a third of a second.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_schema(schema_path: Path = SCHEMA_PATH) -> dict[str, Any]:
    with open(schema_path, encoding="utf-8") as handle:
        schema: dict[str, Any] = yaml.load(handle, Loader=_YAML_LOADER)
    return schema


def load_experiment(raw: Mapping[str, Any], schema_path: Path = SCHEMA_PATH) -> ExperimentConfig:
    """Validate a raw config mapping and build the typed experiment config.

    Raises ConfigError listing every problem, each with its key path.
    """
    from workflow_scripts.config_checks import check_contrasts, check_cross_fields, validate

    schema = load_schema(schema_path)
    validate(raw, schema)
    model = ModelConfig(**_with_defaults(raw.get("model"), schema["properties"]["model"]))
    data = DataConfig.from_params(_with_defaults(raw.get("data"), schema["properties"]["data"]))
    train_defaults = schema["$defs"]["train_keys"]
    train_values = _with_defaults(raw.get("train"), train_defaults)
    train = TrainConfig.from_params(train_values)
    variant_raw = raw.get("variants", schema["properties"]["variants"]["default"])
    variants = {
        name: _build_variant(name, values, train_values, schema["$defs"]["variant"])
        for name, values in variant_raw.items()
    }
    enabled = {name: variant for name, variant in variants.items() if variant.enabled}
    seeds = tuple(raw.get("seeds", schema["properties"]["seeds"]["default"]))
    contrast_schema = schema["properties"]["contrasts"]
    contrasts = tuple(
        ContrastConfig(
            **{
                **{
                    k: v["default"]
                    for k, v in contrast_schema["items"]["properties"].items()
                    if "default" in v
                },
                **entry,
            }
        )
        for entry in raw.get("contrasts", contrast_schema["default"])
    )
    from workflow_scripts.config_pretrain import build_pretrain, check_pretrain
    from workflow_scripts.config_tune import build_tune, check_tune

    pretrain = build_pretrain(raw.get("pretrain"), schema, train_values, data)
    tune = build_tune(raw.get("tune"), schema)
    experiment = ExperimentConfig(
        model=model,
        data=data,
        train=train,
        variants=enabled,
        seeds=seeds,
        contrasts=contrasts,
        pretrain=pretrain,
        gpu_slots=GpuSlotsConfig(**_with_defaults(raw.get("gpu_slots"), schema["properties"]["gpu_slots"])),
        tune=tune,
    )
    check_cross_fields(experiment, variants)
    check_pretrain(experiment)
    check_tune(experiment, tune, variants)
    if "contrasts" in raw:
        check_contrasts(contrasts, variants)
    return experiment


def load_experiment_file(path: str | Path, schema_path: Path = SCHEMA_PATH) -> ExperimentConfig:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.load(handle, Loader=_YAML_LOADER) or {}
    try:
        return load_experiment(raw, schema_path)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _with_defaults(section: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> dict[str, Any]:
    values = dict(section or {})
    for key, subschema in schema["properties"].items():
        values.setdefault(key, subschema["default"])
    return values


def _build_variant(
    name: str,
    values: Mapping[str, Any] | None,
    train_values: Mapping[str, Any],
    variant_schema: Mapping[str, Any],
) -> VariantConfig:
    values = dict(values or {})
    own = {key: values.pop(key, variant_schema["properties"][key]["default"]) for key in VARIANT_OWN_KEYS}
    train = TrainConfig.from_params({**train_values, **values})
    if own["freeze_epochs"] == "all":
        own["freeze_epochs"] = train.epochs
    return VariantConfig(name=name, train=train, **own)
