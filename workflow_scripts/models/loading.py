"""The one code path that turns a model directory into an encoder, for verify_model and training.

Because verification and training load weights through the same function, what was
verified is what trains. ``load_encoder(..., "pretrained")`` is strict where
transformers is lenient: transformers 5 only *logs* missing, unexpected and mis-shaped
keys and initialises the gaps randomly, which is how a partial checkpoint can pass
for a pretrained one. Here any of them raises ``ModelLoadError`` naming the check.
The only keys an encoder may leave unused are those of the checkpoint's own full
architecture that the encoder has no slot for (T5's ``decoder.*``/``lm_head``, BERT's
pre-training heads); verify_model loads that full architecture strictly as well.

Encoder class: the standalone encoder of an encoder-decoder family (``T5EncoderModel``
for T5 checkpoints, found as ``<Family>EncoderModel``) or the ``AutoModel`` class for
encoder-only families (``BertModel`` ...). It must accept ``inputs_embeds``, since the
time-series model feeds patch embeddings instead of token ids. Only classes that ship
with transformers are used: ``trust_remote_code`` is never enabled, ``.bin`` weights are
read by transformers with ``torch.load(weights_only=True)``.

Time-series checkpoints (Chronos-T5, Chronos-Bolt) are recognised from config.json and their
encoder taken out by ``checkpoint_kinds``, as strictly; ``ModelLoadError`` lives in ``errors``.

``require_verified`` is the gate training passes first: no verification.json, or any
weights file whose sha256 no longer matches it, and training refuses to start.
"""

from __future__ import annotations

import copy
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
import transformers
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from workflow_scripts.models.checkpoint_kinds import checkpoint_kind, load_chronos_encoder, prepare_config
from workflow_scripts.models.errors import ModelLoadError
from workflow_scripts.models.errors import shown_keys as _shown
from workflow_scripts.models.files import CONFIG_FILE, NoLoadableWeightsError, local_model_files, weight_files
from workflow_scripts.models.manifest import mismatched_files

Init = Literal["pretrained", "random"]
VERIFICATION_FILE = "verification.json"


class ModelNotVerifiedError(RuntimeError):
    """verification.json is missing or no longer matches the weights on disk."""


@dataclass
class LoadedEncoder:
    """An encoder ready for ``encoder(inputs_embeds=x, attention_mask=m).last_hidden_state``.

    ``token_embedding_rms`` is the RMS of the input token embedding matrix
    (``get_input_embeddings().weight``): the scale at which the checkpoint expects its
    inputs, used to scale patch embeddings.
    """

    encoder: torch.nn.Module
    config: PretrainedConfig
    model_type: str
    hidden_size: int
    token_embedding_rms: float


def load_config(model_dir: Path) -> PretrainedConfig:
    """The model's config, parsed by transformers' own classes (never remote code), as
    ``checkpoint_kinds.prepare_config`` leaves it."""
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise ModelLoadError("weights_format", f"{path} is missing")
    try:
        config = AutoConfig.from_pretrained(str(model_dir), trust_remote_code=False, local_files_only=True)
    except (ValueError, OSError, KeyError) as error:
        raise ModelLoadError(
            "architecture",
            f"{path} is not a config transformers {transformers.__version__} can build without remote "
            f"code ({str(error).strip().splitlines()[0]})",
        ) from error
    return prepare_config(config)  # Chronos checkpoints: see checkpoint_kinds


def _transformers_class(name: str) -> type[PreTrainedModel] | None:
    candidate = getattr(transformers, name, None)
    if isinstance(candidate, type) and issubclass(candidate, PreTrainedModel):
        return candidate
    return None


def _base_class(config: PretrainedConfig) -> type[PreTrainedModel]:
    try:
        mapped = MODEL_MAPPING[type(config)]
    except KeyError as error:
        raise ModelLoadError(
            "architecture", f"model_type '{config.model_type}' has no base model class in transformers"
        ) from error
    # A few model types map to several classes; the first is the default one.
    cls = mapped[0] if isinstance(mapped, tuple) else mapped
    return cast(type[PreTrainedModel], cls)


def encoder_class(config: PretrainedConfig) -> type[PreTrainedModel]:
    """The class training uses: ``<Family>EncoderModel`` for encoder-decoders, else the AutoModel class."""
    base = _base_class(config)
    cls: type[PreTrainedModel] | None = base
    if getattr(config, "is_encoder_decoder", False):
        cls = _transformers_class(base.__name__.removesuffix("Model") + "EncoderModel")
        if cls is None:
            raise ModelLoadError(
                "architecture",
                f"model_type '{config.model_type}' is an encoder-decoder without a standalone encoder "
                f"class in transformers; use a T5-family or encoder-only (BERT-like) checkpoint",
            )
    assert cls is not None
    if "inputs_embeds" not in inspect.signature(cls.forward).parameters:
        raise ModelLoadError(
            "architecture", f"{cls.__name__}.forward does not accept inputs_embeds, which the model needs"
        )
    return cls


def full_model_class(config: PretrainedConfig) -> type[PreTrainedModel]:
    """The architecture the checkpoint was saved from (``config.architectures``), else the base class.

    Its parameter count is what the whole checkpoint must hold; loading it reveals keys
    missing outside the encoder (e.g. a T5 checkpoint without its decoder).
    """
    for name in getattr(config, "architectures", None) or []:
        cls = _transformers_class(name)
        config_class = cls.config_class if cls is not None else None
        if cls is not None and config_class is not None and isinstance(config, config_class):
            return cls
    return _base_class(config)


def full_model_only_keys(config: PretrainedConfig) -> frozenset[str]:
    """Checkpoint keys that belong to the saved architecture but not to its encoder.

    A full t5-small checkpoint holds ``decoder.*`` and (in older ``.bin`` files) the tied
    copy ``lm_head.weight``; a BERT pre-training checkpoint holds its ``cls.*`` heads.
    The standalone encoder has no slot for them, so they are left unused, and nothing
    else is: verification loads the full architecture strictly, so these keys are
    checked there. Built on the meta device: no memory.
    """
    with torch.device("meta"):
        full = full_model_class(config)(copy.deepcopy(config))
        encoder = encoder_class(config)(copy.deepcopy(config))
    encoder_keys = set(encoder.state_dict())
    prefix = f"{full.base_model_prefix}." if full.base_model_prefix else ""
    full_keys = set(full.state_dict()) | set(getattr(full, "all_tied_weights_keys", None) or {})
    return frozenset(
        key for key in full_keys if key not in encoder_keys and key.removeprefix(prefix) not in encoder_keys
    )


def load_pretrained(
    cls: type[PreTrainedModel],
    model_dir: Path,
    config: PretrainedConfig,
    *,
    unused_ok: frozenset[str] = frozenset(),
) -> PreTrainedModel:
    """``cls.from_pretrained`` in float32, raising on anything transformers would only log.

    Allowed silently is exactly what the classes declare: keys ``cls`` declares
    ignorable (``_keys_to_ignore_on_load_unexpected``/``_missing``, e.g. T5EncoderModel
    ignores ``decoder.*``; transformers also drops legacy ``position_ids`` buffers),
    weights ``cls`` ties, and ``unused_ok`` (see ``full_model_only_keys``).
    """
    try:
        loaded = cls.from_pretrained(
            str(model_dir),
            config=copy.deepcopy(config),
            output_loading_info=True,
            local_files_only=True,
            trust_remote_code=False,
            dtype=torch.float32,
            ignore_mismatched_sizes=True,  # report mismatches below instead of a generic RuntimeError
        )
    except OSError as error:
        raise ModelLoadError("weights_format", f"{model_dir}: {str(error).strip()}") from error
    model, info = cast(tuple[PreTrainedModel, dict[str, Any]], loaded)
    where = f"{cls.__name__} from {model_dir}"
    if info.get("mismatched_keys"):
        shapes = [
            f"{key} (checkpoint {tuple(a)} vs model {tuple(b)})" for key, a, b in info["mismatched_keys"]
        ]
        raise ModelLoadError("shapes", f"{where}: tensors with the wrong shape: {_shown(shapes)}")
    problems = []
    if info.get("missing_keys"):
        problems.append(f"missing keys (would be randomly initialised): {_shown(info['missing_keys'])}")
    unexpected = set(info.get("unexpected_keys") or ()) - unused_ok
    if unexpected:
        problems.append(f"unexpected keys: {_shown(unexpected)}")
    if info.get("error_msgs") or info.get("conversion_errors"):
        problems.append(
            f"load errors: {_shown([*info.get('error_msgs', []), *info.get('conversion_errors', {})])}"
        )
    if problems:
        raise ModelLoadError("keys", f"{where}: " + "; ".join(problems))
    return model


def input_embedding_weight(encoder: torch.nn.Module) -> torch.Tensor:
    """The input token embedding matrix (``get_input_embeddings().weight``) of an encoder."""
    embeddings = encoder.get_input_embeddings()  # type: ignore[operator]
    weight = getattr(embeddings, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise ModelLoadError("architecture", f"{type(encoder).__name__} has no input embedding matrix")
    return weight


def _describe(encoder: PreTrainedModel, config: PretrainedConfig) -> LoadedEncoder:
    weight = input_embedding_weight(encoder).detach()
    rms = float(weight.float().pow(2).mean().sqrt())
    return LoadedEncoder(
        encoder=encoder,
        config=config,
        model_type=str(config.model_type),
        hidden_size=int(weight.shape[-1]),
        token_embedding_rms=rms,
    )


def load_encoder(model_dir: Path, init: Init, *, seed: int = 0) -> LoadedEncoder:
    """The encoder of ``model_dir``: its checkpoint weights, or a fresh init of the identical class.

    ``init="random"`` builds the same class from the same config with the model's own
    initializer (transformers' ``_init_weights``) under ``torch.manual_seed(seed)``,
    without disturbing the caller's RNG state, so the baseline differs from the
    pretrained variant in the weights only. Both come back in float32 and eval mode.
    Chronos checkpoints (``checkpoint_kinds``) give ``T5EncoderModel`` either way; their
    pretrained weights are read by ``load_chronos_encoder``, as strictly.
    Callers that train must call ``require_verified`` first.
    """
    model_dir = Path(model_dir)
    config = load_config(model_dir)
    cls = encoder_class(config)
    kind = checkpoint_kind(config)
    encoder: PreTrainedModel
    if init == "pretrained" and kind != "text":
        encoder = load_chronos_encoder(model_dir, config, kind).encoder
    elif init == "pretrained":
        unused_ok = full_model_only_keys(config) if cls is not full_model_class(config) else frozenset()
        encoder = load_pretrained(cls, model_dir, config, unused_ok=unused_ok)
    elif init == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = cls(copy.deepcopy(config))  # some classes edit their config (T5: use_cache)
        encoder = encoder.float().eval()
    else:
        raise ValueError(f"init must be 'pretrained' or 'random', not {init!r}")
    return _describe(encoder, config)


def require_verified(model_dir: Path) -> dict[str, Any]:
    """The verification record of ``model_dir``, or ``ModelNotVerifiedError`` naming what is wrong.

    Training calls this before loading: it fails when verification.json is missing or
    unreadable, when any check did not pass, when the set of weights files changed, or
    when a weights file (or config.json) no longer has the recorded size and sha256 (a
    truncated or altered file).
    """
    model_dir = Path(model_dir)
    path = model_dir / VERIFICATION_FILE
    rerun = (
        f"run python -m workflow_scripts.verify_model --model-dir {model_dir} --out {path} "
        f"(after re-running download_model if the files were damaged)"
    )
    if not path.is_file():
        raise ModelNotVerifiedError(
            f"{path} is missing: the model in {model_dir} has not passed verification; {rerun}"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        checks, weights = record["checks"], record["weights"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelNotVerifiedError(f"{path} is unreadable or incomplete ({error}); {rerun}") from error
    failed = sorted(name for name, status in checks.items() if status != "passed")
    if failed or not checks:
        raise ModelNotVerifiedError(
            f"{path} records checks that did not pass: {failed or 'none run'}; {rerun}"
        )
    try:
        on_disk = weight_files(local_model_files(model_dir))
    except NoLoadableWeightsError as error:
        raise ModelNotVerifiedError(
            f"{model_dir} no longer holds loadable weights ({error}); {rerun}"
        ) from error
    recorded = sorted(item["path"] for item in weights)
    if on_disk != recorded:
        raise ModelNotVerifiedError(
            f"weights files in {model_dir} ({', '.join(on_disk)}) differ from those verified in {path} "
            f"({', '.join(recorded)}); {rerun}"
        )
    records = list(weights)
    if record.get("config_file"):
        records.append(record["config_file"])
    problems = mismatched_files(model_dir, records)
    if problems:
        raise ModelNotVerifiedError(
            f"{'; '.join(problems)} - the weights no longer match {path}; training refuses to start: {rerun}"
        )
    return dict(record)
