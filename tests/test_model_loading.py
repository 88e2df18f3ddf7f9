"""load_encoder (shared by verify_model and training) and the require_verified gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import TINY_T5, make_tiny_bert, make_tiny_t5
from transformers import BertModel, T5EncoderModel

from workflow_scripts import download_model, verify_model
from workflow_scripts.models.loading import (
    ModelLoadError,
    ModelNotVerifiedError,
    load_encoder,
    require_verified,
)


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_t5(tmp_path_factory.mktemp("t5") / "model")


@pytest.fixture(scope="module")
def verified_t5(tiny_t5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A downloaded and verified tiny T5 (copy it before damaging it)."""
    model_dir = tmp_path_factory.mktemp("verified") / "m"
    assert download_model.main(["--name-or-path", str(tiny_t5), "--out-dir", str(model_dir)]) == 0
    out = model_dir / "verification.json"
    assert verify_model.main(["--model-dir", str(model_dir), "--out", str(out)]) == 0
    return model_dir


def _forward(encoder: torch.nn.Module, hidden: int) -> torch.Tensor:
    x = torch.randn(2, 5, hidden)
    with torch.no_grad():
        return encoder(inputs_embeds=x, attention_mask=torch.ones(2, 5, dtype=torch.long)).last_hidden_state


def test_pretrained_t5_is_the_encoder_with_checkpoint_weights(tiny_t5: Path) -> None:
    loaded = load_encoder(tiny_t5, "pretrained")
    assert isinstance(loaded.encoder, T5EncoderModel)
    assert (loaded.model_type, loaded.hidden_size) == ("t5", TINY_T5["d_model"])
    stored = load_file(tiny_t5 / "model.safetensors")
    weights = dict(loaded.encoder.named_parameters())
    assert torch.equal(weights["shared.weight"], stored["shared.weight"])
    key = "encoder.block.1.layer.1.DenseReluDense.wo.weight"
    assert torch.equal(weights[key], stored[key])
    rms = float(stored["shared.weight"].pow(2).mean().sqrt())
    assert loaded.token_embedding_rms == pytest.approx(rms, rel=1e-6)
    assert _forward(loaded.encoder, loaded.hidden_size).shape == (2, 5, TINY_T5["d_model"])


def test_random_is_the_same_class_freshly_initialised(tiny_t5: Path) -> None:
    pretrained = load_encoder(tiny_t5, "pretrained")
    state = torch.random.get_rng_state()
    first = load_encoder(tiny_t5, "random", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state), "the caller's RNG state must not change"
    again = load_encoder(tiny_t5, "random", seed=3)
    other = load_encoder(tiny_t5, "random", seed=4)
    assert type(first.encoder) is type(pretrained.encoder)
    assert first.config.to_dict() == pretrained.config.to_dict()
    name = "encoder.block.0.layer.0.SelfAttention.q.weight"
    a, b, c, p = (dict(m.encoder.named_parameters())[name] for m in (first, again, other, pretrained))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, p)
    # T5's own initializer: the shared embedding is N(0, initializer_factor), so its RMS is ~1.
    assert first.token_embedding_rms == pytest.approx(1.0, abs=0.15)


def test_bert_checkpoints_load_as_bert_model(tmp_path: Path) -> None:
    source = make_tiny_bert(tmp_path / "bert")
    for init in ("pretrained", "random"):
        loaded = load_encoder(source, init)  # type: ignore[arg-type]
        assert isinstance(loaded.encoder, BertModel) and loaded.model_type == "bert"
        assert _forward(loaded.encoder, loaded.hidden_size).shape == (2, 5, 32)


def test_pretrained_loading_is_strict(tiny_t5: Path, tmp_path: Path) -> None:
    source = tmp_path / "partial"
    shutil.copytree(tiny_t5, source)
    state = load_file(source / "model.safetensors")
    save_file({k: v for k, v in state.items() if "encoder.block.1." not in k}, source / "model.safetensors")
    with pytest.raises(ModelLoadError) as caught:
        load_encoder(source, "pretrained")
    assert caught.value.check == "keys" and "encoder.block.1." in str(caught.value)
    with pytest.raises(ValueError, match="init must be"):
        load_encoder(tiny_t5, "pretrain")  # type: ignore[arg-type]


def test_require_verified_accepts_a_verified_model(verified_t5: Path) -> None:
    record = require_verified(verified_t5)
    assert record["checks"]["not_random_init"] == "passed"


def test_require_verified_without_verification_json(tiny_t5: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    assert download_model.main(["--name-or-path", str(tiny_t5), "--out-dir", str(model_dir)]) == 0
    with pytest.raises(ModelNotVerifiedError, match=r"verification\.json is missing"):
        require_verified(model_dir)


@pytest.mark.parametrize("damage", ["truncate", "alter", "config"])
def test_require_verified_refuses_damaged_files(verified_t5: Path, tmp_path: Path, damage: str) -> None:
    model_dir = tmp_path / "m"
    shutil.copytree(verified_t5, model_dir)
    weights = model_dir / "model.safetensors"
    if damage == "truncate":
        with open(weights, "r+b") as handle:
            handle.truncate(weights.stat().st_size // 2)
    elif damage == "alter":
        with open(weights, "r+b") as handle:
            handle.seek(-8, 2)
            handle.write(b"\x01" * 8)
    else:
        config = json.loads((model_dir / "config.json").read_text())
        config["num_layers"] = 1
        (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotVerifiedError) as caught:
        require_verified(model_dir)
    named = "config.json" if damage == "config" else "model.safetensors"
    assert named in str(caught.value) and "verification.json" in str(caught.value)


def test_require_verified_refuses_failed_or_swapped_records(verified_t5: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    shutil.copytree(verified_t5, model_dir)
    record = json.loads((model_dir / "verification.json").read_text())
    record["checks"]["keys"] = "failed"
    (model_dir / "verification.json").write_text(json.dumps(record))
    with pytest.raises(ModelNotVerifiedError, match="did not pass"):
        require_verified(model_dir)
    (model_dir / "verification.json").write_text("{not json")
    with pytest.raises(ModelNotVerifiedError, match="unreadable"):
        require_verified(model_dir)
