"""Entry point: prove a downloaded model is the complete, trained, expected checkpoint.

    python -m workflow_scripts.verify_model --model-dir resources/models/{model} \
        --out resources/models/{model}/verification.json

Runs the checks of ``workflow_scripts.models.verification`` (loading the weights with
``load_encoder``, exactly as training does). verification.json is written atomically
and only when every check passes; otherwise the job exits non-zero naming the failed
check, and a verification.json left from an earlier run is removed so that nothing
downstream can mistake the directory for verified.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from transformers.utils import logging as hf_logging

from workflow_scripts.jobs.cli import run_entry_point
from workflow_scripts.jobs.io_utils import atomic_write_json
from workflow_scripts.models.tokens import redact
from workflow_scripts.models.verification import VerificationError, verify_model_dir


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.verify_model",
        description="Verify a model directory written by download_model and write verification.json.",
    )
    parser.add_argument("--model-dir", required=True, type=Path, help="resources/models/{model}")
    parser.add_argument("--out", required=True, type=Path, help="verification.json to write on success")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hf_logging.disable_progress_bar()

    def refused(error: Exception) -> str:
        args.out.unlink(missing_ok=True)  # never a stale verification.json beside a failed check
        check = getattr(error, "check", "?")
        return f"verification FAILED at check '{check}': {redact(str(error))}"

    return run_entry_point("verify_model", lambda log: _verify(args, log), [(VerificationError, refused)])


def _verify(args: argparse.Namespace, log: logging.Logger) -> int:
    record = verify_model_dir(args.model_dir)
    atomic_write_json(args.out, record)
    log.info(
        "verification passed: %s (%s, %s), %s parameters (encoder %s), revision %s -> %s",
        record["name_or_path"],
        record["architecture"],
        record["dtype"],
        f"{record['params_full']:,}",
        f"{record['params_encoder']:,}",
        record["resolved_revision"],
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
