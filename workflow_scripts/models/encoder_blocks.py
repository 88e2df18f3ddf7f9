"""The shape of an encoder's blocks, and how two encoders' blocks differ: the like-for-like check.

Two arms may be contrasted as "pretrained vs random" or "text vs time series" only when their
encoders are the same stack of blocks: width, depth, heads, head size, feed-forward size and
activation, and (T5) the relative-position buckets. The vocabulary and the token embedding are
left out on purpose: the study feeds patch embeddings through ``inputs_embeds``, so t5-small
(32128 tokens), Chronos-T5-small (4096) and Chronos-Bolt-small (2) have like-for-like encoders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: the config layer reads block shapes at parse time, without transformers
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class EncoderBlocks:
    """What makes one encoder block stack equal another; None where the family has no such field."""

    d_model: int | None
    num_layers: int | None
    num_heads: int | None
    d_kv: int | None
    d_ff: int | None
    activation: str | None
    relative_attention_num_buckets: int | None
    relative_attention_max_distance: int | None


def _first(config: PretrainedConfig, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def encoder_blocks(config: PretrainedConfig) -> EncoderBlocks:
    """The encoder's block shape from a parsed config: T5's own names (``d_model``, ``num_layers``,
    ``d_ff``, ``feed_forward_proj`` ...) first, else the BERT-style ones (``hidden_size``,
    ``num_hidden_layers``, ``intermediate_size``, ``hidden_act`` ...). ``d_kv`` of a family without
    one is ``hidden_size // num_attention_heads``."""
    d_model = _int(_first(config, "d_model", "hidden_size"))
    num_heads = _int(_first(config, "num_heads", "num_attention_heads"))
    d_kv = _int(_first(config, "d_kv", "head_dim"))
    if d_kv is None and d_model is not None and num_heads:
        d_kv = d_model // num_heads
    activation = _first(config, "feed_forward_proj", "hidden_act")
    return EncoderBlocks(
        d_model=d_model,
        num_layers=_int(_first(config, "num_layers", "num_hidden_layers")),
        num_heads=num_heads,
        d_kv=d_kv,
        d_ff=_int(_first(config, "d_ff", "intermediate_size")),
        activation=None if activation is None else str(activation),
        relative_attention_num_buckets=_int(getattr(config, "relative_attention_num_buckets", None)),
        relative_attention_max_distance=_int(getattr(config, "relative_attention_max_distance", None)),
    )


def block_differences(a: EncoderBlocks, b: EncoderBlocks) -> list[str]:
    """Names of the fields in which ``a`` and ``b`` differ (empty: like for like), in field order."""
    return [field.name for field in dataclasses.fields(a) if getattr(a, field.name) != getattr(b, field.name)]
