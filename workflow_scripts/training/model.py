"""The patch model: bars -> patch tokens -> (pretrained) encoder -> task head.

Each channel (a timeframe and feature pair) of a ``seq_len`` window is cut into
``seq_len / patch_len`` patches. A patch becomes one token through Linear + LayerNorm,
scaled to the RMS of the pretrained checkpoint's token embeddings: a pretrained encoder
was trained on inputs of that magnitude, and feeding it vectors of a different scale
(the original study divided by sqrt(d_model) instead) puts its LayerNorms, attention
logits and relative-position biases outside the regime the pretraining tuned.

That one scale is the experiment's, shared by every arm (``embedding_scale:
experiment``): a randomly initialised encoder's own token table has another RMS (2.8x
smaller for all-MiniLM), and scaling each arm by its own table would give the random
arm inputs of another magnitude, so the arms would differ in more than their weights.
``own`` keeps the per-arm scale as an explicit option, ``none`` leaves unit scale. Learned position
(patch index), timeframe and feature embeddings tell the tokens apart; all tokens of a
sample form one sequence, so attention can mix channels and timeframes. The encoder is
called with ``inputs_embeds``; its vocabulary table is never read.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

LOG = logging.getLogger(__name__)

#: Standard deviation of the learned position/timeframe/feature embeddings at init,
#: relative to the unit-RMS LayerNorm output they are added to.
ADDITIVE_EMBEDDING_STD = 0.02

#: per_timeframe: a token is a patch of bars of one timeframe with all its features (a
#: bar's open, high, low and close belong together, and there are F times fewer tokens);
#: per_feature: a token is a patch of one feature (channel-independent, as in PatchTST).
TOKEN_LAYOUTS = ("per_timeframe", "per_feature")


@dataclass(frozen=True)
class ModelShape:
    """The data-dependent sizes of a patch model."""

    n_timeframes: int
    n_features: int
    seq_len: int
    patch_len: int
    task: str
    horizon: int
    tokens: str = "per_timeframe"

    @property
    def n_patches(self) -> int:
        return self.seq_len // self.patch_len

    @property
    def n_groups(self) -> int:
        """Token groups per timeframe: one per feature, or one holding every feature."""
        return self.n_features if self.tokens == "per_feature" else 1

    @property
    def token_width(self) -> int:
        """Features in one token's patch."""
        return 1 if self.tokens == "per_feature" else self.n_features

    @property
    def n_tokens(self) -> int:
        return self.n_timeframes * self.n_groups * self.n_patches

    def validate(self) -> None:
        if self.patch_len < 1 or self.seq_len % self.patch_len:
            raise ValueError(f"seq_len {self.seq_len} is not divisible by patch_len {self.patch_len}")
        if self.task not in ("reconstruct", "forecast"):
            raise ValueError(f"task {self.task!r} is not allowed (allowed: reconstruct, forecast)")
        if self.task == "forecast" and self.horizon < 1:
            raise ValueError(f"forecast needs horizon >= 1 (got {self.horizon})")
        if self.tokens not in TOKEN_LAYOUTS:
            raise ValueError(f"tokens {self.tokens!r} is not allowed (allowed: {', '.join(TOKEN_LAYOUTS)})")


@dataclass
class EncoderChoice:
    """The encoder a variant uses, with what the patch embedding needs to know about it."""

    encoder: nn.Module | None
    model_type: str | None
    hidden_size: int
    token_embedding_rms: float
    description: str


class PatchEmbedding(nn.Module):
    """Patch values (and mask flags) -> token vectors at the encoder's embedding scale."""

    def __init__(self, shape: ModelShape, hidden_size: int, scale: float) -> None:
        super().__init__()
        flags = shape.patch_len if shape.task == "reconstruct" else 0
        self.proj = nn.Linear(shape.patch_len * shape.token_width + flags, hidden_size)
        self.norm = nn.LayerNorm(hidden_size)
        self.position = nn.Embedding(shape.n_patches, hidden_size)
        self.timeframe = nn.Embedding(shape.n_timeframes, hidden_size)
        self.feature = nn.Embedding(shape.n_groups, hidden_size)
        for table in (self.position, self.timeframe, self.feature):
            nn.init.normal_(table.weight, std=ADDITIVE_EMBEDDING_STD)
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """``[B, T, G, P, in]`` -> ``[B, T, G, P, hidden]`` (G token groups, see ``ModelShape``)."""
        tokens = self.norm(self.proj(patches))
        tokens = (
            tokens
            + self.position.weight[None, None, None, :, :]
            + self.timeframe.weight[None, :, None, None, :]
            + self.feature.weight[None, None, :, None, :]
        )
        return tokens * self.scale


class ReconstructHead(nn.Module):
    """Each token -> the values of its own patch."""

    def __init__(self, shape: ModelShape, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, shape.patch_len * shape.token_width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[B, T, G, P, hidden]`` -> ``[B, T, G, seq_len * W]``."""
        return self.proj(hidden).flatten(-2)


class ForecastHead(nn.Module):
    """A token group's ``P`` tokens, flattened -> its next ``horizon`` bars (shared across groups)."""

    def __init__(self, shape: ModelShape, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(shape.n_patches * hidden_size, shape.horizon * shape.token_width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[B, T, G, P, hidden]`` -> ``[B, T, G, horizon * W]``."""
        return self.proj(hidden.flatten(-2))


class PatchEncoderModel(nn.Module):
    """windows ``[B, T, L, F]`` (+ mask ``[B, T, L]``) -> ``[B, T, L, F]``, or ``[B, T, H, F]`` (forecast)."""

    def __init__(self, shape: ModelShape, choice: EncoderChoice, *, embedding_scale: float) -> None:
        super().__init__()
        shape.validate()
        self.shape = shape
        self.embedding = PatchEmbedding(shape, choice.hidden_size, embedding_scale)
        self.encoder = choice.encoder
        head_cls = ReconstructHead if shape.task == "reconstruct" else ForecastHead
        self.head = head_cls(shape, choice.hidden_size)

    def _groups(self, values: torch.Tensor) -> torch.Tensor:
        """``[B, T, L, F]`` -> ``[B, T, G, L, W]``: the bars of each token group."""
        if self.shape.tokens == "per_feature":
            return values.permute(0, 1, 3, 2)[..., None]
        return values[:, :, None]

    def _bars(self, values: torch.Tensor) -> torch.Tensor:
        """``[B, T, G, L * W]`` -> ``[B, T, L, F]``: the inverse of ``_groups``."""
        b, t, g = values.shape[:3]
        values = values.reshape(b, t, g, -1, self.shape.token_width)
        if self.shape.tokens == "per_feature":
            return values[..., 0].permute(0, 1, 3, 2)
        return values[:, :, 0]

    def embed(self, windows: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The encoder's input tokens ``[B, tokens, hidden]``; masked bars are zeroed and flagged."""
        b, t = windows.shape[:2]
        s = self.shape
        x = self._groups(windows)  # [B, T, G, L, W]
        g = x.shape[2]
        if s.task == "reconstruct":
            if mask is None:
                raise ValueError("the reconstruct model needs a mask")
            flags = mask[:, :, None, :].expand(b, t, g, s.seq_len)
            x = x.masked_fill(flags[..., None], 0.0)
            patches = torch.cat(
                [
                    x.reshape(b, t, g, s.n_patches, -1),
                    flags.to(x.dtype).reshape(b, t, g, s.n_patches, s.patch_len),
                ],
                dim=-1,
            )
        else:
            patches = x.reshape(b, t, g, s.n_patches, -1)
        return self.embedding(patches).reshape(b, t * g * s.n_patches, -1)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t = windows.shape[:2]
        tokens = self.embed(windows, mask)
        if self.encoder is not None:
            tokens = self.encoder(inputs_embeds=tokens, attention_mask=None).last_hidden_state
        hidden = tokens.reshape(b, t, self.shape.n_groups, self.shape.n_patches, -1)
        return self._bars(self.head(hidden))  # [B, T, L|H, F]


def input_embedding_weight(encoder: nn.Module | None) -> nn.Parameter | None:
    """The encoder's vocabulary table, unused with ``inputs_embeds`` (None without one)."""
    getter: Any = getattr(encoder, "get_input_embeddings", None)
    table = getter() if getter is not None else None
    return None if table is None else table.weight


def weight_rms(weight: torch.Tensor) -> float:
    return float(weight.detach().float().pow(2).mean().sqrt())


LoadEncoder = Callable[..., Any]


def choose_encoder(
    encoder_kind: str,
    init: str,
    model_dir: Path,
    *,
    seed: int,
    small_overrides: Mapping[str, Any],
    load_encoder: LoadEncoder,
) -> EncoderChoice:
    """Build the encoder of a variant (``encoder``: checkpoint, none or small).

    * checkpoint: the model dir's encoder, pretrained or re-initialised by its own initializer;
    * none: no encoder; the checkpoint still sets the hidden size and embedding scale,
      so the patch embedding and head are those of the other variants;
    * small: the checkpoint's class and config with ``small_overrides`` applied, always
      randomly initialised (there are no pretrained weights of that size).
    """
    if encoder_kind == "checkpoint":
        loaded = load_encoder(model_dir, init, seed=seed)
        return EncoderChoice(
            loaded.encoder,
            loaded.model_type,
            loaded.hidden_size,
            float(loaded.token_embedding_rms),
            f"{loaded.model_type} encoder ({init})",
        )
    if encoder_kind == "none":
        loaded = load_encoder(model_dir, "pretrained", seed=seed)
        return EncoderChoice(None, None, loaded.hidden_size, float(loaded.token_embedding_rms), "no encoder")
    if encoder_kind == "small":
        if init != "random":
            raise ValueError("encoder: small has no pretrained weights; it needs init: random")
        loaded = load_encoder(model_dir, "random", seed=seed)
        config = copy.deepcopy(loaded.config)
        for key, value in sorted(small_overrides.items()):
            if not hasattr(config, key):
                raise ValueError(
                    f"small_encoder.{key}: not a setting of {type(config).__name__} "
                    f"(model_type {loaded.model_type})"
                )
            setattr(config, key, value)
        torch.manual_seed(seed)
        encoder = type(loaded.encoder)(config)
        table = input_embedding_weight(encoder)
        rms = weight_rms(table) if table is not None else float(loaded.token_embedding_rms)
        return EncoderChoice(
            encoder, loaded.model_type, int(config.hidden_size), rms, f"small {loaded.model_type}"
        )
    raise ValueError(f"encoder {encoder_kind!r} is not allowed (allowed: checkpoint, none, small)")


EMBEDDING_SCALES = ("experiment", "own", "none")


def build_model(
    shape: ModelShape,
    choice: EncoderChoice,
    *,
    embedding_scale: str,
    seed: int,
    experiment_rms: float | None = None,
) -> PatchEncoderModel:
    """The full model; the new layers' initialisation depends only on ``seed``.

    ``experiment_rms`` is the pretrained checkpoint's token-embedding RMS, the scale of
    every arm under ``embedding_scale: experiment`` (see the module docstring).
    """
    if embedding_scale not in EMBEDDING_SCALES:
        raise ValueError(
            f"embedding_scale {embedding_scale!r} is not allowed (allowed: {', '.join(EMBEDDING_SCALES)})"
        )
    if embedding_scale == "experiment" and experiment_rms is None:
        raise ValueError("embedding_scale experiment needs the pretrained checkpoint's token-embedding RMS")
    scale = {"experiment": experiment_rms, "own": choice.token_embedding_rms, "none": 1.0}[embedding_scale]
    assert scale is not None
    torch.manual_seed(seed)
    return PatchEncoderModel(shape, choice, embedding_scale=scale)


def parameter_counts(model: PatchEncoderModel) -> dict[str, int]:
    """params_total / params_encoder / params_trainable (requires_grad now), each parameter once."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    encoder = sum(p.numel() for p in model.encoder.parameters()) if model.encoder is not None else 0
    return {
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_trainable": trainable,
        "params_encoder": encoder,
    }
