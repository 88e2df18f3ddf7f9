"""verify_model: every check accepts a good checkpoint and rejects its failure mode.

Each "pretrained" model is a tiny checkpoint built with tests/tiny_models.py, taken
through the real download_model (local source) so the manifest is genuine, then
damaged in exactly one way before or after download.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import ALWAYS, TINY_T5, make_tiny_bert, make_tiny_t5
from transformers import BertConfig, BertForPreTraining, T5Config, T5EncoderModel, T5ForConditionalGeneration

from workflow_scripts import download_model, verify_model
from workflow_scripts.models.verification import VerificationError, verify_model_dir

StateDict = dict[str, torch.Tensor]


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_t5(tmp_path_factory.mktemp("t5") / "model")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("bert") / "model")


def fetch(source: Path, out: Path) -> Path:
    """download_model on a local directory; returns the model directory."""
    assert download_model.main(["--name-or-path", str(source), "--out-dir", str(out)]) == 0
    return out


def altered_copy(source: Path, destination: Path, change: Callable[[StateDict], StateDict]) -> Path:
    """Copy a model directory, rewriting model.safetensors through ``change``."""
    shutil.copytree(source, destination)
    state = load_file(destination / "model.safetensors")
    save_file(change(state), destination / "model.safetensors", metadata={"format": "pt"})
    return destination


def failed_check(model_dir: Path) -> VerificationError:
    with pytest.raises(VerificationError) as caught:
        verify_model_dir(model_dir)
    return caught.value


def tiny_t5_counts() -> tuple[int, int]:
    config = T5Config(**TINY_T5)
    with torch.device("meta"):
        full, encoder = T5ForConditionalGeneration(config), T5EncoderModel(config)
    return sum(p.numel() for p in full.parameters()), sum(p.numel() for p in encoder.parameters())


# ----------------------------------------------------------------------------- passing models


def test_tiny_t5_passes_and_records_everything(tiny_t5: Path, tmp_path: Path) -> None:
    model_dir = fetch(tiny_t5, tmp_path / "m")
    out = model_dir / "verification.json"
    assert verify_model.main(["--model-dir", str(model_dir), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record["checks"]) == ALWAYS and set(record["checks"].values()) == {"passed"}
    full, encoder = tiny_t5_counts()
    assert (record["params_full"], record["params_encoder"]) == (full, encoder)
    assert record["params_embedding"] == TINY_T5["vocab_size"] * TINY_T5["d_model"]
    assert record["params_implied"] == {"full": full, "encoder": encoder}
    assert (record["architecture"], record["encoder_class"]) == (
        "T5ForConditionalGeneration",
        "T5EncoderModel",
    )
    assert (record["model_type"], record["dtype"], record["hidden_size"]) == (
        "t5",
        "float32",
        TINY_T5["d_model"],
    )
    assert record["expected"] is None and record["resolved_revision"] is None
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert record["weights"] == [f for f in manifest["files"] if f["path"] == "model.safetensors"]
    assert record["name_or_path"] == str(tiny_t5)


def test_tiny_bert_passes(tiny_bert: Path, tmp_path: Path) -> None:
    record = verify_model_dir(fetch(tiny_bert, tmp_path / "m"))
    assert (record["architecture"], record["encoder_class"], record["model_type"]) == ("BertModel",) * 2 + (
        "bert",
    )
    assert record["params_full"] == record["params_encoder"] == record["params_implied"]["full"]


def test_heads_of_the_saved_architecture_may_stay_unused(tmp_path: Path) -> None:
    """A BERT pre-training checkpoint: BertModel leaves cls.* unused; the full class checks them."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    model = BertForPreTraining(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    model.save_pretrained(tmp_path / "src")
    record = verify_model_dir(fetch(tmp_path / "src", tmp_path / "m"))
    assert (record["architecture"], record["encoder_class"]) == ("BertForPreTraining", "BertModel")
    assert record["params_full"] > record["params_encoder"]


def test_bin_weights_load_with_weights_only(tiny_t5: Path, tmp_path: Path) -> None:
    source = tmp_path / "bin"
    source.mkdir()
    shutil.copy(tiny_t5 / "config.json", source / "config.json")
    model = T5ForConditionalGeneration.from_pretrained(tiny_t5)
    torch.save(
        model.state_dict(), source / "pytorch_model.bin"
    )  # tied copies included, as old checkpoints do
    record = verify_model_dir(fetch(source, tmp_path / "m"))
    assert record["weights"][0]["path"] == "pytorch_model.bin"
    assert record["params_full"] == tiny_t5_counts()[0]


# ----------------------------------------------------------------------------- rejected models


def test_partial_checkpoint_is_rejected(tiny_t5: Path, tmp_path: Path) -> None:
    source = altered_copy(
        tiny_t5, tmp_path / "src", lambda s: {k: v for k, v in s.items() if "block.1." not in k}
    )
    error = failed_check(fetch(source, tmp_path / "m"))
    assert error.check == "keys" and "missing keys" in str(error)


def test_missing_decoder_is_rejected_though_the_encoder_is_complete(tiny_t5: Path, tmp_path: Path) -> None:
    source = altered_copy(
        tiny_t5, tmp_path / "src", lambda s: {k: v for k, v in s.items() if "decoder." not in k}
    )
    error = failed_check(fetch(source, tmp_path / "m"))
    assert error.check == "keys" and "T5ForConditionalGeneration" in str(error) and "decoder." in str(error)


def test_unexpected_key_is_rejected(tiny_t5: Path, tmp_path: Path) -> None:
    source = altered_copy(tiny_t5, tmp_path / "src", lambda s: {**s, "encoder.extra.weight": torch.ones(3)})
    error = failed_check(fetch(source, tmp_path / "m"))
    assert error.check == "keys" and "encoder.extra.weight" in str(error)


def test_shape_mismatch_is_rejected(tiny_t5: Path, tmp_path: Path) -> None:
    key = "encoder.block.0.layer.0.SelfAttention.q.weight"
    source = altered_copy(tiny_t5, tmp_path / "src", lambda s: {**s, key: torch.randn(16, 32)})
    error = failed_check(fetch(source, tmp_path / "m"))
    assert error.check == "shapes" and key in str(error)


def test_non_finite_values_are_rejected(tiny_t5: Path, tmp_path: Path) -> None:
    key = "decoder.block.0.layer.2.DenseReluDense.wo.weight"

    def poison(state: StateDict) -> StateDict:
        state[key] = state[key].clone()
        state[key][0, 0] = float("nan")
        return state

    error = failed_check(fetch(altered_copy(tiny_t5, tmp_path / "src", poison), tmp_path / "m"))
    assert error.check == "finite" and key in str(error)


def test_integer_weights_are_rejected_as_quantised(tiny_t5: Path, tmp_path: Path) -> None:
    key = "encoder.block.0.layer.0.SelfAttention.k.weight"
    source = altered_copy(tiny_t5, tmp_path / "src", lambda s: {**s, key: (s[key] * 100).to(torch.int8)})
    error = failed_check(fetch(source, tmp_path / "m"))
    assert error.check == "not_quantised" and "int8" in str(error)


def test_quantization_config_is_rejected(tiny_t5: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(tiny_t5, source)
    config = json.loads((source / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_8bit": True}
    (source / "config.json").write_text(json.dumps(config))
    error = failed_check(fetch(source, tmp_path / "m"))
    assert error.check == "not_quantised" and "quantization_config" in str(error)


def test_onnx_only_directory_is_rejected(tiny_t5: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    shutil.copy(tiny_t5 / "config.json", model_dir / "config.json")
    (model_dir / "onnx").mkdir()
    (model_dir / "onnx" / "model_quantized.onnx").write_bytes(b"onnx")
    (model_dir / "manifest.json").write_text("{}")
    error = failed_check(model_dir)
    assert error.check == "weights_format" and "onnx/model_quantized.onnx" in str(error)


def test_random_initialisation_is_rejected(tmp_path: Path) -> None:
    torch.manual_seed(1234)  # any seed: the untouched constant-initialised tensors give it away
    source = tmp_path / "src"
    T5ForConditionalGeneration(T5Config(**TINY_T5)).save_pretrained(source)
    error = failed_check(fetch(source, tmp_path / "m"))
    assert error.check == "not_random_init" and "never trained" in str(error)


def test_count_other_than_the_config_implies_is_rejected(tiny_t5: Path, tmp_path: Path) -> None:
    """config.json claims an encoder-only model, but the file also holds a decoder."""
    source = tmp_path / "src"
    shutil.copytree(tiny_t5, source)
    config = json.loads((source / "config.json").read_text())
    config["architectures"] = ["T5EncoderModel"]
    (source / "config.json").write_text(json.dumps(config))
    error = failed_check(fetch(source, tmp_path / "m"))
    assert error.check == "params_config"


def test_known_model_must_match_published_counts(tiny_t5: Path, tmp_path: Path) -> None:
    model_dir = fetch(tiny_t5, tmp_path / "m")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["name_or_path"] = "t5-small"  # claims to be t5-small: the counts say otherwise
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    error = failed_check(model_dir)
    assert error.check == "params_published" and "60,506,624" in str(error)


def test_files_changed_after_download_are_rejected(tiny_t5: Path, tmp_path: Path) -> None:
    model_dir = fetch(tiny_t5, tmp_path / "m")
    with open(model_dir / "model.safetensors", "r+b") as handle:
        handle.truncate(1000)
    error = failed_check(model_dir)
    assert error.check == "manifest" and "truncated" in str(error)
    (model_dir / "manifest.json").unlink()
    assert failed_check(model_dir).check in {"manifest", "weights_format"}


def test_cli_failure_names_the_check_and_removes_stale_output(tiny_t5: Path, tmp_path: Path, caplog) -> None:
    model_dir = fetch(tiny_t5, tmp_path / "m")
    out = model_dir / "verification.json"
    assert verify_model.main(["--model-dir", str(model_dir), "--out", str(out)]) == 0
    with open(model_dir / "model.safetensors", "r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x00\x80\x7f")  # same size, different bytes
    assert verify_model.main(["--model-dir", str(model_dir), "--out", str(out)]) == 1
    assert not out.exists()
    assert "check 'manifest'" in caplog.text and "model.safetensors" in caplog.text
