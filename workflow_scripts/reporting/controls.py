"""The controls' lines under the report's headline (docs/controls.md).

* Positive control, whole model (role ``positive_control``, by default ``ts_nofreeze vs
  baseline``: the whole Stage-1 model pretrained on bars of the same domain, whose
  advantage is known to exist): **detected** when its planned contrast on the primary
  metric is significant after Holm and favours the pretrained arm, else **not
  detected**. It shows whether the statistics can detect a large known effect; not
  detected, a headline of "No" or "Cannot tell" carries the warning that this experiment
  could not detect a known effect, so it says nothing about text pretraining either.
* Positive control, encoder only (role ``encoder_control``, by default ``ts_encoder vs
  baseline``: the bar-pretrained encoder alone behind the seed's fresh patch embedding
  and head, exactly the interface the text arms get): detected or not as above. It shows
  what encoder transfer can do through this interface, so the transfer ratio divides by
  it; not detected, the study cannot see encoder transfer at this budget and the ratio
  is not shown as a number.
* Negative control (role ``negative_control``, e.g. ``baseline_aa vs baseline``, two
  random initialisations of one arm): the statistics must not declare it; if they do,
  the report says so and the headline carries the false-alarm warning.
* Transfer ratio, shown only when the encoder-only control is detected: how far text
  transfer is from in-domain encoder transfer, ``mean Δ(primary) / mean Δ(encoder
  control)`` on the units both contrasts share (their reference arm is the same baseline), with a 95% paired
  bootstrap interval: units resampled with replacement (``stats.BOOTSTRAP_RESAMPLES`` draws,
  ``numpy.random.default_rng(stats.BOOTSTRAP_SEED)``, percentile interval); resamples whose
  control Δ has mean 0 are dropped. All functions are pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from workflow_scripts.reporting import paired
from workflow_scripts.reporting.contrast_results import ContrastFamily, ContrastResult
from workflow_scripts.reporting.measures import MAE_METRIC
from workflow_scripts.reporting.sentences import (
    CANNOT_TELL,
    NO,
    Headline,
    control_mae_clause,
    negative_control_line,
    positive_control_line,
    ratio_not_shown,
    ratio_text,
)

DETECTED, NOT_DETECTED, NOT_RUN = "detected", "not detected", "not run"
#: Detected under one metric only: not plainly detected (the line says under which it holds).
MSE_ONLY, MAE_ONLY = "detected on squared errors only", "detected on absolute errors only"
#: When a positive control counts as detected, in the words the report states it (:func:`is_detected`).
DETECTION_RULE = (
    "significant after Holm's correction and favours the pretrained arm, on squared and on absolute "
    "errors alike"
)
#: How each positive control is named in the report: what it shows.
CONTROL_NAMES = {
    "positive_control": "Positive control, whole model (can the statistics detect a large known effect?)",
    "encoder_control": (
        "Positive control, encoder only (what encoder transfer can do through the text arms' interface)"
    ),
}
FALSE_ALARM_WARNING = (
    "Warning: the A/A negative control was declared significant (a false alarm): two draws of the same "
    "arm were called different, so treat every significant contrast of this study with suspicion."
)
WARNING = (
    "Warning: the positive control was not detected, so this experiment could not detect a known "
    "effect (an encoder pretrained on bars of this domain); its answer on text pretraining is "
    "uninformative, not evidence of no effect."
)


@dataclass(frozen=True)
class ControlLine:
    """A positive control's verdict, its line under the headline, and the contrast behind it."""

    status: str
    text: str
    row: ContrastResult | None


@dataclass(frozen=True)
class PretrainingData:
    """Which data the controls' pretraining saw, and the warning when it is the train split."""

    text: str = ""
    warning: str = ""


@dataclass(frozen=True)
class ControlSummary:
    """Everything the report shows under the headline about its controls."""

    positive: str
    status: str
    encoder: str
    encoder_status: str
    negative: list[str]
    false_alarm: bool
    ratio: str
    pretraining_data: PretrainingData = PretrainingData()


def positive_control(family: ContrastFamily, role: str = "positive_control") -> ControlLine:
    """The line under the headline for the control of ``role`` (positive_control: whole
    model; encoder_control: encoder only): detected, not detected or not run."""
    name = CONTROL_NAMES[role]
    row = family.of_role(role)
    if row is None:
        skipped = family.skipped_of(role)
        why = skipped[0].reason if skipped else f"no contrast has role {role}"
        return ControlLine(NOT_RUN, f"{name}: not run ({why}).", None)
    mae = family.of_role(role, MAE_METRIC)
    status = control_status(row, mae)
    text = positive_control_line(name, row, is_detected(row), status)
    if mae is not None and mae.n:
        text += " " + control_mae_clause(mae, is_detected(mae))
    return ControlLine(status, text, row)


def is_detected(row: ContrastResult) -> bool:
    """One metric's part of :data:`DETECTION_RULE`: significant after Holm, ``a`` (the
    pretrained arm) ahead."""
    return row.significant and row.favours == "a"


def control_status(row: ContrastResult, mae: ContrastResult | None) -> str:
    """:data:`DETECTION_RULE`: detected only when both metrics detect it; a study that did not
    score absolute errors (no MAE values) is judged on squared errors alone."""
    on_mse = is_detected(row)
    if mae is None or mae.n == 0:
        return DETECTED if on_mse else NOT_DETECTED
    on_mae = is_detected(mae)
    if on_mse and on_mae:
        return DETECTED
    if on_mse or on_mae:
        return MSE_ONLY if on_mse else MAE_ONLY
    return NOT_DETECTED


def _negative_rows(family: ContrastFamily) -> list[ContrastResult]:
    return [row for row in family.on(family.primary_metric) if row.role == "negative_control"]


def false_alarm(family: ContrastFamily) -> bool:
    """Whether a negative control is declared significant on the primary metric."""
    return any(row.significant for row in _negative_rows(family))


def negative_controls(family: ContrastFamily) -> list[str]:
    """One sentence per negative control on the primary metric: declared (a false alarm) or not."""
    return [negative_control_line(row) for row in _negative_rows(family)]


def transfer_ratio(primary: ContrastResult, control: ContrastResult) -> paired.TransferRatio | None:
    """(primary Δ) / (control Δ) with its paired-bootstrap interval (:func:`paired.transfer_ratio`),
    on the units where both contrasts have a Δ."""
    a = {u: d for u, d in zip(primary.units, primary.deltas, strict=True) if d is not None}
    b = {u: d for u, d in zip(control.units, control.deltas, strict=True) if d is not None}
    units = sorted(set(a) & set(b))
    return paired.transfer_ratio([a[u] for u in units], [b[u] for u in units])


def ratio_sentence(primary: ContrastResult | None, encoder: ControlLine) -> str:
    """The transfer ratio over the encoder-only control, or why it is not shown as a number."""
    if primary is None:
        return ""
    if encoder.status != DETECTED or encoder.row is None:
        return ratio_not_shown(primary, encoder.row)
    return ratio_text(primary, encoder.row, transfer_ratio(primary, encoder.row))


def control_summary(
    family: ContrastFamily, pretraining: PretrainingData = PretrainingData()
) -> ControlSummary:
    """Everything the templates show under the headline (see the module docstring)."""
    positive = positive_control(family)
    encoder = positive_control(family, "encoder_control")
    return ControlSummary(
        positive=positive.text,
        status=positive.status,
        encoder=encoder.text,
        encoder_status=encoder.status,
        negative=negative_controls(family),
        false_alarm=false_alarm(family),
        ratio=ratio_sentence(family.of_role("primary"), encoder),
        pretraining_data=pretraining,
    )


SAME_DATA_WARNING = (
    "Warning: the pretraining saw the experiment's own train split, so the control partly measures "
    "extra training on the same data (point pretrain.data at another instrument: docs/controls.md)."
)


def pretraining_data(experiment: Mapping[str, Any]) -> PretrainingData:
    """Which data the controls' pretraining saw, with a warning when it is the experiment's own
    train split; empty when no enabled variant starts from the pretraining."""
    inits = {str((spec or {}).get("init")) for spec in (experiment.get("variants") or {}).values()}
    if not inits & {"timeseries", "timeseries_encoder"}:
        return PretrainingData()
    series = list(experiment.get("series") or [])
    names = ", ".join(str(data.get("name")) for data in series)
    source = (experiment.get("pretrain") or {}).get("data")
    fraction = (experiment.get("pretrain") or {}).get("source_fraction")
    part = "part of it" if fraction is None else f"its first {float(fraction):.0%} of samples"
    share = f"{part} to train on, the rest to choose the checkpoint"

    def same_input(data: Mapping[str, Any]) -> bool:
        keys = ("path", "kind", "columns")
        return source is not None and [source.get(k) for k in keys] == [data.get(k) for k in keys]

    if source is None or any(same_input(data) for data in series):
        paths = ", ".join(str(data.get("path")) for data in series)
        text = (
            f"Pretraining data: the experiment's own train split ({names}; {paths}): for each series the "
            f"train split of its earliest fold ({share}); never a validation or test split."
        )
        return PretrainingData(text, SAME_DATA_WARNING)
    text = (
        f"Pretraining data: {source.get('name')} ({source.get('path')}), another series than the "
        f"experiment's {names}; its train split only ({share})."
    )
    return PretrainingData(text)


def with_control_warning(headline: Headline, status: str, alarm: bool = False) -> Headline:
    """The headline with its warnings: "No"/"Cannot tell" when the whole-model positive control
    was not detected, any answer when a negative control raised a false alarm."""
    warned = status not in (DETECTED, NOT_RUN) and headline.answer in (NO, CANNOT_TELL)
    warnings = [WARNING] if warned else []
    if alarm:
        warnings.append(FALSE_ALARM_WARNING)
    return replace(headline, warning=" ".join(warnings))
