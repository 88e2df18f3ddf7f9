"""Entry point of the ``reference`` rule: the learned reference (a ridge on visible neighbours).

    python -m workflow_scripts.fit_reference --train-json '<canonical TrainConfig JSON>'
        --data-dir data/derived/{series}/fold{fold} --out results/reference/{series}/fold{fold}/summary.json

Fitted on the train split, λ chosen on validation, scored once on the test split with the
runs' own masks, units and strongest naive (``training.reference``). Seconds on a CPU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workflow_scripts.config.base import TrainConfig
from workflow_scripts.data.derived import load_derived
from workflow_scripts.jobs.io_utils import atomic_write_json
from workflow_scripts.jobs.logs import setup_logging
from workflow_scripts.training.device import limit_threads
from workflow_scripts.training.reference import fit_reference


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.fit_reference", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--train-json", required=True, help="the experiment's train: settings (canonical JSON)"
    )
    parser.add_argument("--data-dir", required=True, type=Path, help="preprocess output directory")
    parser.add_argument("--out", required=True, type=Path, help="summary JSON to write")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = setup_logging("workflow_scripts.fit_reference")
    try:
        cfg = TrainConfig.from_params(json.loads(args.train_json))
    except (ValueError, TypeError) as error:
        log.error("--train-json is not a valid train: section: %s", error)
        return 2
    log.info("%d CPU threads", limit_threads())
    dataset = load_derived(args.data_dir)
    try:
        summary = fit_reference(dataset, cfg, torch.device("cpu"))
    except ValueError as error:
        log.error("reference: %s", error)
        return 2
    # The unit's series and fold, as the runs record them: collect pools the references by them.
    summary["series"] = str(dataset.manifest["dataset"])
    summary["fold"] = int(dataset.manifest.get("fold", 0))
    atomic_write_json(args.out, summary)
    log.info(
        "ridge reference: validation skill %s, test skill %s (%d train cells); wrote %s",
        summary["val_skill"],
        summary["test_skill"],
        summary["train_cells"],
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
