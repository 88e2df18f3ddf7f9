"""Entry point of the ``select_lr`` rule: one arm's learning rates, chosen on validation only.

    python -m workflow_scripts.select_lr --variant-json '<canonical VariantConfig JSON>'
        --summaries results/tune/{variant}/{point}/seed{seed}/summary.json ...
        --out results/tune/{variant}/selected.json

Each summary is one tuning run (rule ``tune_train``: the arm at ``point``'s multiplier of
its configured rates, one tuning seed, no test pass). The kept multiplier is the one
with the lowest mean validation loss at the end of the tuning budget (the last epoch's
``final.val_loss``; ties go to the earlier grid point). Only validation numbers are
read: a summary holding a test result is refused, so a rate can never be chosen on test.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow_scripts.config.tune import RATE_KEYS, point_multiplier
from workflow_scripts.jobs.cli import run_entry_point
from workflow_scripts.jobs.io_utils import atomic_write_json

CRITERION = "lowest mean validation loss at the end of the tuning budget"


class SelectionError(ValueError):
    """A tuning summary is missing, malformed, or holds a test result; the message names it."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.select_lr", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--variant-json", required=True, help="the arm's canonical VariantConfig JSON")
    parser.add_argument(
        "--summaries", required=True, nargs="+", type=Path, help="tune_train summary.json files"
    )
    parser.add_argument("--out", required=True, type=Path, help="selected.json")
    return parser.parse_args(argv)


def final_val_loss(summary: Mapping[str, Any], where: Path) -> float:
    """The run's validation loss at the end of its budget; a test result is refused."""
    if summary.get("test") is not None:
        raise SelectionError(
            f"{where}: a tuning run with a test result (key 'test'); tuning must not see test"
        )
    try:
        value = float(summary["final"]["val_loss"])
    except (KeyError, TypeError, ValueError) as error:
        raise SelectionError(f"{where}: no final.val_loss ({error})") from error
    if not math.isfinite(value):
        raise SelectionError(f"{where}: final.val_loss is {value}")
    return value


def choose(losses: Mapping[str, Mapping[int, float]]) -> str:
    """The grid point (in the mapping's order) with the lowest mean loss over its tuning seeds."""
    means = {point: sum(by_seed.values()) / len(by_seed) for point, by_seed in losses.items() if by_seed}
    if not means:
        raise SelectionError("no tuning run to choose from")
    return min(means, key=lambda point: means[point])  # min keeps the first of equal means


def select(variant: Mapping[str, Any], runs: list[tuple[str, int, float]]) -> dict[str, Any]:
    """selected.json's content from (point, tuning seed, final val loss) of each tuning run."""
    losses: dict[str, dict[int, float]] = {}
    for point, seed, loss in sorted(runs, key=lambda run: (point_multiplier(run[0]), run[1])):
        losses.setdefault(point, {})[seed] = loss
    seeds = {tuple(sorted(by_seed)) for by_seed in losses.values()}
    if len(seeds) != 1:
        raise SelectionError(f"the grid points were tuned on different seeds: {sorted(seeds)}")
    chosen = choose(losses)
    train = variant["train"]
    grid = [
        {
            "point": point,
            "multiplier": point_multiplier(point),
            **{key: train[key] * point_multiplier(point) for key in RATE_KEYS},
            "val_losses": {str(seed): loss for seed, loss in by_seed.items()},
            "mean_val_loss": sum(by_seed.values()) / len(by_seed),
        }
        for point, by_seed in losses.items()
    ]
    best = next(row for row in grid if row["point"] == chosen)
    return {
        "variant": variant["name"],
        "criterion": CRITERION,
        "point": chosen,
        "multiplier": best["multiplier"],
        **{key: best[key] for key in RATE_KEYS},
        "tuning_seeds": sorted(next(iter(seeds))),
        "tuning_steps": int(train["epochs"]) * int(train["steps_per_epoch"]),
        "grid": grid,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_entry_point(
        "workflow_scripts.select_lr",
        lambda log: _select(args, log),
        [((SelectionError, KeyError, ValueError), lambda error: f"select_lr failed: {error}")],
    )


def _select(args: argparse.Namespace, log: logging.Logger) -> int:
    variant = json.loads(args.variant_json)
    runs = []
    for path in args.summaries:
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SelectionError(f"{path}: not a readable summary.json ({error})") from error
        runs.append((path.parent.parent.name, int(summary["seed"]), final_val_loss(summary, path)))
    selected = select(variant, runs)
    atomic_write_json(args.out, selected)
    log.info(
        "%s: %s (mean val_loss %s)",
        selected["variant"],
        selected["point"],
        {row["point"]: round(row["mean_val_loss"], 6) for row in selected["grid"]},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
