"""Several pretrained encoders in one study: which arm starts from which model, and its twin.

``models:`` names further encoders beside the study's own ``model:`` (named ``text``); a variant
picks one with ``model: <name>``. Only init pretrained and init random arms with the checkpoint
encoder may name another model: the positive controls' pretraining and the small/none encoders
are built from the study's model. The encoder-shape check (models/like_for_like.py) needs the
models' files or the published table, so it lives a layer up; what is pure configuration is here.

A *random twin* of a pretrained arm is the enabled arm that differs from it in its init alone:
the same model (so the same block stack, by construction), init random with the run's own seed,
the same freeze schedule and train settings. Comparing each pretrained encoder with its own twin
is like for like whatever the encoders' shapes; comparing two pretrained encoders needs equal
shapes as well.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping

from workflow_scripts.config.base import (
    DEFAULT_MODEL,
    ConfigError,
    ContrastConfig,
    ModelConfig,
    VariantConfig,
)


def check_variant_models(
    models: Mapping[str, ModelConfig], all_variants: Mapping[str, VariantConfig]
) -> None:
    """Each variant's model is defined, and only a pretrained or random checkpoint arm names
    another model than the study's (ConfigError listing every problem)."""
    problems = []
    names = [DEFAULT_MODEL, *sorted(models)]
    for name, variant in sorted(all_variants.items()):
        if variant.model not in names:
            close = difflib.get_close_matches(variant.model, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(
                f"variants.{name}.model: '{variant.model}' is not a model{hint} (allowed: {', '.join(names)})"
            )
        elif variant.model != DEFAULT_MODEL and (
            variant.init not in ("pretrained", "random") or variant.encoder != "checkpoint"
        ):
            problems.append(
                f"variants.{name}: model {variant.model} with init {variant.init}, encoder {variant.encoder} "
                "is refused (allowed: init pretrained or random with encoder checkpoint; the positive "
                "controls and the small/none encoders are built from the study's model, text)"
            )
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


def _twin_key(variant: VariantConfig) -> tuple[object, ...]:
    """Everything but init: an arm and its random twin agree on it."""
    params = variant.to_params()
    for key in ("name", "init", "description", "enabled"):
        params.pop(key, None)
    return (variant.model, repr(params))


def random_twin(arm: VariantConfig, variants: Mapping[str, VariantConfig]) -> str | None:
    """The enabled random twin of pretrained ``arm`` (alphabetically first if several), or None."""
    if arm.init != "pretrained" or arm.encoder != "checkpoint":
        return None
    twins = [
        name
        for name, other in sorted(variants.items())
        if other.init == "random" and other.encoder == "checkpoint" and _twin_key(other) == _twin_key(arm)
    ]
    return twins[0] if twins else None


def _text_partner(arm: VariantConfig, variants: Mapping[str, VariantConfig]) -> str | None:
    """The enabled text-pretrained arm trained like ``arm`` (same schedule), or None."""
    wanted = _twin_key(dataclasses.replace(arm, model=DEFAULT_MODEL))
    partners = [
        name
        for name, other in sorted(variants.items())
        if other.init == "pretrained" and other.encoder == "checkpoint" and _twin_key(other) == wanted
    ]
    return partners[0] if partners else None


def pretraining_contrasts(
    variants: Mapping[str, VariantConfig], declared: tuple[ContrastConfig, ...]
) -> tuple[list[ContrastConfig], list[ContrastConfig]]:
    """(twin contrasts, cross contrasts) the study adds for the arms that start from another model.

    Twin: each such pretrained arm vs its random twin. Cross: the text arm trained the same way vs
    that arm (``a`` = text). A pair a declared contrast already holds, either way round, is left
    out. Both have role pretraining; Holm runs over them with the declared family.
    """
    held = {frozenset((c.a, c.b)) for c in declared}
    twins: list[ContrastConfig] = []
    cross: list[ContrastConfig] = []
    for name, arm in sorted(variants.items()):
        if arm.model == DEFAULT_MODEL or arm.init != "pretrained":
            continue
        twin = random_twin(arm, variants)
        if twin is not None and frozenset((name, twin)) not in held:
            label = f"{arm.model} pretraining: {name} vs its random twin {twin}"
            twins.append(ContrastConfig(a=name, b=twin, role="pretraining", label=label))
        text = _text_partner(arm, variants)
        if text is not None and frozenset((text, name)) not in held:
            label = f"text vs {arm.model} pretraining: {text} vs {name}"
            cross.append(ContrastConfig(a=text, b=name, role="pretraining", label=label))
    return twins, cross
