"""The positive and negative controls (issue 14, docs/controls.md), short of the whole DAG.

The end-to-end run with both controls is tests/test_workflow_controls.py (slow).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.study_builders import skill_arm, study
from tests.training_support import SplitRecorder, verified_model, write_synthetic_derived
from workflow_scripts.config.base import ConfigError, VariantConfig
from workflow_scripts.config.loader import load_experiment
from workflow_scripts.config.pretraining import PretrainConfig
from workflow_scripts.data.derived import load_derived
from workflow_scripts.data.source_split import SourceDataset, source_cut
from workflow_scripts.reporting import contrasts, controls, sentences
from workflow_scripts.reporting.conclusions import report_headline
from workflow_scripts.reporting.results import StudyResult
from workflow_scripts.reporting.units import Unit

PRETRAIN_TRAIN = {
    "epochs": 2,
    "steps_per_epoch": 3,
    "batch_size": 8,
    "eval_batch_size": 64,
    "max_eval_batches": 1,
    "max_test_batches": 1,
    "warmup_steps": 1,
    "precision": "fp32",
    "device": "cpu",
    "mask_span": 4,
    "mask_ratio": 0.25,
    "early_stopping_patience": 0,
}


# --------------------------------------------------------------------------- configuration


def _raw(**extra: Any) -> dict[str, Any]:
    return {
        "variants": {"baseline": {"init": "random"}, "ts_nofreeze": {"init": "timeseries"}},
        **extra,
    }


def test_timeseries_variant_with_pretrain_disabled_names_the_key() -> None:
    with pytest.raises(
        ConfigError, match=r"variants\.ts_nofreeze\.init = timeseries needs pretrain\.enabled"
    ):
        load_experiment(_raw(pretrain={"enabled": False}))
    disabled = load_experiment({"variants": {"baseline": {"init": "random"}}, "pretrain": {"enabled": False}})
    assert not disabled.needs_pretrain


def test_pretrain_settings_merge_over_train_and_seed_offset_is_checked() -> None:
    experiment = load_experiment(_raw(train={"epochs": 3}, pretrain={"train": {"steps_per_epoch": 7}}))
    assert experiment.needs_pretrain
    assert (experiment.pretrain.train.epochs, experiment.pretrain.train.steps_per_epoch) == (3, 7)
    assert PretrainConfig.from_params(experiment.pretrain.to_params()) == experiment.pretrain
    with pytest.raises(ConfigError, match=r"init_seed_offset = 5 only applies to init random"):
        load_experiment({"variants": {"nofreeze": {"init": "pretrained", "init_seed_offset": 5}}})
    plain = VariantConfig(name="baseline", init="random")
    assert "init_seed_offset" not in plain.to_params()  # older results keep their params
    shifted = VariantConfig(name="baseline_aa", init="random", init_seed_offset=1000)
    assert VariantConfig.from_params(shifted.to_params()) == shifted


# --------------------------------------------------------------------------- the source split


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_derived(tmp_path_factory.mktemp("derived"))


def test_source_split_reads_only_train_and_purges_the_gap(derived: Path) -> None:
    base = SplitRecorder(load_derived(derived))
    source = SourceDataset(base, 0.7)
    train, val = source.split("train"), source.split("val")
    assert base.read == {"train"}
    full = base.base.split("train")
    for j, tf in enumerate(source.timeframes):
        # every bar of both parts is a bar of the experiment's train split
        assert set(train.times[tf]) | set(val.times[tf]) <= set(full.times[tf])
        # no bar is shared: the validation part starts after the last training bar
        assert train.times[tf].max() < val.times[tf].min()
        # windows index only the bars kept
        assert train.ends[:, j].min() >= source.seq_len and train.ends[:, j].max() == len(train.bars[tf])
        assert val.ends[:, j].min() - source.seq_len == 0
    n_train, first_val = source_cut(np.asarray(full.ends), source.seq_len, 0.7)
    assert first_val > n_train and len(train) == n_train and len(val) == len(full) - first_val


# --------------------------------------------------------------------------- pretrain: no leak, manifest


@pytest.fixture(scope="module")
def text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import make_tiny_t5

    source = make_tiny_t5(tmp_path_factory.mktemp("t5") / "tiny-t5")
    return verified_model(source, tmp_path_factory.mktemp("models") / "tiny-t5")


def _pretrain(data_dir: Path, model_dir: Path, out_dir: Path) -> dict[str, Any]:
    import torch

    from workflow_scripts.pretrain import pretrain

    params = {"enabled": True, "seed": 3, "source_fraction": 0.7, "data": None, "train": {}}
    config = load_experiment({"train": PRETRAIN_TRAIN, "pretrain": params})
    return pretrain(
        config.pretrain.to_params(),
        data_dir,
        model_dir,
        out_dir,
        logging.getLogger("test"),
        device=torch.device("cpu"),
    )


def test_pretrain_never_sees_val_or_test_and_its_export_verifies(
    derived: Path, text_model: Path, tmp_path: Path
) -> None:
    from workflow_scripts import verify_model

    first = _pretrain(derived, text_model, tmp_path / "first")
    # Change every val and test bar of the experiment: the export must not change by a bit.
    changed = tmp_path / "changed"
    changed.mkdir()
    for path in derived.iterdir():
        target = changed / path.name
        if path.name.startswith(("val_", "test_")) and path.suffix == ".npy":
            array = np.load(path)
            noise = np.random.default_rng(1).standard_normal(array.shape) * 7 + 3
            np.save(target, (array + noise.astype(array.dtype)) if array.dtype.kind == "f" else array)
        else:
            target.write_bytes(path.read_bytes())
    second = _pretrain(changed, text_model, tmp_path / "second")
    weights = [(tmp_path / run / "model.safetensors").read_bytes() for run in ("first", "second")]
    assert weights[0] == weights[1]
    assert first["pretrain"]["source_data_hash"] == second["pretrain"]["source_data_hash"]
    assert first["files"] == second["files"]
    # Verified like any checkpoint: its trained weights pass every existing check.
    out = tmp_path / "first" / "verification.json"
    assert verify_model.main(["--model-dir", str(tmp_path / "first"), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["source"] == "pretrain" and all(v == "passed" for v in record["checks"].values())
    assert "not_random_init" in record["checks"]


def test_pretrain_manifest_records_source_steps_seed_and_loss_curve(
    derived: Path, text_model: Path, tmp_path: Path
) -> None:
    manifest = _pretrain(derived, text_model, tmp_path / "ts")
    on_disk = json.loads((tmp_path / "ts" / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert sorted(p.name for p in (tmp_path / "ts").iterdir()) == [
        "config.json",
        "manifest.json",
        "model.safetensors",
        "stage1_layers.safetensors",
    ]
    info = manifest["pretrain"]
    assert info["stage1_layers"]["tensors"] and all(
        not name.startswith("encoder.") for name in info["stage1_layers"]["tensors"]
    )
    assert info["seed"] == 3
    assert (
        info["steps"] == info["planned_steps"] == PRETRAIN_TRAIN["epochs"] * PRETRAIN_TRAIN["steps_per_epoch"]
    )
    assert len(info["source_data_hash"]) == 64
    assert [row["epoch"] for row in info["loss_curve"]] == [1, 2]
    assert all(np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"]) for row in info["loss_curve"])
    split = info["source_split"]
    assert split["split"] == "train" and split["purge_gap_samples"] > 0
    assert split["train_samples"][1] + split["purge_gap_samples"] == split["val_samples"][0]
    assert info["settings"]["train"]["epochs"] == PRETRAIN_TRAIN["epochs"]


def test_train_entry_point_loads_the_timeseries_encoder_and_offsets_the_seed(
    derived: Path, text_model: Path, tmp_path: Path
) -> None:
    import torch

    from workflow_scripts.models.loading import load_encoder
    from workflow_scripts.training.identity import encoder_loader

    _pretrain(derived, text_model, tmp_path / "ts")
    load = encoder_loader(tmp_path / "ts", 1000)
    ts = load(text_model, "timeseries", seed=0).encoder.state_dict()
    exported = load_encoder(tmp_path / "ts", "pretrained").encoder.state_dict()
    assert all(torch.equal(ts[k], exported[k]) for k in exported)
    shifted = load(text_model, "random", seed=2).encoder.state_dict()
    same = load_encoder(text_model, "random", seed=1002).encoder.state_dict()
    base = load_encoder(text_model, "random", seed=2).encoder.state_dict()
    assert all(torch.equal(shifted[k], same[k]) for k in same)
    assert not all(torch.equal(shifted[k], base[k]) for k in base)


def _step0(args: list[str]) -> dict[str, torch.Tensor]:
    """The model state a train run starts from (train.prepare: every weight in place)."""
    from workflow_scripts.train import parse_args, prepare

    run, _identity = prepare(parse_args(args), logging.getLogger("test"))
    return {name: tensor.detach().clone() for name, tensor in run.model.state_dict().items()}


def test_ts_encoder_starts_from_the_pretrained_encoder_and_baselines_new_layers(
    derived: Path, text_model: Path, tmp_path: Path
) -> None:
    """ts_encoder's step 0, tensor by tensor: the encoder is the pretraining's (as ts_nofreeze's),
    the patch embedding and head are the very tensors baseline draws for that seed."""
    from tests.training_support import variant, variant_json
    from workflow_scripts import verify_model

    ts_dir = tmp_path / "ts"
    _pretrain(derived, text_model, ts_dir)
    assert verify_model.main(["--model-dir", str(ts_dir), "--out", str(ts_dir / "verification.json")]) == 0
    states = {}
    for name, init in (
        ("baseline", "random"),
        ("ts_nofreeze", "timeseries"),
        ("ts_encoder", "timeseries_encoder"),
    ):
        args = ["--variant-json", variant_json(variant(name, init=init)), "--seed", "5"]
        args += [
            "--data-dir",
            str(derived),
            "--model-dir",
            str(text_model),
            "--out-dir",
            str(tmp_path / name),
        ]
        args += ["--tensorboard-dir", str(tmp_path / "tb"), "--resume-dir", str(tmp_path / "resume" / name)]
        states[name] = _step0([*args, "--init-dir", str(ts_dir)] if init != "random" else args)
    base, whole, encoder_only = states["baseline"], states["ts_nofreeze"], states["ts_encoder"]
    assert set(base) == set(whole) == set(encoder_only)
    pretrained = load_file(str(ts_dir / "model.safetensors"))
    encoder_names = [name for name in encoder_only if name.startswith("encoder.")]
    new_layers = [name for name in encoder_only if not name.startswith("encoder.")]
    assert encoder_names and new_layers
    for name in encoder_names:
        assert torch.equal(encoder_only[name], whole[name]), name
        key = name.removeprefix("encoder.")
        if key in pretrained:
            assert torch.equal(encoder_only[name], pretrained[key]), name
    assert any(not torch.equal(encoder_only[n], base[n]) for n in encoder_names)  # not a random encoder
    for name in new_layers:
        assert torch.equal(encoder_only[name], base[name]), name
    # ts_nofreeze carries the pretraining's new layers instead (the whole-model control).
    stage1 = load_file(str(ts_dir / "stage1_layers.safetensors"))
    assert all(torch.equal(whole[name], stage1[name]) for name in stage1)
    assert any(not torch.equal(whole[name], base[name]) for name in stage1)


# --------------------------------------------------------------------------- the report's wording


def _summary(ts_gain: float, aa_gain: float, n: int = 8, enc_gain: float | None = None) -> StudyResult:
    rng = np.random.default_rng(0)
    base = rng.normal(0.1, 0.02, n)
    arms = {
        "baseline": base,
        "nofreeze": base + 0.5 * ts_gain + rng.normal(0, 0.002, n),
        "ts_nofreeze": base + ts_gain + rng.normal(0, 0.002, n),
        "ts_encoder": base + (ts_gain if enc_gain is None else enc_gain) * 0.8 + rng.normal(0, 0.002, n),
        "baseline_aa": base + aa_gain + rng.normal(0, 0.01, n),
    }
    planned = [
        {"a": "nofreeze", "b": "baseline", "role": "primary", "label": "transfer"},
        {"a": "ts_nofreeze", "b": "baseline", "role": "positive_control", "label": "positive control"},
        {"a": "ts_encoder", "b": "baseline", "role": "encoder_control", "label": "encoder-only control"},
        {"a": "baseline_aa", "b": "baseline", "role": "negative_control", "label": "A/A"},
    ]
    return study({name: skill_arm([float(v) for v in values]) for name, values in arms.items()}, planned)


def test_control_not_detected_says_so_and_warns_the_headline() -> None:
    summary = _summary(ts_gain=0.0, aa_gain=0.0)
    summary_block = summary.contrasts
    result = controls.control_summary(summary_block)
    assert result.status == controls.NOT_DETECTED
    assert result.positive.startswith(f"{controls.CONTROL_NAMES['positive_control']}: **not detected**")
    assert "can the statistics detect a large known effect" in result.positive
    assert result.encoder_status == controls.NOT_DETECTED
    # no transfer ratio as a number without a detected encoder-only control
    assert result.ratio.startswith("This study cannot see encoder transfer at this budget")
    assert "not shown as a number" in result.ratio and "=" not in result.ratio
    headline = report_headline(summary)
    assert headline.answer in (sentences.NO, sentences.CANNOT_TELL)
    assert headline.warning == controls.WARNING
    assert "could not detect a known effect" in headline.warning


def test_control_detected_gives_the_transfer_ratio_and_no_warning() -> None:
    summary = _summary(ts_gain=0.2, aa_gain=0.0)
    result = controls.control_summary(summary.contrasts)
    assert result.status == controls.DETECTED
    assert result.positive.startswith(
        f"{controls.CONTROL_NAMES['positive_control']}: detected — ts_nofreeze beats baseline"
    )
    assert result.encoder.startswith(
        f"{controls.CONTROL_NAMES['encoder_control']}: detected — ts_encoder beats baseline"
    )
    # The ratio divides by the encoder-only control (its Δ is 0.8 of the whole model's): 0.5/0.8.
    assert "(nofreeze − baseline) / (ts_encoder − baseline) = 0.62" in result.ratio
    assert report_headline(summary).warning == ""
    assert result.negative and result.negative[0].startswith("Negative control: no difference declared")
    ratio = controls.transfer_ratio(
        summary.contrasts.of_role("primary"),
        controls.positive_control(summary.contrasts, "encoder_control").row,
    )
    assert ratio is not None and ratio.low <= ratio.ratio <= ratio.high
    whole = controls.transfer_ratio(
        summary.contrasts.of_role("primary"),
        controls.positive_control(summary.contrasts).row,
    )
    assert whole is not None and f"= {ratio.ratio:.2f}" in result.ratio
    assert f"= {whole.ratio:.2f}" not in result.ratio


def test_encoder_control_not_detected_hides_the_ratio_while_the_whole_model_is_detected() -> None:
    summary = _summary(ts_gain=0.2, aa_gain=0.0, enc_gain=0.0)
    result = controls.control_summary(summary.contrasts)
    assert (result.status, result.encoder_status) == (controls.DETECTED, controls.NOT_DETECTED)
    assert result.ratio.startswith("This study cannot see encoder transfer at this budget")
    assert "ts_encoder" in result.ratio and "= " not in result.ratio
    skipped = _summary(ts_gain=0.2, aa_gain=0.0)
    block = contrasts.analyse(
        skipped.variants,
        [
            {"a": "nofreeze", "b": "baseline", "role": "primary"},
            {"a": "ts_nofreeze", "b": "baseline", "role": "positive_control"},
            {"a": "ts_encoder_off", "b": "baseline", "role": "encoder_control"},
        ],
        metrics=("test_skill",),
    )
    off = controls.control_summary(block)
    assert off.encoder.startswith(f"{controls.CONTROL_NAMES['encoder_control']}: not run")
    assert off.ratio.startswith("Transfer ratio not shown")


def test_a_control_detected_on_squared_errors_only_is_not_plainly_detected() -> None:
    """ts_nofreeze far ahead on MSE skill but level on MAE skill: the line says under which metric
    it holds, the headline keeps the control's warning and no transfer ratio is a number."""
    rng = np.random.default_rng(5)
    base = rng.normal(0.1, 0.02, 8)
    mae = rng.normal(0.05, 0.02, 8)
    arms = {
        "baseline": skill_arm(list(base), mae=list(mae)),
        "nofreeze": skill_arm(list(base - 0.05 + rng.normal(0, 0.002, 8)), mae=list(mae - 0.04)),
        "ts_nofreeze": skill_arm(
            list(base + 0.2 + rng.normal(0, 0.002, 8)), mae=list(mae + rng.normal(0, 0.02, 8))
        ),
        "ts_encoder": skill_arm(list(base + 0.15 + rng.normal(0, 0.002, 8)), mae=list(mae + 0.1)),
    }
    planned = [
        {"a": "nofreeze", "b": "baseline", "role": "primary", "label": "transfer"},
        {"a": "ts_nofreeze", "b": "baseline", "role": "positive_control", "label": "positive control"},
        {"a": "ts_encoder", "b": "baseline", "role": "encoder_control", "label": "encoder-only control"},
    ]
    summary = study(arms, planned)
    result = controls.control_summary(summary.contrasts)
    assert result.status == controls.MSE_ONLY and result.status != controls.DETECTED
    assert "On absolute errors: not detected" in result.positive and controls.MSE_ONLY in result.positive
    assert result.encoder_status == controls.DETECTED  # both metrics see the encoder-only control
    head = report_headline(summary)
    assert head.answer == sentences.NO and head.warning == controls.WARNING
    assert head.second_metric.startswith("On absolute errors") and "the same answer" in head.second_metric


def test_a_declared_negative_control_is_reported_as_a_false_alarm() -> None:
    summary = _summary(ts_gain=0.2, aa_gain=0.1)
    assert controls.control_summary(summary.contrasts).negative[0].startswith("Negative control: FALSE ALARM")
    # The headline itself carries the warning, whatever its answer.
    assert controls.FALSE_ALARM_WARNING in report_headline(summary).warning
    assert controls.FALSE_ALARM_WARNING not in report_headline(_summary(ts_gain=0.2, aa_gain=0.0)).warning


def test_default_config_runs_both_positive_controls_and_the_aa_arm_offline_does_not() -> None:
    """config.yaml declares ts_encoder and baseline_aa enabled; offline.yaml (budget-sized) runs
    both positive controls but not the A/A arm."""
    from workflow_scripts.config.loader import load_experiment_file

    repo = Path(__file__).resolve().parents[1]
    default = load_experiment_file(repo / "config" / "config.yaml")
    assert default.variants["ts_encoder"].init == "timeseries_encoder"
    assert default.variants["baseline_aa"].init_seed_offset == 1000
    roles = {(c.a, c.role) for c in default.contrasts}
    assert {("ts_nofreeze", "positive_control"), ("ts_encoder", "encoder_control")} <= roles
    assert ("baseline_aa", "negative_control") in roles
    from snakemake.utils import update_config

    raw = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    offline_raw = yaml.safe_load((repo / "config" / "offline.yaml").read_text())
    update_config(raw, offline_raw)  # what `snakemake --configfile config/offline.yaml` does
    offline = load_experiment(raw)
    assert "baseline_aa" not in offline.variants
    assert {"nofreeze", "baseline", "ts_nofreeze", "ts_encoder"} <= set(offline.variants)


def test_init_timeseries_refuses_altered_or_misfitting_stage1_layers(tmp_path: Path) -> None:
    """The pretraining's new layers are pinned by sha256 and must fit the model they go into."""
    from torch import nn

    from workflow_scripts.training.new_layers import NewLayersError, export_new_layers, load_new_layers

    class Tiny(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.embedding = nn.Linear(3, width)
            self.encoder = nn.Linear(width, width)
            self.head = nn.Linear(width, 3)

    source = Tiny(4)
    record = export_new_layers(source, tmp_path)
    assert record["tensors"] == ["embedding.bias", "embedding.weight", "head.bias", "head.weight"]
    target = Tiny(4)
    assert load_new_layers(target, tmp_path, record) == record["tensors"]
    assert torch.equal(target.head.weight, source.head.weight)
    assert not torch.equal(target.encoder.weight, source.encoder.weight)  # the encoder comes elsewhere
    with pytest.raises(NewLayersError, match="does not fit this model"):
        load_new_layers(Tiny(5), tmp_path, record)
    with pytest.raises(NewLayersError, match="no longer has the sha256"):
        load_new_layers(target, tmp_path, {**record, "sha256": "0" * 64})
    with pytest.raises(NewLayersError, match="is missing"):
        load_new_layers(target, tmp_path, None)


def test_pretrain_seed_must_not_be_an_experiment_seed() -> None:
    raw = {"seeds": [0, 1], "pretrain": {"seed": 1}, "variants": {"ts_nofreeze": {"init": "timeseries"}}}
    with pytest.raises(ConfigError, match=r"pretrain.seed = 1 is also in seeds"):
        load_experiment(raw)


def test_transfer_ratio_is_unbounded_when_the_control_delta_can_change_sign() -> None:
    units = [Unit("s", 0, seed) for seed in range(8)]
    primary: Any = SimpleNamespace(units=units, deltas=[0.1, -0.2, 0.05, 0.0, 0.1, -0.1, 0.2, 0.0])
    noisy: Any = SimpleNamespace(units=units, deltas=[0.5, -0.45, 0.4, -0.35, 0.3, -0.2, 0.1, 0.05])
    ratio = controls.transfer_ratio(primary, noisy)
    assert ratio is not None and ratio.low == -math.inf and ratio.high == math.inf
    steady: Any = SimpleNamespace(units=units, deltas=[0.3, 0.28, 0.31, 0.27, 0.3, 0.29, 0.33, 0.25])
    bounded = controls.transfer_ratio(primary, steady)
    assert bounded is not None and math.isfinite(bounded.low) and math.isfinite(bounded.high)


def test_pretraining_on_the_experiments_own_input_with_other_splits_is_refused() -> None:
    """Other split fractions on the same input would move validation/test bars into its train split."""
    raw = {
        "variants": {"ts_nofreeze": {"init": "timeseries"}},
        "pretrain": {"data": {"name": "msft-wider", "train_fraction": 0.8, "val_fraction": 0.1}},
    }
    with pytest.raises(
        ConfigError, match=r"pretrain\.data: the experiment's own input with other train_fraction"
    ):
        load_experiment(raw)
    raw["pretrain"]["data"] = {"name": "msft-same-splits"}  # same input, same splits: its train split only
    load_experiment(raw)


def test_init_seed_offset_is_refused_where_it_would_be_ignored() -> None:
    raw = {"variants": {"small_aa": {"init": "random", "encoder": "small", "init_seed_offset": 3}}}
    with pytest.raises(ConfigError, match="with encoder checkpoint"):
        load_experiment(raw)


# --------------------------------------------------------------------------- which data the pretraining saw


def _with_control(experiment: dict[str, Any], pretrain_data: dict[str, Any] | None) -> dict[str, Any]:
    variants = dict(experiment["variants"])
    variants["ts_nofreeze"] = {**variants["baseline"], "name": "ts_nofreeze", "init": "timeseries"}
    return {
        **experiment,
        "variants": variants,
        "pretrain": {
            "enabled": True,
            "seed": 99991,
            "source_fraction": 0.8,
            "data": pretrain_data,
            "train": {},
        },
    }


def test_report_names_the_pretraining_data_and_warns_when_it_is_the_own_train_split(tmp_path: Path) -> None:
    from report_fixtures import collect_argv, experiment, report_argv, write_smoke_runs

    from workflow_scripts import collect, report

    base = experiment()
    assert controls.pretraining_data(base) == controls.PretrainingData()  # no control, no line
    own = controls.pretraining_data(_with_control(base, None))
    assert own.text.startswith("Pretraining data: the experiment's own train split (smoke")
    assert own.warning == controls.SAME_DATA_WARNING
    assert "partly measures extra training on the same data" in own.warning
    # pretrain.data naming the experiment's own input (same splits) is still its own train split.
    same_input = {**base["series"][0], "name": "smoke-copy"}
    assert controls.pretraining_data(_with_control(base, same_input)).warning == controls.SAME_DATA_WARNING
    other = {**base["series"][0], "name": "usdjpy-daily", "path": "data/raw/usdjpy.parquet"}
    elsewhere = controls.pretraining_data(_with_control(base, other))
    assert elsewhere.warning == "" and "usdjpy-daily (data/raw/usdjpy.parquet)" in elsewhere.text

    write_smoke_runs(tmp_path)
    assert collect.main(collect_argv(tmp_path)) == 0
    for data, warned in ((None, True), (other, False)):
        assert report.main(report_argv(tmp_path, _with_control(base, data))) == 0
        for name in ("report.md", "report.html"):
            text = (tmp_path / "results" / name).read_text()
            assert "Pretraining data:" in text
            assert ("partly measures extra training on the same data" in text) is warned


# ------------------------------------------------------------------- pretraining resumes after kill -9


def test_pretraining_killed_with_kill_9_after_an_epoch_resumes_to_the_same_weights(
    derived: Path, text_model: Path, tmp_path: Path
) -> None:
    """The pretrain entry point, killed with SIGKILL once its first epoch is committed, resumes
    from that epoch (not from scratch) and exports exactly the uninterrupted run's weights."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import job_environment

    train = {**PRETRAIN_TRAIN, "epochs": 3, "steps_per_epoch": 40}
    params = load_experiment(
        {"train": train, "pretrain": {"seed": 3, "source_fraction": 0.7}}
    ).pretrain.to_params()
    resume = tmp_path / "resume"
    command = [
        sys.executable, "-m", "workflow_scripts.pretrain", "--pretrain-json", json.dumps(params),
        "--data-dir", str(derived), "--model-dir", str(text_model), "--out-dir", str(tmp_path / "killed"),
        "--resume-dir", str(resume),
    ]  # fmt: skip
    # One thread in every run: the reduction order, and so the last bit, depends on it.
    env = {**job_environment(), "OMP_NUM_THREADS": "1"}
    whole = [*command[:-4], "--out-dir", str(tmp_path / "whole")]
    assert subprocess.run(whole, env=env, capture_output=True, timeout=600).returncode == 0
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (resume / "epoch-0001").is_dir():
            assert process.poll() is None, "the pretraining ended before its first epoch was committed"
            assert time.monotonic() < deadline, "no epoch committed in 300 s"
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "manifest.json").exists()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    manifest = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert manifest["pretrain"]["resumed_from_epoch"] in (1, 2)  # resumed, not started over
    for name in ("model.safetensors", "stage1_layers.safetensors"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert not list(resume.glob("epoch-*"))  # the state is cleared once the export is complete
