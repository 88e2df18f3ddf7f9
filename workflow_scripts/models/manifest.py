"""The download manifest: what was fetched, from where, at which commit, with which hashes.

``download_model`` writes it last, so its presence means the snapshot is complete;
``verify_model`` re-hashes every listed file against it, which is how a download that
was truncated or altered afterwards is caught before any training starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workflow_scripts.jobs.io_utils import atomic_write_json, sha256_file

MANIFEST_FILE = "manifest.json"
MANIFEST_KEYS = ("name_or_path", "requested_revision", "resolved_revision", "source", "files")
SOURCES = ("hub", "local", "package", "pretrain")  # pretrain: workflow_scripts.pretrain


class ManifestError(ValueError):
    """manifest.json is missing, malformed, or the files no longer match it."""


def file_record(root: Path, relative: str) -> dict[str, Any]:
    """``{"path", "sha256", "size"}`` of ``root / relative`` (path kept "/"-separated and relative)."""
    path = root / relative
    return {"path": relative, "sha256": sha256_file(path), "size": path.stat().st_size}


def file_records(root: Path, names: Iterable[str]) -> list[dict[str, Any]]:
    """Records for ``names``, sorted by path so the manifest is byte-stable."""
    return [file_record(root, name) for name in sorted(set(names))]


def build_manifest(
    *,
    name_or_path: str,
    requested_revision: str | None,
    resolved_revision: str | None,
    source: str,
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest as DESIGN.md fixes it; ``source`` is one of hub/local/package."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    return {
        "name_or_path": name_or_path,
        "requested_revision": requested_revision,
        "resolved_revision": resolved_revision,
        "source": source,
        "files": files,
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    """Write ``directory/manifest.json`` atomically and return its path."""
    path = directory / MANIFEST_FILE
    atomic_write_json(path, manifest)
    return path


def read_manifest(directory: Path) -> dict[str, Any]:
    """Load and shape-check ``directory/manifest.json``; the error names the file and the key."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(
            f"{path} is missing: {directory} was not produced by download_model (run "
            f"python -m workflow_scripts.download_model --name-or-path ... --out-dir {directory})"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path} is not valid JSON ({error})") from error
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path} must hold a JSON object")
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise ManifestError(f"{path} lacks key(s) {', '.join(missing)}")
    if manifest["source"] not in SOURCES:
        raise ManifestError(f"{path}: source must be one of {SOURCES}, not {manifest['source']!r}")
    files = manifest["files"]
    if not isinstance(files, list) or not all(
        isinstance(item, dict) and {"path", "sha256", "size"} <= item.keys() for item in files
    ):
        raise ManifestError(f"{path}: 'files' must be a list of {{path, sha256, size}} objects")
    return manifest


def mismatched_files(directory: Path, records: Iterable[dict[str, Any]]) -> list[str]:
    """Human-readable problems for every record whose file is missing or differs (size, then sha256)."""
    problems = []
    for record in records:
        path = directory / record["path"]
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        size = path.stat().st_size
        if size != record["size"]:
            problems.append(f"{path} has {size} bytes, expected {record['size']} (truncated or altered)")
            continue
        digest = sha256_file(path)
        if digest != record["sha256"]:
            problems.append(f"{path} has sha256 {digest}, expected {record['sha256']} (altered)")
    return problems
