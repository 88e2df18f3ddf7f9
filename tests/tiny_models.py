"""Tiny Hugging Face checkpoints built on the fly, standing in for pretrained models.

The Hub is unreachable in tests, so every test that needs a "pretrained" encoder saves a
tiny, deterministic model with ``save_pretrained``: the same files and code paths as
t5-small or MiniLM, at a size that trains in seconds on a CPU.

The Chronos replicas copy the published checkpoints' key names and config.json fields
(amazon-science/chronos-forecasting: chronos.py, chronos_bolt.py, scripts/training) at
TINY_T5's block shape, so their encoders are like-for-like with tiny-t5's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel, T5Config, T5ForConditionalGeneration

#: The verification checks every checkpoint of these tiny models runs (the published-count and
#: pinned-hash checks come on top for a known model id).
ALWAYS = {
    "weights_format",
    "manifest",
    "architecture",
    "not_quantised",
    "shapes",
    "keys",
    "finite",
    "not_random_init",
    "forward",
    "params_config",
}

TINY_T5 = {
    "vocab_size": 64,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 16,
    "decoder_start_token_id": 0,
    "pad_token_id": 0,
    "eos_token_id": 1,
}


def make_tiny_t5(directory: str | Path, seed: int = 0, **overrides: int) -> Path:
    """Save a tiny full T5 (encoder + decoder, like t5-small's checkpoint) and return its directory."""
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(T5Config(**{**TINY_T5, **overrides}))
    # Make the weights recognisably "trained": a fresh random init must not match them.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory


def make_tiny_bert(directory: str | Path, seed: int = 0) -> Path:
    """Save a tiny BERT encoder (the shape of all-MiniLM-L6-v2) and return its directory."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    model = BertModel(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory


#: chronos_config of a Chronos-T5 checkpoint (amazon/chronos-t5-*), n_tokens = the vocabulary.
CHRONOS_T5_CONFIG: dict[str, Any] = {
    "tokenizer_class": "MeanScaleUniformBins",
    "tokenizer_kwargs": {"low_limit": -15.0, "high_limit": 15.0},
    "n_tokens": TINY_T5["vocab_size"],
    "n_special_tokens": 2,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "use_eos_token": True,
    "model_type": "seq2seq",
    "context_length": 512,
    "prediction_length": 64,
    "num_samples": 20,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
}

#: chronos_config of a Chronos-Bolt checkpoint, shorter than amazon/chronos-bolt-small's
#: (context 2048, patch 16, prediction 64) but with its fields and its nine quantiles.
CHRONOS_BOLT_CONFIG: dict[str, Any] = {
    "context_length": 64,
    "input_patch_size": 4,
    "input_patch_stride": 4,
    "prediction_length": 8,
    "quantiles": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    "use_reg_token": True,
}


def _perturb(model: torch.nn.Module) -> None:
    """Make the weights recognisably "trained": a fresh random init must not match them."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))


def make_tiny_chronos_t5(directory: str | Path, seed: int = 0, **overrides: int) -> Path:
    """Save a tiny Chronos-T5 (T5ForConditionalGeneration with a chronos_config, as
    chronos-forecasting's training script saves it) and return its directory."""
    torch.manual_seed(seed)
    settings: dict[str, Any] = {**TINY_T5, "initializer_factor": 0.05, "n_positions": 512, **overrides}
    chronos = {**CHRONOS_T5_CONFIG, "n_tokens": settings["vocab_size"]}
    model = T5ForConditionalGeneration(T5Config(**settings, chronos_config=chronos))
    _perturb(model)
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory


def tiny_chronos_bolt_config(**overrides: Any) -> dict[str, Any]:
    """config.json of the tiny Chronos-Bolt: amazon/chronos-bolt-*'s fields at TINY_T5's blocks."""
    blocks = {key: TINY_T5[key] for key in ("d_model", "d_kv", "d_ff", "num_layers", "num_heads")}
    return {
        "architectures": ["ChronosBoltModelForForecasting"],
        "chronos_config": dict(CHRONOS_BOLT_CONFIG),
        "chronos_pipeline_class": "ChronosBoltPipeline",
        "classifier_dropout": 0.0,
        **blocks,
        "decoder_start_token_id": 0,
        "dense_act_fn": "relu",
        "dropout_rate": 0.1,
        "eos_token_id": 1,
        "feed_forward_proj": "relu",
        "initializer_factor": 0.05,
        "is_encoder_decoder": True,
        "is_gated_act": False,
        "layer_norm_epsilon": 1e-06,
        "model_type": "t5",
        "n_positions": 512,
        "num_decoder_layers": TINY_T5["num_decoder_layers"],
        "pad_token_id": 0,
        "reg_token_id": 1,
        "relative_attention_max_distance": TINY_T5["relative_attention_max_distance"],
        "relative_attention_num_buckets": TINY_T5["relative_attention_num_buckets"],
        "torch_dtype": "float32",
        "transformers_version": "4.46.1",
        "use_cache": True,
        "vocab_size": 2,
        **overrides,
    }


def _linear(prefix: str, in_dim: int, out_dim: int) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.randn(out_dim, in_dim) * in_dim**-0.5,
        f"{prefix}.bias": 0.1 * torch.randn(out_dim),
    }


def _residual_block(prefix: str, in_dim: int, hidden: int, out_dim: int) -> dict[str, torch.Tensor]:
    """chronos-forecasting's ResidualBlock as Bolt saves it: hidden, output and residual Linear layers."""
    return {
        **_linear(f"{prefix}.hidden_layer", in_dim, hidden),
        **_linear(f"{prefix}.output_layer", hidden, out_dim),
        **_linear(f"{prefix}.residual_layer", in_dim, out_dim),
    }


def make_tiny_chronos_bolt(directory: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """Save a tiny Chronos-Bolt checkpoint and return its directory.

    ChronosBoltModelForForecasting is not in transformers, so the state dict is written by
    hand with its key names: ``shared.weight`` (vocab 2: decoder start and [REG]), the T5
    ``encoder.*`` and ``decoder.*`` stacks (taken from a T5ForConditionalGeneration of the same
    blocks, token-embedding copies dropped as Bolt's tied file has none),
    ``input_patch_embedding.*`` (2 x patch -> d_ff -> d_model) and
    ``output_patch_embedding.*`` (d_model -> d_ff -> quantiles x prediction_length).
    ``overrides`` replace config.json fields (e.g. ``d_ff``).
    """
    torch.manual_seed(seed)
    config = tiny_chronos_bolt_config(**overrides)
    t5_fields = set(T5Config().to_dict()) - {"architectures", "model_type", "transformers_version"}
    t5 = T5ForConditionalGeneration(T5Config(**{k: v for k, v in config.items() if k in t5_fields}))
    _perturb(t5)
    state = {
        key: value.detach().clone()
        for key, value in t5.state_dict().items()
        if key.startswith(("shared.", "encoder.block.", "encoder.final", "decoder.block.", "decoder.final"))
    }
    chronos, d_model, d_ff = config["chronos_config"], config["d_model"], config["d_ff"]
    outputs = len(chronos["quantiles"]) * chronos["prediction_length"]
    state.update(_residual_block("input_patch_embedding", 2 * chronos["input_patch_size"], d_ff, d_model))
    state.update(_residual_block("output_patch_embedding", d_model, d_ff, outputs))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in state.items()},
        directory / "model.safetensors",
        metadata={"format": "pt"},
    )
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return directory
