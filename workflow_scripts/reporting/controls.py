"""The controls' lines under the report's headline (docs/controls.md).

* Positive control (role ``positive_control``, by default ``ts_nofreeze vs baseline``: an
  encoder pretrained on bars of the same domain, whose advantage is known to exist):
  **detected** when its planned contrast on the primary metric is significant after Holm
  and favours the pretrained arm, else **not detected**. Not detected, a headline of
  "No" or "Cannot tell" carries the warning that this experiment could not detect a
  known effect, so it says nothing about text pretraining either.
* Negative control (role ``negative_control``, e.g. ``baseline_aa vs baseline``, two
  random initialisations of one arm): the statistics must not declare it; if they do,
  the report says so.
* Transfer ratio, shown only when the positive control is detected: how far text
  transfer is from in-domain transfer, ``mean Δ(primary) / mean Δ(control)`` on the seeds
  both contrasts share (their reference arm is the same baseline), with a 95% paired
  bootstrap interval: seeds resampled with replacement (``BOOTSTRAP_RESAMPLES`` draws,
  ``numpy.random.default_rng(BOOTSTRAP_SEED)``, percentile interval); resamples whose
  control Δ has mean 0 are dropped. All functions are pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from workflow_scripts.reporting.contrasts import CANNOT_TELL, NO, numbers_text, primary_result
from workflow_scripts.reporting.metrics import PRIMARY_METRIC

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
DETECTED, NOT_DETECTED, NOT_RUN = "detected", "not detected", "not run"
WARNING = (
    "Warning: the positive control was not detected, so this experiment could not detect a known "
    "effect (an encoder pretrained on bars of this domain); its answer on text pretraining is "
    "uninformative, not evidence of no effect."
)


def _row(block: Mapping[str, Any], role: str) -> dict[str, Any] | None:
    metric = block.get("primary_metric", PRIMARY_METRIC)
    for row in block.get("results", []):
        if row["role"] == role and row["metric"] == metric:
            return dict(row)
    return None


def positive_control(block: Mapping[str, Any]) -> dict[str, Any]:
    """{status: detected | not detected | not run, text}: the line under the headline."""
    row = _row(block, "positive_control")
    if row is None:
        skipped = [s for s in block.get("skipped", []) if s["role"] == "positive_control"]
        why = skipped[0]["reason"] if skipped else "no contrast has role positive_control"
        return {"status": NOT_RUN, "text": f"Positive control: not run ({why}).", "row": None}
    detected = bool(row["significant"]) and row["favours"] == "a"
    if detected:
        text = (
            f"Positive control: detected — {row['a']} beats {row['b']}; {numbers_text(row, detailed=False)}."
        )
    else:
        reason = (
            f"with {row['n']} seeds no result could be significant after Holm"
            if not row["can_reach_after_holm"]
            else f"{row['a']} vs {row['b']} is not significantly better after Holm"
        )
        text = f"Positive control: **not detected** — {reason}; {numbers_text(row, detailed=False)}."
    return {"status": DETECTED if detected else NOT_DETECTED, "text": text, "row": row}


def negative_controls(block: Mapping[str, Any]) -> list[str]:
    """One sentence per negative control on the primary metric: declared (a false alarm) or not."""
    metric = block.get("primary_metric", PRIMARY_METRIC)
    lines = []
    for row in block.get("results", []):
        if row["role"] != "negative_control" or row["metric"] != metric:
            continue
        if row["significant"]:
            lines.append(
                f"Negative control: FALSE ALARM — the statistics declare {row['a']} vs {row['b']} "
                f"(two draws of the same arm) different; {numbers_text(row, detailed=False)}. Treat every "
                "significant contrast of this study with suspicion."
            )
        else:
            lines.append(
                f"Negative control: no difference declared between {row['a']} and {row['b']} "
                f"(two draws of the same arm), as expected; {numbers_text(row, detailed=False)}."
            )
    return lines


def transfer_ratio(primary: Mapping[str, Any], control: Mapping[str, Any]) -> dict[str, float | int] | None:
    """(primary Δ) / (control Δ) with its paired-bootstrap interval, on their shared seeds."""
    a = {s: d for s, d in zip(primary["seeds"], primary["deltas"], strict=True) if d is not None}
    b = {s: d for s, d in zip(control["seeds"], control["deltas"], strict=True) if d is not None}
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    x = np.array([a[s] for s in seeds], dtype=np.float64)
    y = np.array([b[s] for s in seeds], dtype=np.float64)
    if y.mean() == 0:
        return None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    idx = rng.integers(0, len(seeds), size=(BOOTSTRAP_RESAMPLES, len(seeds)))
    den = y[idx].mean(axis=1)
    # A denominator that changes sign (or vanishes) in more than 2.5% of resamples makes
    # the ratio unbounded: the interval is then (-inf, inf), not a percentile of a
    # distribution with a pole in it.
    if np.mean(np.sign(den) != np.sign(y.mean())) > 0.025:
        return {"ratio": float(x.mean() / y.mean()), "low": -math.inf, "high": math.inf, "n": len(seeds)}
    ratios = x[idx].mean(axis=1) / den
    low, high = np.percentile(ratios, [2.5, 97.5])
    return {"ratio": float(x.mean() / y.mean()), "low": float(low), "high": float(high), "n": len(seeds)}


def control_summary(block: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the templates show under the headline (see the module docstring)."""
    positive = positive_control(block)
    ratio_text = ""
    primary = primary_result(block)
    if positive["status"] == DETECTED and primary is not None:
        ratio = transfer_ratio(primary, positive["row"])
        if ratio is not None and math.isinf(ratio["low"]):
            ratio_text = (
                f"Text transfer vs in-domain transfer: ({primary['a']} − {primary['b']}) / "
                f"({positive['row']['a']} − {positive['row']['b']}) = {ratio['ratio']:.2f}, but its interval "
                "is unbounded: the control's Δ changes sign in more than 2.5% of the bootstrap resamples."
            )
        elif ratio is not None:
            ratio_text = (
                f"Text transfer vs in-domain transfer: ({primary['a']} − {primary['b']}) / "
                f"({positive['row']['a']} − {positive['row']['b']}) = {ratio['ratio']:.2f} "
                f"(95% paired bootstrap interval {ratio['low']:.2f} to {ratio['high']:.2f}, "
                f"{BOOTSTRAP_RESAMPLES} resamples of {ratio['n']} seeds, seed {BOOTSTRAP_SEED}); 1 = text "
                "pretraining helps as much as pretraining on bars, 0 = not at all."
            )
    return {
        "positive": positive["text"],
        "status": positive["status"],
        "negative": negative_controls(block),
        "ratio": ratio_text,
    }


def with_control_warning(headline: dict[str, str], status: str) -> dict[str, str]:
    """The headline, its "No"/"Cannot tell" warned when the positive control was not detected."""
    warned = status == NOT_DETECTED and headline["answer"] in (NO, CANNOT_TELL)
    return {**headline, "warning": WARNING if warned else ""}
