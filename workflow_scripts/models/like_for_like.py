"""Like for like, checked when the workflow is parsed: no contrast between unlike encoders.

Two arms that start from different models (say t5-small and chronos-bolt-small) may be compared
only when their encoders are the same stack of blocks (encoder_blocks.block_differences). The
rule, decided for issue 28:

* a contrast between two arms of the *same* model (a pretrained arm and its random twin, which
  builds that model's architecture) is like for like by construction, whatever the shape;
* a contrast between arms of *different* models needs both shapes known at parse time and
  equal. Known but different: refused, naming the differing fields. Unknown (a Hub id outside
  known_models' table whose download is not on disk yet): refused too, saying how to make it
  known, because an unknown shape must never pass as equal. A declared random twin does not
  lift this: it makes each encoder-vs-its-twin contrast fair, never the cross contrast.

The study's generated contrasts (config/model_checks.pretraining_contrasts) follow the same rule:
every twin contrast is added; a text-vs-other contrast only where the shapes are known and equal
(otherwise a notice says why it is missing). Arms with encoder none or small are not checkpoint
encoders and are compared by design (no_encoder vs baseline), so they are left out.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from workflow_scripts.config.base import ConfigError, ContrastConfig, is_local_model_path
from workflow_scripts.config.experiment import ExperimentConfig
from workflow_scripts.config.model_checks import pretraining_contrasts
from workflow_scripts.models.block_shapes import parse_time_blocks
from workflow_scripts.models.encoder_blocks import EncoderBlocks, block_differences
from workflow_scripts.models.lookahead import effective_cutoff

MODELS_ROOT = Path("resources/models")


def model_shapes(
    experiment: ExperimentConfig, models_root: Path = MODELS_ROOT
) -> dict[str, tuple[EncoderBlocks | None, str]]:
    """(shape or None, source or why unknown) of every model an enabled arm uses."""
    shapes = {}
    for name in experiment.used_models:
        model = experiment.named_model(name)
        local = Path(model.name_or_path).expanduser() if is_local_model_path(model.name_or_path) else None
        shapes[name] = parse_time_blocks(model.name_or_path, local, models_root / model.slug)
    return shapes


def contrast_problem(
    contrast: ContrastConfig,
    experiment: ExperimentConfig,
    shapes: dict[str, tuple[EncoderBlocks | None, str]],
) -> str | None:
    """Why ``contrast`` is not like for like, or None (see the module docstring)."""
    a, b = experiment.variants.get(contrast.a), experiment.variants.get(contrast.b)
    if a is None or b is None or a.model == b.model or "checkpoint" not in (a.encoder, b.encoder):
        return None
    if a.encoder != b.encoder:
        return None  # a checkpoint encoder against none/small: an ablation, compared on purpose
    (shape_a, where_a), (shape_b, where_b) = shapes[a.model], shapes[b.model]
    pair = f"{contrast.a} (model {a.model}) vs {contrast.b} (model {b.model})"
    if shape_a is None or shape_b is None:
        unknown = [
            (name, why)
            for name, (shape, why) in ((a.model, shapes[a.model]), (b.model, shapes[b.model]))
            if shape is None
        ]
        named = "; ".join(f"{name}: {why}" for name, why in unknown)
        return (
            f"{pair}: the encoder block shape is unknown at parse time ({named}); run "
            "`python -m workflow_scripts.download_model --name-or-path <id> "
            "--out-dir resources/models/<slug>` first (or use a local copy), so config.json is on disk"
        )
    fields = block_differences(shape_a, shape_b)
    if not fields:
        return None
    shown = ", ".join(f"{f} {getattr(shape_a, f)} vs {getattr(shape_b, f)}" for f in fields)
    return (
        f"{pair}: the encoders' blocks differ in {', '.join(fields)} ({shown}; "
        f"from {where_a} and {where_b}); compare each encoder with its own random twin "
        "(init: random, the same model) instead"
    )


def with_pretraining_contrasts(
    experiment: ExperimentConfig, models_root: Path = MODELS_ROOT
) -> tuple[ExperimentConfig, list[str]]:
    """The study with its generated contrasts added, and the notices to print.

    Raises ConfigError naming every declared contrast between unlike (or unknown) encoders.
    """
    shapes = model_shapes(experiment, models_root)
    refused = [
        f"contrasts.{index}: {problem}"
        for index, contrast in enumerate(experiment.contrasts)
        if (problem := contrast_problem(contrast, experiment, shapes)) is not None
    ]
    if refused:
        raise ConfigError("contrasts between unlike encoders:\n  - " + "\n  - ".join(refused))
    twins, cross = pretraining_contrasts(experiment.variants, experiment.contrasts)
    notices = []
    kept = []
    for contrast in cross:
        problem = contrast_problem(contrast, experiment, shapes)
        if problem is None:
            kept.append(contrast)
        else:
            notices.append(f"not compared: {problem}")
    for name in experiment.used_models[1:]:
        model = experiment.named_model(name)
        if effective_cutoff(model.name_or_path, model.pretraining_cutoff) is None:
            notices.append(
                f"models.{name}.pretraining_cutoff is unknown: nothing shows that {model.name_or_path} "
                "was not pretrained on the test periods (set it where the model card states it)"
            )
    contrasts = (*experiment.contrasts, *twins, *kept)
    return dataclasses.replace(experiment, contrasts=contrasts), notices
