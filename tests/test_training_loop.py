"""The training loop end to end: learning, NaN, resume, determinism, outputs, the entry point."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.tiny_models import make_tiny_t5
from tests.training_support import variant, variant_json, verified_model, write_synthetic_derived
from workflow_scripts import train
from workflow_scripts.data.derived import DerivedDataset, load_derived
from workflow_scripts.training import identity
from workflow_scripts.training.build import build_run
from workflow_scripts.training.identity import RunIdentity
from workflow_scripts.training.loop import InjectedFailure, NonFiniteError, fit, score_on_test
from workflow_scripts.training.outputs import METRIC_COLUMNS, TIMING_COLUMNS

IDENTITY = RunIdentity("config", "model", "data", "resume-key")
SUMMARY_KEYS = {
    "variant", "series", "fold", "seed", "status", "task", "normalisation", "epochs_completed", "best_epoch",
    "selection",
    "best",
    "final", "test", "learning", "convergence", "budget_curve", "naive_baselines", "runtime_s",
    "samples_per_s", "params_total",
    "params_trainable", "params_encoder", "embedding_scale", "device", "precision", "resumed_from_epoch",
    "config_hash", "model_hash", "data_hash", "description",
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_derived(tmp_path_factory.mktemp("derived"))


@pytest.fixture(scope="module")
def dataset(data_dir: Path) -> DerivedDataset:
    return load_derived(data_dir)


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_t5(tmp_path_factory.mktemp("t5"))


def _fit(
    dataset: DerivedDataset, model_dir: Path, root: Path, config: Any, resume: Path | None = None
) -> dict:
    run = build_run(config, 0, dataset, model_dir, patch_len=8)
    return fit(run, root / "out", root / "tb", resume or root / "resume", IDENTITY)


def _metrics(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and list(rows[0]) == list(METRIC_COLUMNS)
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def test_a_tiny_model_learns_a_learnable_series(
    dataset: DerivedDataset, t5_dir: Path, tmp_path: Path
) -> None:
    config = variant(
        epochs=4, steps_per_epoch=30, learning_rate=3e-3, encoder_learning_rate=1e-3, warmup_steps=10
    )
    summary = _fit(dataset, t5_dir, tmp_path, config)
    # the masked spans of a smooth series are learnable: the model beats carrying the last bar
    # forward and "predict nothing" (interpolating a smooth sine is near-perfect, so the
    # strongest naive rule is out of reach for 120 steps of a tiny model)
    naive = summary.naive_baselines
    assert summary.best.val_loss < min(naive["last_value"]["val_loss"], naive["window_mean"]["val_loss"])
    assert summary.best.val_loss < 0.5 * naive["window_mean"]["val_loss"]
    assert summary.test.skill < 1 and summary.learning.auc_val_loss > summary.best.val_loss
    rows = _metrics(tmp_path / "out" / "metrics.csv")
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_a_nan_stops_the_run_naming_epoch_and_step(
    dataset: DerivedDataset, t5_dir: Path, tmp_path: Path
) -> None:
    run = build_run(variant(steps_per_epoch=4), 0, dataset, t5_dir, patch_len=8)
    with torch.no_grad():
        run.model.head.proj.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match=r"non-finite training loss \(nan\) at epoch 1, step 1 of 4"):
        fit(run, tmp_path / "out", tmp_path / "tb", tmp_path / "resume", IDENTITY)
    assert not (tmp_path / "out" / "summary.json").exists()


RESUME_CONFIG = {"freeze_epochs": 1, "epochs": 3, "steps_per_epoch": 4}


@pytest.fixture(scope="module")
def uninterrupted(dataset: DerivedDataset, t5_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    _fit(dataset, t5_dir, root, variant("freeze", **RESUME_CONFIG))
    return root


def test_same_config_and_seed_give_identical_metrics(
    dataset: DerivedDataset, t5_dir: Path, tmp_path: Path, uninterrupted: Path
) -> None:
    _fit(dataset, t5_dir, tmp_path, variant("freeze", **RESUME_CONFIG))
    assert _metrics(tmp_path / "out" / "metrics.csv") == _metrics(uninterrupted / "out" / "metrics.csv")


def test_owners_computed_per_batch_give_the_same_run(
    dataset: DerivedDataset,
    t5_dir: Path,
    tmp_path: Path,
    uninterrupted: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Splits too large for precomputed owners compute them per batch: bit for bit the same run."""
    from workflow_scripts.training import batches

    monkeypatch.setattr(batches, "OWNER_INDEX_MAX_BYTES", 0)
    run = build_run(variant("freeze", **RESUME_CONFIG), 0, dataset, t5_dir, patch_len=8)
    assert run.train_source.owners is None
    fit(run, tmp_path / "out", tmp_path / "tb", tmp_path / "resume", IDENTITY)
    assert _metrics(tmp_path / "out" / "metrics.csv") == _metrics(uninterrupted / "out" / "metrics.csv")


def test_a_resumed_run_equals_an_uninterrupted_one(
    dataset: DerivedDataset,
    t5_dir: Path,
    tmp_path: Path,
    uninterrupted: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resume = tmp_path / "resume"
    with pytest.raises(InjectedFailure, match="epoch 3"):
        _fit(
            dataset,
            t5_dir,
            tmp_path / "killed",
            variant("freeze", inject_failure_at_epoch=3, **RESUME_CONFIG),
            resume,
        )
    assert [p.name for p in resume.iterdir()] == ["epoch-0002"]
    with caplog.at_level(logging.INFO):
        summary = _fit(dataset, t5_dir, tmp_path / "rerun", variant("freeze", **RESUME_CONFIG), resume)
    assert "resuming from epoch 2" in caplog.text
    assert summary.resumed_from_epoch == 2
    assert _metrics(tmp_path / "rerun" / "out" / "metrics.csv") == _metrics(
        uninterrupted / "out" / "metrics.csv"
    )
    expected = load_file(uninterrupted / "out" / "best.safetensors")
    actual = load_file(tmp_path / "rerun" / "out" / "best.safetensors")
    assert expected.keys() == actual.keys() and all(torch.equal(expected[k], actual[k]) for k in expected)
    assert not list(resume.iterdir())  # state is removed once the run completed
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "rerun" / "tb"))
    events.Reload()
    steps = [event.step for event in events.Scalars("val/correlation")]
    assert steps == [1, 2, 3]  # the epochs before the resume are written again


def test_corrupted_resume_state_restarts_from_scratch(
    dataset: DerivedDataset,
    t5_dir: Path,
    tmp_path: Path,
    uninterrupted: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resume = tmp_path / "resume"
    with pytest.raises(InjectedFailure):
        _fit(
            dataset,
            t5_dir,
            tmp_path / "killed",
            variant("freeze", inject_failure_at_epoch=2, **RESUME_CONFIG),
            resume,
        )
    state = resume / "epoch-0001" / "optimizer.pt"
    state.write_bytes(state.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        summary = _fit(dataset, t5_dir, tmp_path / "rerun", variant("freeze", **RESUME_CONFIG), resume)
    assert "corrupted" in caplog.text and "from scratch" in caplog.text
    assert summary.resumed_from_epoch is None
    assert _metrics(tmp_path / "rerun" / "out" / "metrics.csv") == _metrics(
        uninterrupted / "out" / "metrics.csv"
    )


def test_early_stopping_keeps_the_best_epoch(dataset: DerivedDataset, t5_dir: Path, tmp_path: Path) -> None:
    # learning rate 0 for the new layers: nothing improves after epoch 1
    config = variant(epochs=4, steps_per_epoch=2, learning_rate=1e-12, encoder_learning_rate=1e-12,
                     early_stopping_patience=1)  # fmt: skip
    summary = _fit(dataset, t5_dir, tmp_path, config)
    assert summary.status == "early_stopped" and summary.epochs_completed < 4
    assert summary.best_epoch <= summary.epochs_completed


@pytest.fixture(scope="module")
def verified_t5(t5_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return verified_model(t5_dir, tmp_path_factory.mktemp("models") / "tiny-t5")


def _cli(config: Any, data_dir: Path, model_dir: Path, root: Path, seed: int = 0) -> list[str]:
    return [
        "--variant-json", variant_json(config), "--seed", str(seed),
        "--data-dir", str(data_dir), "--model-dir", str(model_dir),
        "--out-dir", str(root / "runs" / config.name / f"seed{seed}"),
        "--tensorboard-dir", str(root / "tb"), "--resume-dir", str(root / "resume"),
    ]  # fmt: skip


def test_entry_point_writes_the_contract_outputs(data_dir: Path, verified_t5: Path, tmp_path: Path) -> None:
    config = variant("frozen_all", freeze_epochs=2, description="never trained encoder")
    assert train.main(_cli(config, data_dir, verified_t5, tmp_path)) == 0
    out = tmp_path / "runs" / "frozen_all" / "seed0"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == SUMMARY_KEYS
    assert summary["status"] == "completed" and summary["variant"] == "frozen_all"
    manifest = json.loads((data_dir / "manifest.json").read_text())
    assert (summary["series"], summary["fold"]) == (manifest["dataset"], manifest.get("fold", 0))  # its unit
    assert summary["precision"] == "fp32" and summary["device"] == "cpu"
    assert summary["params_trainable"] < summary["params_total"] - summary["params_encoder"] + 1
    assert set(summary["naive_baselines"]) == {"window_mean", "linear_interpolation", "last_value"}
    assert set(summary["best"]) == {"val_correlation", "val_loss", "val_skill", "val_mae"}
    assert summary["selection"] == {"metric": "val_loss", "epoch": summary["best_epoch"]}
    test = summary["test"]
    assert test["n_windows"] > 0 and len(test["draws"]) == 4  # train.test_mask_draws' default
    assert test["skill"] == pytest.approx(sum(d["skill"] for d in test["draws"]) / 4)
    assert test["skill_mae"] == pytest.approx(sum(d["skill_mae"] for d in test["draws"]) / 4)
    assert sum(p["n_windows"] for p in test["periods"]) == test["n_windows"] and len(test["periods"]) == 4
    # the synthetic features are close (a price) and spread (other): one skill per group
    assert isinstance(test["skill_price"], float) and isinstance(test["skill_other"], float)
    rows = _metrics(out / "metrics.csv")
    scored = [row for row in rows if row["test_skill"]]
    assert [int(row["epoch"]) for row in scored] == [summary["best_epoch"]]
    assert float(scored[0]["test_skill"]) == pytest.approx(test["skill"])
    verification = json.loads((verified_t5 / "verification.json").read_text())
    assert summary["model_hash"] == identity.model_hash(verification)
    assert len(_metrics(out / "metrics.csv")) == 2
    assert load_file(out / "best.safetensors")
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_entry_point_refuses_an_unverified_model(
    data_dir: Path, t5_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        assert train.main(_cli(variant(), data_dir, t5_dir, tmp_path)) == 1
    assert "verification.json is missing" in caplog.text
    assert not (tmp_path / "runs").exists()


def test_resume_key_ignores_only_the_failure_switch_and_descriptions() -> None:
    base = variant("freeze", **RESUME_CONFIG).to_params()
    key = identity.resume_key(base, 0, "m", "d")
    failing = variant("freeze", inject_failure_at_epoch=2, description="x", **RESUME_CONFIG).to_params()
    assert identity.resume_key(failing, 0, "m", "d") == key
    changed = variant("freeze", learning_rate=1e-3, **RESUME_CONFIG).to_params()
    assert identity.resume_key(changed, 0, "m", "d") != key
    assert identity.resume_key(base, 1, "m", "d") != key
    assert identity.resume_key(base, 0, "m", "other-data") != key


def test_budget_scores_equal_a_fresh_test_pass_of_the_checkpoint_of_that_step(
    dataset: DerivedDataset, t5_dir: Path, tmp_path: Path, uninterrupted: Path
) -> None:
    """The budget curve (issue 18): each epoch's test score is the model of that epoch, scored
    on the same fixed test masks as the final pass, by a freshly built run that never trained."""
    from workflow_scripts.training.resume import ResumeStore

    rows = _metrics(uninterrupted / "out" / "metrics.csv")
    assert all(row["budget_test_skill"] != "" for row in rows)  # every epoch end by default
    summary = json.loads((uninterrupted / "out" / "summary.json").read_text())
    assert [point["step"] for point in summary["budget_curve"]] == [4, 8, 12]
    # the kept checkpoint: the final test pass's draw 0 and the budget point of its step agree
    best_row = rows[summary["best_epoch"] - 1]
    assert float(best_row["budget_test_skill"]) == pytest.approx(
        summary["test"]["draws"][0]["skill"], rel=1e-12
    )
    # a checkpoint of an earlier step, from a run killed after it, scored by a freshly built run
    resume = tmp_path / "resume"
    config = variant("freeze", inject_failure_at_epoch=3, **RESUME_CONFIG)
    with pytest.raises(InjectedFailure):
        _fit(dataset, t5_dir, tmp_path / "killed", config, resume)
    state = ResumeStore(resume, IDENTITY.resume_key).load()
    assert state is not None and state.epoch == 2
    fresh = build_run(variant("freeze", **RESUME_CONFIG), 0, dataset, t5_dir, patch_len=8)
    test = score_on_test(fresh, state.model)
    assert test.draws[0].skill == pytest.approx(float(rows[1]["budget_test_skill"]), abs=0, rel=1e-12)
    assert set(test.channel_skill) == {
        f"{tf}.{f}" for tf in dataset.timeframes for f in dataset.feature_names
    }
