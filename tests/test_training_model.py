"""The model and optimiser guarantees of issue 5: what the original study got wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.tiny_models import make_tiny_bert, make_tiny_t5
from tests.training_support import variant, write_synthetic_derived
from workflow_scripts.data.derived import DerivedDataset, load_derived
from workflow_scripts.training.bench_hooks import make_step_fn
from workflow_scripts.training.build import Run, build_run
from workflow_scripts.training.feed import train_batch
from workflow_scripts.training.freezing import norm_parameters
from workflow_scripts.training.loop import train_epoch
from workflow_scripts.training.model import input_embedding_weight
from workflow_scripts.training.optim import optimizer_parameter_ids
from workflow_scripts.training.precision import PrecisionError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DerivedDataset:
    directory = tmp_path_factory.mktemp("derived")
    return load_derived(write_synthetic_derived(directory, bars={"train": 600, "val": 300, "test": 200}))


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny "pretrained" T5 whose token embeddings have RMS ~7, far from the LayerNorm's 1."""
    directory = make_tiny_t5(tmp_path_factory.mktemp("t5"))
    weights = load_file(directory / "model.safetensors")
    weights["shared.weight"] = weights["shared.weight"] * 7.0
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    return directory


def _run(dataset: DerivedDataset, model_dir: Path, **overrides: object) -> Run:
    return build_run(variant(**overrides), 0, dataset, model_dir, patch_len=8)


def _encoder_params(run: Run) -> dict[str, torch.Tensor]:
    assert run.model.encoder is not None
    return {name: p.detach().clone() for name, p in run.model.encoder.named_parameters()}


def test_pretrained_encoder_starts_from_the_checkpoint_and_baseline_does_not(
    dataset: DerivedDataset, t5_dir: Path
) -> None:
    checkpoint = load_file(t5_dir / "model.safetensors")
    pretrained = _encoder_params(_run(dataset, t5_dir, init="pretrained"))
    baseline = _encoder_params(_run(dataset, t5_dir, init="random"))
    compared = 0
    for name, value in pretrained.items():
        if name in checkpoint:
            assert torch.equal(value, checkpoint[name]), name
            compared += 1
    assert compared == len(pretrained)  # every encoder parameter comes from the file
    assert not torch.equal(baseline["encoder.block.0.layer.0.SelfAttention.q.weight"],
                           pretrained["encoder.block.0.layer.0.SelfAttention.q.weight"])  # fmt: skip


def test_baseline_has_the_pretrained_variants_parameter_count(dataset: DerivedDataset, t5_dir: Path) -> None:
    counts = {
        init: _run(dataset, t5_dir, init=init, freeze_epochs=0).model for init in ("pretrained", "random")
    }
    shapes = {init: [(n, p.shape) for n, p in model.named_parameters()] for init, model in counts.items()}
    assert shapes["pretrained"] == shapes["random"]
    assert sum(p.numel() for p in counts["pretrained"].parameters()) == sum(
        p.numel() for p in counts["random"].parameters()
    )


def test_patch_embedding_is_scaled_to_the_checkpoint_token_rms(dataset: DerivedDataset, t5_dir: Path) -> None:
    run = _run(dataset, t5_dir)
    table = load_file(t5_dir / "model.safetensors")["shared.weight"]
    expected = float(table.pow(2).mean().sqrt())
    assert expected > 5  # the fixture is far from unit scale, so the test can fail
    assert run.model.embedding.scale.item() == pytest.approx(expected, rel=1e-5)
    windows = run.train_source.windows(torch.arange(16))
    mask = torch.zeros(16, 2, 32, dtype=torch.bool)
    mask[:, :, 8:16] = True
    with torch.no_grad():
        tokens = run.model.embed(windows, mask)
    assert float(tokens.pow(2).mean().sqrt()) == pytest.approx(expected, rel=0.05)
    unscaled = _run(dataset, t5_dir, embedding_scale="none")
    assert unscaled.model.embedding.scale.item() == 1.0


def test_pretrained_and_random_arms_get_identical_step_zero_patch_embeddings(
    dataset: DerivedDataset, t5_dir: Path
) -> None:
    """For one seed, baseline and nofreeze differ only in the encoder's weights."""
    arms = {init: _run(dataset, t5_dir, init=init) for init in ("pretrained", "random")}
    idx = torch.arange(16)
    generator = torch.Generator().manual_seed(3)
    batch = train_batch(arms["pretrained"], idx, generator)
    with torch.no_grad():
        tokens = {init: run.model.embed(batch.inputs, batch.mask) for init, run in arms.items()}
    assert torch.equal(tokens["pretrained"], tokens["random"])
    assert arms["random"].model.embedding.scale.item() == pytest.approx(7.0 * 1.0, rel=0.3)
    # the explicit per-arm option scales the random arm by its own (unit-scale) table instead
    own = _run(dataset, t5_dir, init="random", embedding_scale="own")
    assert own.model.embedding.scale.item() < 0.5 * arms["random"].model.embedding.scale.item()


def test_optimizer_holds_every_parameter_from_step_zero(dataset: DerivedDataset, t5_dir: Path) -> None:
    for freeze_epochs in (0, 1, 2):
        run = _run(dataset, t5_dir, freeze_epochs=freeze_epochs)
        held = optimizer_parameter_ids(run.optimizer)
        assert sorted(held) == sorted(id(p) for p in run.model.parameters())
        assert len(held) == len(set(held))


def test_frozen_encoder_is_bit_identical_until_unfrozen_then_changes(
    dataset: DerivedDataset, t5_dir: Path
) -> None:
    run = _run(dataset, t5_dir, freeze_epochs=1, epochs=2, steps_per_epoch=3, warmup_steps=1)
    initial = _encoder_params(run)
    embedding_before = run.model.embedding.proj.weight.detach().clone()
    train_epoch(run, 1)
    after_frozen = _encoder_params(run)
    assert all(torch.equal(initial[n], after_frozen[n]) for n in initial)
    assert not torch.equal(embedding_before, run.model.embedding.proj.weight)  # new layers learn
    row, _ = train_epoch(run, 2)
    after_unfrozen = _encoder_params(run)
    unused = input_embedding_weight(run.model.encoder)
    changed = [n for n in initial if not torch.equal(initial[n], after_unfrozen[n])]
    named = dict(run.model.encoder.named_parameters())  # type: ignore[union-attr]
    trainable = [n for n in initial if named[n] is not unused]
    assert sorted(changed) == sorted(trainable)
    assert row["encoder_lr"] > 0 and not row["encoder_frozen"]


def test_a_frozen_step_computes_no_encoder_weight_gradients(dataset: DerivedDataset, t5_dir: Path) -> None:
    run = _run(dataset, t5_dir, freeze_epochs=2)
    make_step_fn(run)()
    encoder = run.model.encoder
    assert encoder is not None
    assert all(p.grad is None for p in encoder.parameters())
    assert run.model.embedding.proj.weight.grad is not None  # gradients flow through the encoder


def test_frozen_ln_trains_only_the_encoder_norms(dataset: DerivedDataset, t5_dir: Path) -> None:
    run = _run(
        dataset,
        t5_dir,
        freeze_epochs=2,
        trainable_while_frozen="layernorm",
        steps_per_epoch=2,
        warmup_steps=1,
    )
    initial = _encoder_params(run)
    train_epoch(run, 1)
    encoder = run.model.encoder
    assert encoder is not None
    norms = {id(p) for p in norm_parameters(encoder)}
    for name, parameter in encoder.named_parameters():
        assert torch.equal(initial[name], parameter) != (id(parameter) in norms), name


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fp32_and_bf16_paths_train(dataset: DerivedDataset, t5_dir: Path, precision: str) -> None:
    run = _run(dataset, t5_dir, precision=precision, steps_per_epoch=3)
    assert run.precision.name == precision
    row, result = train_epoch(run, 1)
    assert torch.isfinite(torch.tensor([row["train_loss"], row["val_loss"], result.correlation])).all()


def test_fp16_with_t5_is_refused_by_the_trainer(dataset: DerivedDataset, t5_dir: Path) -> None:
    with pytest.raises(PrecisionError, match="force_fp16"):
        _run(dataset, t5_dir, precision="fp16")


def test_optional_variants_and_other_encoders_train(
    dataset: DerivedDataset, t5_dir: Path, tmp_path: Path
) -> None:
    no_encoder = _run(dataset, t5_dir, encoder="none", steps_per_epoch=2)
    assert no_encoder.model.encoder is None
    train_epoch(no_encoder, 1)
    small = _run(
        dataset,
        t5_dir,
        encoder="small",
        init="random",
        small_encoder={"d_model": 16, "num_layers": 1, "num_heads": 2, "d_ff": 32},
        steps_per_epoch=2,
    )
    assert small.model.encoder is not None and small.model.encoder.config.d_model == 16
    train_epoch(small, 1)
    with pytest.raises(ValueError, match=r"small_encoder\.hidden_layers"):
        _run(dataset, t5_dir, encoder="small", init="random", small_encoder={"hidden_layers": 1})
    bert = _run(dataset, make_tiny_bert(tmp_path / "bert"), steps_per_epoch=2, freeze_epochs=1)
    train_epoch(bert, 1)
    forecast = _run(dataset, t5_dir, task="forecast", horizon=4, steps_per_epoch=2)
    row, _ = train_epoch(forecast, 1)
    assert set(forecast.scoring.naive_val) == {"window_mean", "last_value", "seasonal_naive"}
    assert row["val_correlation"] == row["val_correlation"]  # not NaN


@pytest.mark.parametrize("tokens", ["per_timeframe", "per_feature"])
def test_token_layouts_cover_every_bar_once_and_train(
    dataset: DerivedDataset, t5_dir: Path, tokens: str
) -> None:
    run = _run(dataset, t5_dir, tokens=tokens, steps_per_epoch=2)
    model, shape = run.model, run.model.shape
    per_token = 1 if tokens == "per_timeframe" else shape.n_features
    assert shape.n_tokens == shape.n_timeframes * per_token * shape.n_patches
    windows = run.train_source.windows(torch.arange(4))
    assert torch.equal(model._bars(model._groups(windows).flatten(-2)), windows)
    mask = torch.zeros(4, shape.n_timeframes, shape.seq_len, dtype=torch.bool)
    mask[:, :, 3:7] = True
    with torch.no_grad():
        tokens_out = model.embed(windows, mask)
        changed = windows.clone()
        changed[:, :, 3:7] = 99.0  # masked bars never reach the tokens
        assert torch.equal(tokens_out, model.embed(changed, mask))
        assert model(windows, mask).shape == windows.shape
    assert tokens_out.shape[1] == shape.n_tokens
    row, _ = train_epoch(run, 1)
    assert np.isfinite(row["val_loss"])


def test_a_validation_skill_of_exactly_zero_is_recorded_not_taken_for_missing(
    dataset: DerivedDataset, t5_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As good as naive is 0.0, a number: it must neither become NaN nor stop the run."""
    run = _run(dataset, t5_dir, steps_per_epoch=1)
    monkeypatch.setattr(run.scoring, "skill", lambda result, naive: {"skill": 0.0})
    row, _ = train_epoch(run, 1)
    assert row["val_skill"] == 0.0
