"""Checks of a configuration beyond its types: the schema, then the fields that depend on each other.

``validate`` turns every JSON-Schema error into one line with the key path and the allowed
values (with a "did you mean" for a mistyped key); ``check_cross_fields``,
``check_contrasts``, ``check_pretrain`` and ``check_tune`` refuse combinations no schema
can express. Each raises ``ConfigError`` listing every problem at once, so a user fixes a
config in one pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from workflow_scripts.config.base import (
    TIMESERIES_INITS,
    ConfigError,
    ContrastConfig,
    DataConfig,
    VariantConfig,
)
from workflow_scripts.config.experiment import ExperimentConfig
from workflow_scripts.config.tune import RATE_KEYS, TuneConfig


def check_contrasts(contrasts: tuple[ContrastConfig, ...], all_variants: Mapping[str, VariantConfig]) -> None:
    """A declared contrast must name defined variants (a disabled one is fine: the report
    skips it) and at most one contrast may be the primary one."""
    problems = []
    for index, contrast in enumerate(contrasts):
        for side in ("a", "b"):
            name = getattr(contrast, side)
            if name not in all_variants:
                close = difflib.get_close_matches(name, list(all_variants), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                problems.append(
                    f"contrasts.{index}.{side}: '{name}' is not a variant defined under variants{hint} "
                    f"(defined: {', '.join(sorted(all_variants))})"
                )
        if contrast.a == contrast.b:
            problems.append(
                f"contrasts.{index}: a and b are both '{contrast.a}' (allowed: two different variants)"
            )
    primaries = [str(i) for i, c in enumerate(contrasts) if c.role == "primary"]
    if len(primaries) > 1:
        problems.append(
            f"contrasts.{', contrasts.'.join(primaries)}: more than one role: primary (allowed: one)"
        )
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


#: train keys that define the test every arm is scored on: one value for the whole study
SHARED_TEST_KEYS = ("test_mask_draws", "test_periods", "mask_ratio", "mask_span", "max_test_batches")


def check_series(series: tuple[DataConfig, ...]) -> None:
    """Series names are unique (each names its derived data and runs), and no two series read
    the same input with the same settings (one series counted twice would double its units)."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    inputs: dict[str, str] = {}
    for index, data in enumerate(series):
        if data.name in seen:
            problems.append(
                f"data.series.{index}.name: '{data.name}' repeats data.series.{seen[data.name]} "
                "(allowed: a name per series)"
            )
        seen.setdefault(data.name, index)
        key = repr({name: value for name, value in data.to_params().items() if name != "name"})
        if key in inputs:
            problems.append(
                f"data.series.{index} ('{data.name}') reads the same input with the same settings as "
                f"'{inputs[key]}': its units would be counted twice (allowed: another path or settings)"
            )
        inputs.setdefault(key, data.name)
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


def _data_problems(data: DataConfig) -> list[str]:
    """The window shape and split fractions (shared by every series: data.series sets inputs only)."""
    problems = []
    if data.seq_len % data.patch_len:
        problems.append(
            f"data.seq_len = {data.seq_len} is not divisible by data.patch_len = {data.patch_len} "
            "(allowed: a patch_len that divides seq_len)"
        )
    if data.train_fraction + data.val_fraction >= 1:
        problems.append(
            f"data.train_fraction + data.val_fraction = {data.train_fraction + data.val_fraction:g} "
            "leaves no test split (allowed: a sum below 1)"
        )
    return problems


def _t5_family(experiment: ExperimentConfig, variant: VariantConfig) -> bool:
    """Whether the arm's model is a T5 (t5-small, or the Chronos/FinText encoders built on it),
    whose activations overflow float16."""
    model = experiment.models.get(variant.model, experiment.model)
    name = model.name_or_path.lower()
    return any(family in name for family in ("t5", "chronos"))


def check_cross_fields(experiment: ExperimentConfig, all_variants: Mapping[str, VariantConfig]) -> None:
    """Data shape, splits, freeze schedule, precision, features and horizon, per variant."""
    data = experiment.series[0]
    problems = _data_problems(data)
    bars_inputs = [d.name for d in experiment.series if d.kind != "generic"]
    if not experiment.variants:
        problems.append(f"variants: none is enabled (defined: {', '.join(sorted(all_variants)) or 'none'})")
    for name, variant in sorted(all_variants.items()):
        t5 = _t5_family(experiment, variant)
        train = variant.train
        for key in SHARED_TEST_KEYS:
            if getattr(train, key) != getattr(experiment.train, key):
                problems.append(
                    f"variants.{name}.{key} = {getattr(train, key)} differs from train.{key} = "
                    f"{getattr(experiment.train, key)}: every arm is scored on the same test draws and "
                    "periods, or no contrast is paired (allowed: set it under train:, not per variant)"
                )
        if variant.freeze_epochs > train.epochs:
            problems.append(
                f"variants.{name}.freeze_epochs = {variant.freeze_epochs} is greater than "
                f"epochs = {train.epochs} (allowed: 0..{train.epochs}, or 'all')"
            )
        if train.precision == "fp16" and t5 and not train.force_fp16:
            problems.append(
                f"variants.{name}: precision fp16 with a T5 encoder is refused: T5 activations overflow "
                "float16's range and the loss diverges (allowed: auto, bf16, fp32; or force_fp16: true)"
            )
        if train.task == "reconstruct" and data.features == "bars_and_changes" and bars_inputs:
            problems.append(
                f"variants.{name}: data.features = bars_and_changes with task reconstruct is refused: "
                "delta_close of the bar after a masked span reveals its close (allowed: features: bars, "
                "or task: forecast)"
            )
        total = train.epochs * train.steps_per_epoch
        if train.test_budgets != "every_epoch":
            off = [s for s in train.test_budgets if s % train.steps_per_epoch or s > total]
            if off:
                problems.append(
                    f"variants.{name}.test_budgets: {off} are not epoch ends (allowed: multiples of "
                    f"steps_per_epoch = {train.steps_per_epoch} up to epochs x steps_per_epoch = {total})"
                )
        if train.task == "forecast" and train.horizon > data.seq_len:
            problems.append(
                f"variants.{name}.horizon = {train.horizon} exceeds data.seq_len = {data.seq_len}"
            )
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


def validate(raw: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Every schema error of ``raw``, one line each (see ``_describe``)."""
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [_describe(error, schema) for error in errors]
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(dict.fromkeys(lines)))


def _key_path(error: ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _describe(error: ValidationError, schema: Mapping[str, Any]) -> str:
    """Turn a jsonschema error into one line with the key path and the allowed values."""
    where = _key_path(error)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        allowed = sorted(_allowed_keys(error.schema, schema))
        unknown = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, Mapping) else []
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        return f"{where}: unknown key {', '.join(hints)}; allowed keys: {', '.join(allowed)}"
    if error.validator == "enum":
        allowed_values = ", ".join(str(v) for v in error.validator_value)
        return f"{where}: {error.instance!r} is not allowed (allowed: {allowed_values})"
    if "propertyNames" in error.schema_path and error.validator == "not":
        reserved = "is reserved for model: (the study's own model; allowed: another name)"
        return f"{where}: name {error.instance!r} {reserved}"
    if "propertyNames" in error.schema_path:
        return (
            f"{where}: name {error.instance!r} is not a valid file-name token "
            f"(allowed: letters, digits, '_' and '-', starting with a letter)"
        )
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return f"{where}: {error.message} (allowed: {error.validator} {error.validator_value})"
    if error.validator == "oneOf" and error.context:
        options = "; ".join(dict.fromkeys(sub.message for sub in error.context))
        return f"{where}: {error.instance!r} is not allowed ({options})"
    description = error.schema.get("description") if isinstance(error.schema, Mapping) else None
    suffix = f" ({description})" if description else ""
    return f"{where}: {error.message}{suffix}"


def _allowed_keys(subschema: Mapping[str, Any], root: Mapping[str, Any]) -> set[str]:
    keys = set(subschema.get("properties", {}))
    reference = subschema.get("$ref")
    if reference:
        target: Any = root
        for part in reference.removeprefix("#/").split("/"):
            target = target[part]
        keys |= _allowed_keys(target, root)
    return keys


def check_pretrain(experiment: ExperimentConfig) -> None:
    """Refuse what cannot run: a timeseries variant without pretraining, an unfit source dataset."""
    problems = []
    pretrain = experiment.pretrain
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
    source = pretrain.data
    for data in experiment.series if source is not None else ():
        assert source is not None
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
