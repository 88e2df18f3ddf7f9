"""Reading a configuration: the schema's defaults filled in, then checked, then typed.

The YAML files under ``config/`` are validated against ``config/schema.yaml`` (JSON
Schema draft 2020-12) and then turned into the frozen dataclasses of ``base``,
``pretrain``, ``tune`` and ``experiment``. Bad configuration is refused here, when
Snakemake parses the workflow, with the key path and the allowed values in the message,
instead of hours later inside a training job.

Each variant is the global ``train:`` section with the variant's overrides merged in,
plus the variant's own keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from workflow_scripts.config.base import (
    VARIANT_OWN_KEYS,
    ConfigError,
    ContrastConfig,
    DataConfig,
    GpuSlotsConfig,
    ModelConfig,
    TrainConfig,
    VariantConfig,
)
from workflow_scripts.config.checks import (
    check_contrasts,
    check_cross_fields,
    check_pretrain,
    check_series,
    check_tune,
    validate,
)
from workflow_scripts.config.experiment import ExperimentConfig
from workflow_scripts.config.model_checks import check_variant_models
from workflow_scripts.config.pretraining import PretrainConfig
from workflow_scripts.config.tune import TuneConfig

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"

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
    schema = load_schema(schema_path)
    validate(raw, schema)
    model = ModelConfig(**_with_defaults(raw.get("model"), schema["properties"]["model"]))
    model_schema = schema["properties"]["models"]["additionalProperties"]
    models = {
        name: ModelConfig(**_with_defaults(entry, model_schema))
        for name, entry in (raw.get("models") or {}).items()
    }
    series = build_series(raw.get("data"), schema["properties"]["data"])
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
    pretrain = build_pretrain(raw.get("pretrain"), schema, train_values)
    tune = build_tune(raw.get("tune"), schema)
    experiment = ExperimentConfig(
        model=model,
        series=series,
        train=train,
        variants=enabled,
        seeds=seeds,
        contrasts=contrasts,
        pretrain=pretrain,
        gpu_slots=GpuSlotsConfig(**_with_defaults(raw.get("gpu_slots"), schema["properties"]["gpu_slots"])),
        tune=tune,
        models=models,
    )
    check_series(series)
    check_variant_models(models, variants)
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
        if "default" in subschema:  # a required key (models.<name>.name_or_path) has none
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


def build_series(raw: Mapping[str, Any] | None, data_schema: Mapping[str, Any]) -> tuple[DataConfig, ...]:
    """The study's series: ``data:`` itself, or one per ``data.series`` entry (its own name and
    input keys over the shared ``data:`` keys)."""
    values = _with_defaults(raw, data_schema)
    entries = values.pop("series")
    shared = DataConfig.from_params(values)
    if entries is None:
        return (shared,)
    return tuple(DataConfig.from_params({**shared.to_params(), **entry}) for entry in entries)


def build_pretrain(
    raw: Mapping[str, Any] | None,
    schema: Mapping[str, Any],
    train_values: Mapping[str, Any],
) -> PretrainConfig:
    """The pretraining settings: the experiment's train: section with pretrain.train overrides."""
    section = schema["properties"]["pretrain"]["properties"]
    values = {key: (raw or {}).get(key, sub["default"]) for key, sub in section.items()}
    data = None
    if values["data"] is not None:
        if values["data"].get("series") is not None:
            raise ConfigError("pretrain.data.series: the pretraining reads one dataset (allowed: null)")
        series = build_series(values["data"], schema["properties"]["data"])
        data = series[0]
    return PretrainConfig(
        enabled=bool(values["enabled"]),
        seed=int(values["seed"]),
        source_fraction=float(values["source_fraction"]),
        data=data,
        train=TrainConfig.from_params({**train_values, **values["train"]}),
    )


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
