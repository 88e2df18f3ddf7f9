"""Entry point of the ``preprocess`` rule: raw bars to data/derived/{dataset}.

    python -m workflow_scripts.preprocess --data-json '<canonical DataConfig JSON>' \
        --fold F --out-dir data/derived/{series}/fold{F}

Bad input exits with status 1 and one paragraph naming the file, column and first
offending row; the output directory is then absent (it is built atomically).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workflow_scripts.data.pipeline import preprocess
from workflow_scripts.data.spec import data_config_from_params
from workflow_scripts.data.validation import DataValidationError
from workflow_scripts.jobs.logs import setup_logging


def build_parser() -> argparse.ArgumentParser:
    """The CLI the Snakemake rule calls."""
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.preprocess",
        description="Turn raw bars into aligned, split, train-normalised arrays (docs/data.md).",
    )
    parser.add_argument("--data-json", required=True, help="canonical JSON of the data: config")
    parser.add_argument(
        "--fold", type=int, default=0, help="which of data.folds rolling-origin folds to build (0 = oldest)"
    )
    parser.add_argument("--out-dir", required=True, type=Path, help="data/derived/{series}/fold{fold}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the stage; 0 on success, 1 on bad input or configuration."""
    args = build_parser().parse_args(argv)
    log = setup_logging("workflow_scripts.preprocess")
    try:
        params = json.loads(args.data_json)
        if not isinstance(params, dict):
            raise DataValidationError("--data-json must be a JSON object (the data: section)")
        spec = data_config_from_params(params)
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
        log.error("invalid --data-json; nothing written to %s", args.out_dir)
        print(f"error: --data-json: invalid data configuration: {exc}", file=sys.stderr)
        return 1
    log.info("preprocess %s (%s, %s) -> %s", spec.path, spec.kind, ",".join(spec.timeframes), args.out_dir)
    try:
        manifest = preprocess(spec, args.out_dir, args.fold)
    except DataValidationError as exc:
        log.error("bad input in series %s; nothing written to %s", spec.name, args.out_dir)
        print(f"error: series {spec.name}: {exc}", file=sys.stderr)
        return 1
    log.info("done: %s samples", manifest["windows"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
