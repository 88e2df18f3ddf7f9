"""Tiny Hugging Face checkpoints built on the fly, standing in for pretrained models.

The Hub is unreachable in tests, so every test that needs a "pretrained" encoder saves a
tiny, deterministic model with ``save_pretrained``: the same files and code paths as
t5-small or MiniLM, at a size that trains in seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertModel, T5Config, T5ForConditionalGeneration

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
