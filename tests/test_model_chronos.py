"""Time-series checkpoints (issue 28): Chronos-T5 and Chronos-Bolt give up their encoder, strictly.

The replicas in tests/tiny_models.py have the published checkpoints' key names and config
fields at tiny-t5's block shape. Each test loads, damages or verifies one of them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hub_server import HubServer, download
from safetensors.torch import load_file, save_file
from tiny_models import (
    ALWAYS,
    TINY_T5,
    make_tiny_bert,
    make_tiny_chronos_bolt,
    make_tiny_chronos_t5,
    make_tiny_t5,
)
from transformers import T5Config, T5EncoderModel, T5ForConditionalGeneration

from workflow_scripts import download_model
from workflow_scripts.models.checkpoint_kinds import (
    UNUSED_PREFIXES,
    bolt_layout,
    checkpoint_kind,
    load_chronos_encoder,
    prepare_config,
)
from workflow_scripts.models.encoder_blocks import block_differences, encoder_blocks
from workflow_scripts.models.known_models import lookup_known_model
from workflow_scripts.models.loading import ModelLoadError, load_config, load_encoder
from workflow_scripts.models.verification import VerificationError, verify_model_dir

REPO = Path(__file__).resolve().parent.parent
MAKERS: dict[str, Callable[..., Path]] = {
    "chronos_t5": make_tiny_chronos_t5,
    "chronos_bolt": make_tiny_chronos_bolt,
}
KINDS = sorted(MAKERS)
#: The published block shape shared by t5-small, chronos-t5-small and chronos-bolt-small
#: (google/t5-efficient-small), and the Chronos configs' other fields.
SMALL = {"d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6, "num_decoder_layers": 6, "num_heads": 8}
CHRONOS_COMMON = {
    "feed_forward_proj": "relu",
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "initializer_factor": 0.05,
    "decoder_start_token_id": 0,
    "pad_token_id": 0,
    "eos_token_id": 1,
}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("replicas")
    made = {kind: make(root / kind) for kind, make in MAKERS.items()}
    return {**made, "text": make_tiny_t5(root / "text")}


def fetch(source: Path, out: Path) -> Path:
    assert download_model.main(["--name-or-path", str(source), "--out-dir", str(out)]) == 0
    return out


def altered_copy(source: Path, destination: Path, change: Callable[[dict], dict]) -> Path:
    shutil.copytree(source, destination)
    state = load_file(destination / "model.safetensors")
    save_file(change(state), destination / "model.safetensors", metadata={"format": "pt"})
    return destination


def _count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


# ----------------------------------------------------------------------------- kinds and loading


def test_the_kind_is_read_from_config_json(replicas: dict[str, Path]) -> None:
    for kind, path in replicas.items():
        raw = json.loads((path / "config.json").read_text())
        assert checkpoint_kind(raw) == kind
        assert checkpoint_kind(load_config(path)) == kind
    bolt = json.loads((replicas["chronos_bolt"] / "config.json").read_text())
    del bolt["chronos_config"]["quantiles"]
    with pytest.raises(ModelLoadError, match="lacks quantiles") as caught:
        checkpoint_kind(bolt)
    assert caught.value.check == "architecture"
    causal = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "chronos_config": {}}
    with pytest.raises(ModelLoadError, match="only Chronos-T5"):
        checkpoint_kind(causal)


@pytest.mark.parametrize("kind", KINDS)
def test_every_encoder_tensor_is_the_files(replicas: dict[str, Path], kind: str) -> None:
    path = replicas[kind]
    stored = load_file(path / "model.safetensors")
    loaded = load_encoder(path, "pretrained")
    assert isinstance(loaded.encoder, T5EncoderModel) and loaded.hidden_size == TINY_T5["d_model"]
    state = loaded.encoder.state_dict()
    assert state, "no tensors"
    for name, tensor in state.items():
        source = "shared.weight" if name == "encoder.embed_tokens.weight" else name  # tied to shared
        assert torch.equal(tensor, stored[source]), name
    rms = float(stored["shared.weight"].pow(2).mean().sqrt())
    assert loaded.token_embedding_rms == pytest.approx(rms, rel=1e-6)
    x = torch.randn(2, 5, loaded.hidden_size) * loaded.token_embedding_rms
    with torch.no_grad():
        out = loaded.encoder(inputs_embeds=x, attention_mask=torch.ones(2, 5, dtype=torch.long))
    assert out.last_hidden_state.shape == (2, 5, TINY_T5["d_model"])


@pytest.mark.parametrize("kind", KINDS)
def test_exactly_the_non_encoder_parts_are_left_unused(replicas: dict[str, Path], kind: str) -> None:
    path = replicas[kind]
    result = load_chronos_encoder(path, load_config(path), kind)  # type: ignore[arg-type]
    stored = set(load_file(path / "model.safetensors"))
    assert set(result.unused_keys) == stored - set(result.encoder.state_dict())
    prefixes = {key.split(".")[0] + "." for key in result.unused_keys}
    expected = {"decoder."} if kind == "chronos_t5" else set(UNUSED_PREFIXES["chronos_bolt"])
    assert prefixes == expected


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_encoder_tensor_is_refused_by_name(
    replicas: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    key = "encoder.block.1.layer.1.DenseReluDense.wo.weight"
    source = altered_copy(replicas[kind], tmp_path / "m", lambda s: {k: v for k, v in s.items() if k != key})
    with pytest.raises(ModelLoadError) as caught:
        load_encoder(source, "pretrained")
    assert caught.value.check == "keys" and key in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_mis_shaped_or_unexpected_tensor_is_refused(
    replicas: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    key = "encoder.block.0.layer.0.SelfAttention.q.weight"
    source = altered_copy(replicas[kind], tmp_path / "shape", lambda s: {**s, key: torch.randn(16, 32)})
    with pytest.raises(ModelLoadError) as caught:
        load_encoder(source, "pretrained")
    assert caught.value.check == "shapes" and key in str(caught.value)
    extra = "patch_head.weight"
    source = altered_copy(replicas[kind], tmp_path / "extra", lambda s: {**s, extra: torch.ones(3)})
    with pytest.raises(ModelLoadError) as caught:
        load_encoder(source, "pretrained")
    assert caught.value.check == "keys" and extra in str(caught.value)


def test_a_stored_tied_embedding_copy_must_equal_shared(replicas: dict[str, Path], tmp_path: Path) -> None:
    """Older Chronos-T5 files store encoder.embed_tokens.weight beside shared.weight (tied)."""
    copy = "encoder.embed_tokens.weight"
    same = altered_copy(
        replicas["chronos_t5"], tmp_path / "same", lambda s: {**s, copy: s["shared.weight"].clone()}
    )
    assert torch.equal(
        load_encoder(same, "pretrained").encoder.get_input_embeddings().weight,
        load_file(same / "model.safetensors")["shared.weight"],
    )
    differs = altered_copy(
        replicas["chronos_t5"], tmp_path / "differs", lambda s: {**s, copy: s["shared.weight"] + 1}
    )
    with pytest.raises(ModelLoadError, match=r"differs from shared\.weight"):
        load_encoder(differs, "pretrained")


@pytest.mark.parametrize("kind", KINDS)
def test_random_is_the_same_class_and_shapes_with_other_weights(replicas: dict[str, Path], kind: str) -> None:
    pretrained = load_encoder(replicas[kind], "pretrained")
    first, again = (load_encoder(replicas[kind], "random", seed=5) for _ in range(2))
    assert type(first.encoder) is type(pretrained.encoder) is T5EncoderModel
    assert first.config.to_dict() == pretrained.config.to_dict()
    a, b, p = (m.encoder.state_dict() for m in (first, again, pretrained))
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in p.items()}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(torch.equal(a[k], p[k]) for k in a)


# ----------------------------------------------------------------------------- like for like


def test_block_differences_name_the_fields(replicas: dict[str, Path], tmp_path: Path) -> None:
    blocks = {kind: encoder_blocks(load_config(path)) for kind, path in replicas.items()}
    assert block_differences(blocks["text"], blocks["chronos_t5"]) == []
    assert block_differences(blocks["text"], blocks["chronos_bolt"]) == []
    wider = encoder_blocks(load_config(make_tiny_chronos_bolt(tmp_path / "wide", d_ff=128)))
    assert block_differences(blocks["chronos_bolt"], wider) == ["d_ff"]
    bert = encoder_blocks(load_config(make_tiny_bert(tmp_path / "bert")))
    assert bert.relative_attention_num_buckets is None and bert.d_kv == 8
    assert block_differences(blocks["text"], bert) == [
        "activation",
        "relative_attention_num_buckets",
        "relative_attention_max_distance",
    ]
    t5_small = encoder_blocks(T5Config())  # T5Config's defaults are t5-small
    chronos_small = encoder_blocks(T5Config(vocab_size=4096, **SMALL, **CHRONOS_COMMON))
    assert block_differences(t5_small, chronos_small) == []


# ----------------------------------------------------------------------------- verification


@pytest.mark.parametrize("kind", KINDS)
def test_verification_passes_each_replica(replicas: dict[str, Path], tmp_path: Path, kind: str) -> None:
    record = verify_model_dir(fetch(replicas[kind], tmp_path / "m"))
    assert set(record["checks"]) == ALWAYS and set(record["checks"].values()) == {"passed"}
    assert record["checkpoint_kind"] == kind and record["encoder_class"] == "T5EncoderModel"
    config = load_config(replicas[kind])
    with torch.device("meta"):
        encoder = T5EncoderModel(config)
        full = bolt_layout(config) if kind == "chronos_bolt" else T5ForConditionalGeneration(config)
    architecture = (
        "ChronosBoltModelForForecasting" if kind == "chronos_bolt" else "T5ForConditionalGeneration"
    )
    assert record["architecture"] == architecture
    assert (record["params_full"], record["params_encoder"]) == (_count(full), _count(encoder))
    if kind == "chronos_bolt":  # every stored tensor is a parameter of the layout, none tied
        assert record["params_full"] == sum(
            v.numel() for v in load_file(replicas[kind] / "model.safetensors").values()
        )


@pytest.mark.parametrize(
    ("key", "check"),
    [
        ("output_patch_embedding.output_layer.bias", "keys"),
        ("decoder.block.1.layer.2.DenseReluDense.wi.weight", "keys"),
    ],
)
def test_bolt_verification_refuses_a_missing_non_encoder_part(
    replicas: dict[str, Path], tmp_path: Path, key: str, check: str
) -> None:
    """The encoder would load, but the file is not a whole Chronos-Bolt checkpoint."""
    source = altered_copy(
        replicas["chronos_bolt"], tmp_path / "src", lambda s: {k: v for k, v in s.items() if k != key}
    )
    load_encoder(source, "pretrained")
    with pytest.raises(VerificationError) as caught:
        verify_model_dir(fetch(source, tmp_path / "m"))
    assert caught.value.check == check and key in str(caught.value)


def test_bolt_verification_refuses_a_mis_shaped_head(replicas: dict[str, Path], tmp_path: Path) -> None:
    key = "output_patch_embedding.residual_layer.weight"
    source = altered_copy(replicas["chronos_bolt"], tmp_path / "src", lambda s: {**s, key: s[key][:9]})
    with pytest.raises(VerificationError) as caught:
        verify_model_dir(fetch(source, tmp_path / "m"))
    assert caught.value.check == "shapes" and key in str(caught.value)


def test_a_replica_is_not_the_published_small_model(replicas: dict[str, Path], tmp_path: Path) -> None:
    model_dir = fetch(replicas["chronos_bolt"], tmp_path / "m")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["name_or_path"] = "amazon/chronos-bolt-small"
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VerificationError) as caught:
        verify_model_dir(model_dir)
    assert caught.value.check == "params_published" and "47,718,016" in str(caught.value)


# ----------------------------------------------------------------------------- published figures


def test_known_chronos_figures_follow_from_the_published_configs() -> None:
    t5 = T5Config(vocab_size=4096, architectures=["T5ForConditionalGeneration"], **SMALL, **CHRONOS_COMMON)
    t5.chronos_config = {"n_tokens": 4096}
    bolt = T5Config(vocab_size=2, architectures=["ChronosBoltModelForForecasting"], **SMALL, **CHRONOS_COMMON)
    bolt.chronos_config = {
        "context_length": 2048,
        "prediction_length": 64,
        "input_patch_size": 16,
        "input_patch_stride": 16,
        "quantiles": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        "use_reg_token": True,
    }
    bolt = prepare_config(bolt)
    with torch.device("meta"):
        t5_full, t5_encoder, bolt_encoder = (
            T5ForConditionalGeneration(t5),
            T5EncoderModel(t5),
            T5EncoderModel(bolt),
        )
    counts = {
        "amazon/chronos-t5-small": (_count(t5_full), _count(t5_encoder), 4096 * 512),
        "amazon/chronos-bolt-small": (_count(bolt_layout(bolt)), _count(bolt_encoder), 2 * 512),
    }
    for name, (full, encoder, embedding) in counts.items():
        known = lookup_known_model(name)
        assert known is not None
        assert (known.params_full, known.params_encoder, known.params_embedding) == (full, encoder, embedding)
    fintext = lookup_known_model("FinText/Chronos_Small_2006_US")
    assert fintext is not None and fintext.params_full is None
    assert fintext.params_encoder == counts["amazon/chronos-t5-small"][1]
    assert lookup_known_model("FinText/Chronos_Tiny_2006_US") is None


# ----------------------------------------------------------------------------- from a (local) Hub


def test_download_and_verify_a_bolt_replica_served_by_the_hub(
    replicas: dict[str, Path], tmp_path: Path
) -> None:
    with HubServer() as hub:
        hub.add_repo_from_dir(
            "acme/tiny-chronos-bolt", replicas["chronos_bolt"], extra_files={"README.md": b"#"}
        )
        result, out, _ = download(tmp_path, "acme/tiny-chronos-bolt", endpoint=hub.url)
        assert result.returncode == 0, result.stderr
        assert sorted(hub.downloaded()) == ["config.json", "model.safetensors"]
        repo_sha = hub.repos["acme/tiny-chronos-bolt"].sha
    record = verify_model_dir(out)
    assert record["checkpoint_kind"] == "chronos_bolt" and record["resolved_revision"] == repo_sha
    assert set(record["checks"]) == ALWAYS
