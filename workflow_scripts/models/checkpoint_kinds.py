"""What kind of checkpoint a model directory holds, and how a time-series one gives up its encoder.

The kind is read from config.json alone, never with remote code:

``text``          what transformers loads as is (t5-small, MiniLM): ``loading``'s own path.
``chronos_t5``    Chronos-T5 (``amazon/chronos-t5-*``, FinText ``Chronos_*``): ``model_type`` t5, a
                  ``chronos_config`` dict and ``T5ForConditionalGeneration`` in ``architectures``; a
                  plain T5 checkpoint whose vocabulary is the 4096 quantisation bins.
``chronos_bolt``  Chronos-Bolt (``amazon/chronos-bolt-*``): ``ChronosBoltModelForForecasting`` in
                  ``architectures``, a class only the chronos-forecasting package defines. Its file
                  holds ``shared`` (1 or 2 token rows), ``input_patch_embedding.*``, a T5 ``encoder.*``
                  stack, a ``decoder.*`` stack that reads one token, and ``output_patch_embedding.*``.

A ``chronos_config`` on anything else is refused rather than loaded as text.

For the Chronos kinds only the encoder is taken, into transformers' ``T5EncoderModel`` built
from transformers' ``T5Config`` of config.json, filled tensor by tensor from the weights file:
an encoder tensor missing from the file is ``ModelLoadError("keys")`` naming it, a shape that
differs is ``ModelLoadError("shapes")``, and a file key that is neither an encoder tensor nor
under ``UNUSED_PREFIXES[kind]`` is ``ModelLoadError("keys")``. The returned encoder's every
tensor equals the file's (in float32).

The token-embedding slot (``shared.weight``, tied to ``encoder.embed_tokens.weight``) holds the
checkpoint's ``shared.weight``: Chronos-T5's 4096 bin embeddings, Bolt's decoder-start and [REG]
rows (Bolt's ``vocab_size`` is 2 with ``use_reg_token``, else 1, as its own class sets it). The
study never looks tokens up there: patch embeddings enter through ``inputs_embeds``, and every
arm shares the study's own patch embedding. The slot is filled so that the encoder is the
checkpoint's and ``LoadedEncoder.token_embedding_rms`` is the RMS of the checkpoint's
``shared.weight`` (of a stored ``encoder.embed_tokens.weight`` copy when ``shared.weight`` is absent).
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
from transformers import PretrainedConfig, T5Config, T5EncoderModel
from transformers.models.t5.modeling_t5 import T5Stack

from workflow_scripts.models.checkpoint import TensorInfo, iter_tensors, read_tensor_infos
from workflow_scripts.models.errors import ModelLoadError, shown_keys
from workflow_scripts.models.files import local_model_files, weight_files

log = logging.getLogger(__name__)

CheckpointKind = Literal["text", "chronos_t5", "chronos_bolt"]
BOLT_ARCHITECTURE = "ChronosBoltModelForForecasting"
#: chronos_config fields a Bolt checkpoint must have (``use_reg_token`` defaults to false).
BOLT_FIELDS = ("context_length", "prediction_length", "input_patch_size", "input_patch_stride", "quantiles")
#: File keys the encoder leaves unused, by kind: the parts of the forecaster that are not its
#: encoder. The study replaces them with its own patch embedding and head.
UNUSED_PREFIXES: dict[str, tuple[str, ...]] = {
    "text": (),
    "chronos_t5": ("decoder.", "lm_head."),
    "chronos_bolt": ("decoder.", "input_patch_embedding.", "output_patch_embedding."),
}


def _field(config: PretrainedConfig | Mapping[str, Any], name: str) -> Any:
    return config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)


def checkpoint_kind(config: PretrainedConfig | Mapping[str, Any]) -> CheckpointKind:
    """The kind of a parsed config or of config.json's raw dict; ``ModelLoadError("architecture")``
    for a Chronos config this module does not know."""
    architectures = [str(name) for name in _field(config, "architectures") or []]
    chronos = _field(config, "chronos_config")
    model_type = _field(config, "model_type")
    if BOLT_ARCHITECTURE in architectures:
        if model_type != "t5" or not isinstance(chronos, Mapping):
            raise ModelLoadError(
                "architecture",
                f"{BOLT_ARCHITECTURE} needs model_type 't5' and a chronos_config dict "
                f"(found model_type {model_type!r}, chronos_config {type(chronos).__name__})",
            )
        missing = [name for name in BOLT_FIELDS if name not in chronos]
        if missing:
            raise ModelLoadError(
                "architecture", f"{BOLT_ARCHITECTURE} config.json: chronos_config lacks {', '.join(missing)}"
            )
        return "chronos_bolt"
    if chronos is None:
        return "text"
    if model_type == "t5" and isinstance(chronos, Mapping) and "T5ForConditionalGeneration" in architectures:
        return "chronos_t5"
    raise ModelLoadError(
        "architecture",
        f"config.json has a chronos_config but model_type {model_type!r} and architectures {architectures}: "
        f"only Chronos-T5 (T5ForConditionalGeneration) and Chronos-Bolt ({BOLT_ARCHITECTURE}) are supported",
    )


def prepare_config(config: PretrainedConfig) -> PretrainedConfig:
    """The config the encoder is built from: unchanged for text; for Chronos a ``T5Config``, and
    for Bolt ``vocab_size`` = 2 with ``use_reg_token`` else 1, as ChronosBolt's own class sets it."""
    kind = checkpoint_kind(config)
    if kind == "text":
        return config
    if not isinstance(config, T5Config):
        raise ModelLoadError(
            "architecture", f"a {kind} checkpoint must parse as T5Config, not {type(config)}"
        )
    if kind == "chronos_bolt":
        config = copy.deepcopy(config)
        config.vocab_size = 2 if config.chronos_config.get("use_reg_token", False) else 1
    return config


@dataclass(frozen=True)
class ChronosEncoder:
    """The encoder of a Chronos checkpoint and the file keys it left unused (sorted; all under
    ``UNUSED_PREFIXES[kind]``)."""

    encoder: T5EncoderModel
    kind: CheckpointKind
    unused_keys: tuple[str, ...]


def _file_sources(
    expected: Mapping[str, torch.Tensor], tied: Mapping[str, str], infos: Mapping[str, TensorInfo]
) -> dict[str, str]:
    """Encoder key -> the file key that fills it (tied keys excluded: they follow their source)."""
    sources = {key: key for key in expected if key not in tied}
    for target, source in tied.items():
        if source not in infos and target in infos:  # a stored tied copy stands in for its source
            sources[source] = target
    return sources


def load_chronos_encoder(model_dir: Path, config: PretrainedConfig, kind: CheckpointKind) -> ChronosEncoder:
    """The ``T5EncoderModel`` of a Chronos checkpoint, every tensor the file's, float32, eval mode."""
    model_dir = Path(model_dir)
    where = f"T5EncoderModel from {model_dir} ({kind})"
    weights = weight_files(local_model_files(model_dir))
    infos = read_tensor_infos(model_dir, weights)
    with torch.random.fork_rng(devices=[]):  # every value is overwritten below
        encoder = T5EncoderModel(cast(T5Config, copy.deepcopy(config)))
    expected = encoder.state_dict()
    tied = dict(getattr(encoder, "all_tied_weights_keys", None) or {})
    sources = _file_sources(expected, tied, infos)
    missing = [key for key, file_key in sources.items() if file_key not in infos]
    if missing:
        raise ModelLoadError(
            "keys", f"{where}: encoder tensors missing from the checkpoint: {shown_keys(missing)}"
        )
    stored = {
        **{file_key: key for key, file_key in sources.items()},
        **{t: s for t, s in tied.items() if t in infos},
    }
    wrong = [
        f"{file_key} (checkpoint {infos[file_key].shape} vs encoder {tuple(expected[key].shape)})"
        for file_key, key in stored.items()
        if infos[file_key].shape != tuple(expected[key].shape)
    ]
    if wrong:
        raise ModelLoadError("shapes", f"{where}: tensors with the wrong shape: {shown_keys(wrong)}")
    unused = sorted(set(infos) - set(stored))
    unexpected = [key for key in unused if not key.startswith(UNUSED_PREFIXES[kind])]
    if unexpected:
        raise ModelLoadError(
            "keys",
            f"{where}: unexpected keys, neither encoder tensors nor the parts a {kind} encoder leaves unused "
            f"({', '.join(UNUSED_PREFIXES[kind])}): {shown_keys(unexpected)}",
        )
    tensors = {name: tensor for name, tensor in iter_tensors(model_dir, weights) if name in stored}
    not_float = [
        f"{name} ({tensor.dtype})" for name, tensor in tensors.items() if not tensor.is_floating_point()
    ]
    if not_float:
        raise ModelLoadError(
            "not_quantised", f"{where}: encoder tensors not stored as floats: {shown_keys(not_float)}"
        )
    for target, source in tied.items():
        if target in tensors and source in tensors and not torch.equal(tensors[target], tensors[source]):
            raise ModelLoadError("keys", f"{where}: {target} differs from {source}, to which it is tied")
    state = {key: tensors[sources[tied.get(key, key)]].to(torch.float32) for key in expected}
    encoder.load_state_dict(state, strict=True)
    parts = Counter(key.split(".", 1)[0] + ".*" for key in unused)
    log.info("%s: %d tensors loaded; left unused: %s", where, len(stored), dict(sorted(parts.items())))
    return ChronosEncoder(encoder=encoder.float().eval(), kind=kind, unused_keys=tuple(unused))


class _ResidualBlockShape(torch.nn.Module):
    """The parameters of chronos-forecasting's ResidualBlock (no layer norm, as Bolt uses it)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.hidden_layer = torch.nn.Linear(in_dim, hidden_dim)
        self.output_layer = torch.nn.Linear(hidden_dim, out_dim)
        self.residual_layer = torch.nn.Linear(in_dim, out_dim)


class BoltLayout(torch.nn.Module):
    """Names and shapes of every parameter a ChronosBoltModelForForecasting checkpoint stores.

    Written from that class's published ``__init__``; it has no forward and is only built on the
    meta device. transformers' own ``T5Stack`` supplies both stacks; their token embeddings are
    ``shared`` (tied, so not stored). Verification holds a Bolt file to it as it holds a text
    checkpoint to its full transformers class: nothing missing, nothing extra, every shape equal.
    """

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        chronos = config.chronos_config
        self.shared = torch.nn.Embedding(config.vocab_size, config.d_model)
        patch_inputs = 2 * int(chronos["input_patch_size"])  # values and their observed-mask
        self.input_patch_embedding = _ResidualBlockShape(patch_inputs, config.d_ff, config.d_model)
        stacks: dict[str, T5Stack] = {}
        depths = {"encoder": config.num_layers, "decoder": config.num_decoder_layers or config.num_layers}
        for name, depth in depths.items():
            stack_config = copy.deepcopy(config)
            stack_config.is_decoder, stack_config.use_cache = name == "decoder", False
            stack_config.num_layers = depth
            stacks[name] = T5Stack(stack_config)
            stacks[name].embed_tokens = self.shared
        self.encoder, self.decoder = stacks["encoder"], stacks["decoder"]
        outputs = len(chronos["quantiles"]) * int(chronos["prediction_length"])
        self.output_patch_embedding = _ResidualBlockShape(config.d_model, config.d_ff, outputs)
        self.all_tied_weights_keys = {f"{name}.embed_tokens.weight": "shared.weight" for name in stacks}


def bolt_layout(config: PretrainedConfig) -> BoltLayout:
    """``BoltLayout`` of a prepared Bolt config, on the meta device."""
    with torch.device("meta"):
        return BoltLayout(cast(T5Config, copy.deepcopy(config)))


def check_bolt_file(infos: Mapping[str, TensorInfo], layout: BoltLayout, where: str) -> None:
    """``ModelLoadError("shapes"/"keys")`` unless the file holds exactly the layout's parameters
    (plus, at most, stored copies of the tied token embeddings)."""
    expected = {name: tuple(parameter.shape) for name, parameter in layout.named_parameters()}
    tied = layout.all_tied_weights_keys
    allowed = {**expected, **{target: expected[source] for target, source in tied.items()}}
    wrong = [
        f"{key} (checkpoint {info.shape} vs {BOLT_ARCHITECTURE} {allowed[key]})"
        for key, info in infos.items()
        if key in allowed and info.shape != allowed[key]
    ]
    if wrong:
        raise ModelLoadError("shapes", f"{where}: tensors with the wrong shape: {shown_keys(wrong)}")
    problems = []
    missing = set(expected) - set(infos)
    if missing:
        problems.append(f"missing keys: {shown_keys(missing)}")
    unexpected = set(infos) - set(allowed)
    if unexpected:
        problems.append(f"unexpected keys: {shown_keys(unexpected)}")
    if problems:
        raise ModelLoadError("keys", f"{where}: " + "; ".join(problems))
