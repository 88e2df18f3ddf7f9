"""Several pretrained encoders in one study (issue 28): named models, random twins, the
like-for-like check, the generated contrasts and no look-ahead through pretraining.

Offline and fast: tiny replicas saved locally (tests/tiny_models.py), fake derived manifests.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO
from snakemake.utils import update_config
from tiny_models import make_tiny_chronos_bolt, make_tiny_chronos_t5, make_tiny_t5

from workflow_scripts import train
from workflow_scripts.config.base import ConfigError
from workflow_scripts.config.loader import load_experiment
from workflow_scripts.models.block_shapes import parse_time_blocks
from workflow_scripts.models.like_for_like import with_pretraining_contrasts
from workflow_scripts.models.lookahead import (
    LookAheadError,
    effective_cutoff,
    lookahead_problems,
    refuse_lookahead,
)


def smoke_raw(**extra: Any) -> dict[str, Any]:
    """config.yaml with smoke.yaml over it, merged as Snakemake merges them, then ``extra``."""
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(raw, yaml.safe_load((REPO / "config" / "smoke.yaml").read_text()))
    raw["model"] = {"name_or_path": str(REPO / "tests" / "fixtures" / "tiny-t5")}
    update_config(raw, extra)
    return raw


def with_bolt(bolt_dir: Path, **model: Any) -> dict[str, Any]:
    return smoke_raw(
        models={"chronos_bolt": {"name_or_path": str(bolt_dir), **model}},
        variants={"bolt_nofreeze": {"enabled": True}, "bolt_baseline": {"enabled": True}},
    )


@pytest.fixture(scope="module")
def bolt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_chronos_bolt(tmp_path_factory.mktemp("bolt") / "tiny-chronos-bolt", seed=3)


# --------------------------------------------------------------------------- configuration


def test_a_variant_names_its_model_and_its_random_twin_builds_that_architecture(bolt_dir: Path) -> None:
    experiment = load_experiment(with_bolt(bolt_dir))
    assert experiment.used_models == ["text", "chronos_bolt"]
    assert experiment.variant_model("bolt_baseline").name_or_path == str(bolt_dir)
    assert experiment.variant_model("baseline") == experiment.model
    # text arms keep their params (and results); another model's arms carry its name
    assert "model" not in experiment.variants["nofreeze"].to_params()
    assert experiment.variants["bolt_baseline"].to_params()["model"] == "chronos_bolt"
    # a disabled arm's model is neither downloaded nor verified
    assert load_experiment(smoke_raw()).used_models == ["text"]


def test_an_unknown_model_name_is_refused_with_a_suggestion() -> None:
    raw = smoke_raw(variants={"bolt_nofreeze": {"enabled": True, "model": "chronos_blot"}})
    with pytest.raises(
        ConfigError,
        match=r"variants.bolt_nofreeze.model: 'chronos_blot' is not a model "
        r"\(did you mean 'chronos_bolt'\?\)",
    ):
        load_experiment(raw)


def test_only_pretrained_or_random_checkpoint_arms_name_another_model(bolt_dir: Path) -> None:
    raw = with_bolt(bolt_dir)
    raw["variants"]["ts_nofreeze"].update(enabled=True, model="chronos_bolt")
    with pytest.raises(ConfigError, match=r"variants\.ts_nofreeze: model chronos_bolt with init timeseries"):
        load_experiment(raw)


def test_text_is_the_study_model_and_no_entry_of_models_may_take_its_name() -> None:
    raw = smoke_raw(models={"text": {"name_or_path": "google-t5/t5-small"}})
    with pytest.raises(ConfigError, match=r"models: name 'text' is reserved for model:"):
        load_experiment(raw)


def test_a_cutoff_must_be_a_date() -> None:
    raw = smoke_raw(models={"m": {"name_or_path": "x/y", "pretraining_cutoff": "2015"}})
    with pytest.raises(ConfigError, match=r"models\.m\.pretraining_cutoff"):
        load_experiment(raw)


# --------------------------------------------------------------------------- like for like


def test_twin_and_text_contrasts_are_added_with_role_pretraining(bolt_dir: Path, tmp_path: Path) -> None:
    experiment, notices = with_pretraining_contrasts(load_experiment(with_bolt(bolt_dir)), tmp_path)
    added = [(c.a, c.b, c.role) for c in experiment.contrasts if c.role == "pretraining"]
    assert added == [
        ("bolt_nofreeze", "bolt_baseline", "pretraining"),
        ("nofreeze", "bolt_nofreeze", "pretraining"),
    ]
    assert any("models.chronos_bolt.pretraining_cutoff is unknown" in n for n in notices)
    # a pair the config already declares is not added twice
    raw = with_bolt(bolt_dir)
    raw["contrasts"] = [
        {"a": "nofreeze", "b": "baseline", "role": "primary"},
        {"a": "bolt_baseline", "b": "bolt_nofreeze"},
    ]
    declared, _ = with_pretraining_contrasts(load_experiment(raw), tmp_path)
    assert [(c.a, c.b) for c in declared.contrasts if c.role == "pretraining"] == [
        ("nofreeze", "bolt_nofreeze")
    ]


def test_a_declared_contrast_between_unlike_blocks_is_refused_naming_the_fields(tmp_path: Path) -> None:
    wide = make_tiny_chronos_bolt(tmp_path / "wide-bolt", d_ff=128)
    raw = with_bolt(wide)
    raw["contrasts"] = [{"a": "nofreeze", "b": "bolt_nofreeze"}]
    with pytest.raises(
        ConfigError,
        match=r"nofreeze \(model text\) vs bolt_nofreeze \(model chronos_bolt\): "
        r"the encoders' blocks differ in d_ff \(d_ff 64 vs 128",
    ):
        with_pretraining_contrasts(load_experiment(raw), tmp_path)


def test_unlike_blocks_keep_each_encoder_against_its_own_twin_only(tmp_path: Path) -> None:
    """The random twin makes encoder-vs-twin fair whatever the shape; the text-vs-encoder contrast
    is left out (with a notice) rather than compared across unlike blocks."""
    wide = make_tiny_chronos_bolt(tmp_path / "wide-bolt", d_ff=128)
    experiment, notices = with_pretraining_contrasts(load_experiment(with_bolt(wide)), tmp_path)
    assert [(c.a, c.b) for c in experiment.contrasts if c.role == "pretraining"] == [
        ("bolt_nofreeze", "bolt_baseline")
    ]
    assert any(
        n.startswith("not compared: nofreeze (model text) vs bolt_nofreeze") and "d_ff" in n for n in notices
    )


def test_an_unknown_shape_is_never_taken_as_equal(tmp_path: Path) -> None:
    raw = smoke_raw(
        models={"fin": {"name_or_path": "FinText/Chronos_Small_2001_US"}},
        variants={"fin_nofreeze": {"enabled": True, "model": "fin", "init": "pretrained"}},
    )
    raw["contrasts"] = [{"a": "nofreeze", "b": "fin_nofreeze"}]
    with pytest.raises(ConfigError, match="block shape is unknown at parse time"):
        with_pretraining_contrasts(load_experiment(raw), tmp_path)
    # once download_model has put its config.json under resources/models/<slug>, the shape is known
    experiment = load_experiment(raw)
    downloaded = tmp_path / experiment.named_model("fin").slug
    make_tiny_chronos_t5(downloaded)
    checked, _ = with_pretraining_contrasts(experiment, tmp_path)
    assert ("nofreeze", "fin_nofreeze") in [(c.a, c.b) for c in checked.contrasts]


def test_published_ids_have_t5_smalls_blocks_at_parse_time(tmp_path: Path) -> None:
    shapes = {
        name: parse_time_blocks(name, None, tmp_path / "absent")[0]
        for name in ("t5-small", "amazon/chronos-bolt-small", "amazon/chronos-t5-small")
    }
    assert None not in shapes.values()
    assert len(set(shapes.values())) == 1
    t5 = shapes["t5-small"]
    assert t5 is not None and (t5.d_model, t5.num_layers, t5.d_ff, t5.activation) == (512, 6, 2048, "relu")


def test_a_local_t5_config_without_block_defaults_reads_as_t5config_fills_them(tmp_path: Path) -> None:
    directory = make_tiny_t5(tmp_path / "t5")
    raw = json.loads((directory / "config.json").read_text())
    raw.pop("feed_forward_proj", None)
    (directory / "config.json").write_text(json.dumps(raw))
    blocks, where = parse_time_blocks(str(directory), directory, tmp_path / "absent")
    assert blocks is not None and blocks.activation == "relu" and where.endswith("config.json")


# --------------------------------------------------------------------------- look-ahead


def test_a_fintext_id_names_its_cutoff_year() -> None:
    assert effective_cutoff("FinText/Chronos_Small_2015_US", None) == "2015-12-31"
    assert effective_cutoff("FinText/Chronos_Small_2015_US", "2015-06-30") == "2015-06-30"
    assert effective_cutoff("amazon/chronos-bolt-small", None) is None


def write_fold(root: Path, series: str, fold: int, start: str, end: str) -> Path:
    directory = root / series / f"fold{fold}"
    directory.mkdir(parents=True)
    test = {
        "first_window_start": f"{start}T00:00:00+00:00",
        "first_end": "x",
        "last_end": f"{end}T00:00:00+00:00",
    }
    (directory / "manifest.json").write_text(json.dumps({"date_ranges": {"test": test}}))
    return directory


def test_a_cutoff_inside_a_test_period_is_refused_naming_model_series_fold_and_dates(tmp_path: Path) -> None:
    folds = [
        write_fold(tmp_path, "msft", 0, "2004-09-19", "2009-02-06"),
        write_fold(tmp_path, "msft", 1, "2009-02-08", "2013-06-27"),
    ]
    refuse_lookahead("fintext", "2003-12-31", folds)  # before every test period: passes
    with pytest.raises(LookAheadError) as refused:
        refuse_lookahead("fintext", "2010-12-31", folds)
    message = str(refused.value)
    assert (
        "model 'fintext' was pretrained on data up to 2010-12-31, "
        "but msft fold1's test period starts 2009-02-08" in message
    )
    assert "ends 2013-06-27" in message  # inside fold 1's test period
    assert "msft fold0's test period starts 2004-09-19" in message  # and after fold 0's
    # on the first test bar's own day is already look-ahead
    assert lookahead_problems(
        "m",
        "2004-09-19",
        [("msft fold0", {"first_window_start": "2004-09-19T00:00:00+00:00", "last_end": "2009"})],
    )


def test_train_refuses_before_loading_anything(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fold = write_fold(tmp_path, "msft", 0, "2004-09-19", "2009-02-06")
    argv = [
        "--variant-json", "{}", "--seed", "0", "--data-dir", str(fold),
        "--model-dir", str(tmp_path / "no-model"), "--out-dir", str(tmp_path / "out"),
        "--tensorboard-dir", str(tmp_path / "tb"), "--resume-dir", str(tmp_path / "resume"),
        "--pretraining-cutoff", "2015-12-31", "--cutoff-model", "fintext", "--test-data-dirs", str(fold),
    ]  # fmt: skip
    with caplog.at_level(logging.ERROR):
        assert train.main(argv) == 1
    assert "model 'fintext' was pretrained on data up to 2015-12-31" in caplog.text
    assert "not verified" not in caplog.text  # refused before the model directory was looked at
    assert not (tmp_path / "out").exists()


def test_every_config_key_round_trips_through_params(bolt_dir: Path) -> None:
    experiment = load_experiment(with_bolt(bolt_dir, pretraining_cutoff="2000-12-31"))
    params = experiment.to_params()
    assert params["models"]["chronos_bolt"]["pretraining_cutoff"] == "2000-12-31"
    assert "pretraining_cutoff" not in params["model"]  # unset: older params stand
    assert copy.deepcopy(params) == params


# --------------------------------------------------------------------------- step 0


@pytest.mark.usefixtures("one_thread")
def test_at_step_0_the_bolt_arm_has_the_files_encoder_and_baselines_new_layers(
    bolt_dir: Path, tmp_path: Path
) -> None:
    """The time-series arm differs from the text arms in its encoder alone: every encoder tensor
    is the Chronos-Bolt file's, while the patch embedding and head are the very tensors the seed
    draws for baseline (and for the bolt arm's random twin)."""
    import torch
    from safetensors.torch import load_file

    from tests.training_support import variant, write_synthetic_derived
    from workflow_scripts.data.derived import load_derived
    from workflow_scripts.training.build import build_run

    dataset = load_derived(
        write_synthetic_derived(tmp_path / "derived", bars={"train": 300, "val": 150, "test": 100})
    )
    text_dir = REPO / "tests" / "fixtures" / "tiny-t5"
    # every arm at the study model's embedding scale, as train --scale-model-dir passes it
    rms = 1.7
    runs = {
        name: build_run(variant(init=init), 0, dataset, directory, patch_len=8, experiment_rms=rms)
        for name, init, directory in (
            ("bolt_nofreeze", "pretrained", bolt_dir),
            ("bolt_baseline", "random", bolt_dir),
            ("baseline", "random", text_dir),
        )
    }
    bolt = runs["bolt_nofreeze"].model
    assert bolt.encoder is not None
    weights = load_file(bolt_dir / "model.safetensors")
    encoder = {name: p for name, p in bolt.encoder.named_parameters() if name.startswith("encoder.")}
    assert encoder and all(torch.equal(value, weights[name]) for name, value in encoder.items())
    new_layers = {
        name: {k: v for k, v in run.model.state_dict().items() if not k.startswith("encoder.")}
        for name, run in runs.items()
    }
    for other in ("bolt_baseline", "baseline"):
        assert new_layers["bolt_nofreeze"].keys() == new_layers[other].keys()
        for key, value in new_layers["bolt_nofreeze"].items():
            assert torch.equal(value, new_layers[other][key]), (other, key)


def test_fp16_is_refused_for_a_chronos_arm_as_for_t5(bolt_dir: Path) -> None:
    """Chronos encoders are T5 stacks: their activations overflow float16 like t5-small's."""
    raw = with_bolt(bolt_dir)
    raw["model"] = {"name_or_path": "sentence-transformers/all-MiniLM-L6-v2"}
    raw["variants"]["bolt_nofreeze"]["precision"] = "fp16"
    with pytest.raises(ConfigError, match=r"variants\.bolt_nofreeze: precision fp16 with a T5 encoder"):
        load_experiment(raw)
