"""A model's encoder block shape at parse time, without transformers and without the Hub.

The like-for-like check (config/model_checks.py) must refuse a contrast between unlike encoders
before any job runs. At parse time a model's shape is known from a config.json on disk (a local
model directory, or the one download_model already put under resources/models/<slug>/) or, for
the published ids in known_models.T5_ARCHITECTURES, from that table. Anything else is unknown,
and an unknown shape never passes as equal: the check says how to make it known.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from workflow_scripts.models.encoder_blocks import EncoderBlocks, encoder_blocks
from workflow_scripts.models.known_models import T5_ARCHITECTURES
from workflow_scripts.models.sources import canonical_repo_id

#: transformers' T5Config defaults for the block fields, which a T5 config.json may leave out
#: (t5-small's own has no feed_forward_proj); T5Config fills in the same values when it parses.
T5_BLOCK_DEFAULTS: dict[str, Any] = {
    "d_model": 512,
    "d_kv": 64,
    "d_ff": 2048,
    "num_layers": 6,
    "num_heads": 8,
    "feed_forward_proj": "relu",
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
}


def raw_config_blocks(raw: Mapping[str, Any]) -> EncoderBlocks:
    """The block shape of config.json's raw dict, with T5's defaults where a T5 config omits them."""
    values = dict(raw)
    if values.get("model_type") == "t5":
        values = {**T5_BLOCK_DEFAULTS, **values}
    return encoder_blocks(cast(Any, SimpleNamespace(**values)))


def parse_time_blocks(
    name_or_path: str, local_dir: Path | None, downloaded_dir: Path
) -> tuple[EncoderBlocks | None, str]:
    """(shape, where it came from), or (None, why it is unknown).

    ``local_dir`` is the model's own directory when ``name_or_path`` is a local path;
    ``downloaded_dir`` is resources/models/<slug> (its config.json exists once download_model ran).
    """
    for directory in (local_dir, downloaded_dir):
        if directory is not None and (directory / "config.json").is_file():
            raw = json.loads((directory / "config.json").read_text(encoding="utf-8"))
            return raw_config_blocks(raw), f"{directory}/config.json"
    repo = canonical_repo_id(name_or_path) if not name_or_path.startswith("package:") else ""
    if repo in T5_ARCHITECTURES:
        return raw_config_blocks(
            {"model_type": "t5", **T5_ARCHITECTURES[repo]}
        ), "known_models.T5_ARCHITECTURES"
    return None, f"no config.json at {downloaded_dir} and not a published architecture in known_models"
