"""Best checkpoint (safetensors) and crash-safe resume state.

Resume state lives in ``--resume-dir``, outside the rule's declared outputs: Snakemake
deletes the outputs of an incomplete job before rerunning it, and would take the state
with them. Each completed epoch is committed as a directory ``epoch-NNNN`` written under
a temporary name and renamed into place, with a ``manifest.json`` holding the sha256 of
every file and the run's resume key. A state whose checksums do not match (a truncated
file, a disk that filled up) is reported and discarded, never loaded; a state with
another key (a changed config, model or dataset) is never resumed.

Nothing here unpickles: weights are safetensors, and the optimizer state is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from workflow_scripts.jobs.io_utils import atomic_path, sha256_file

LOG = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
BEST_FILE = "best.safetensors"
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
_EPOCH_DIR = re.compile(r"^epoch-(\d{4,})$")


def cpu_copy(value: Any) -> Any:
    """Deep copy with every tensor cloned to the CPU, so later in-place updates cannot reach it."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, Mapping):
        return {key: cpu_copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(cpu_copy(item) for item in value)
    return value


def model_tensors(model: nn.Module, only: set[int] | None = None) -> dict[str, torch.Tensor]:
    """CPU copies of the model's state dict, each tensor once (tied weights share storage).

    With ``only`` (parameter ids), parameters outside it are left out; buffers are kept.
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        if only is not None and isinstance(tensor, nn.Parameter) and id(tensor) not in only:
            continue
        out[name] = tensor.detach().to("cpu", copy=True).contiguous()
    return out


def save_weights(
    path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Write a safetensors file atomically."""
    with atomic_path(path) as tmp:
        save_file(dict(tensors), str(tmp), metadata=dict(metadata or {}))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def restore_model(model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy ``tensors`` into ``model`` by name; names the model lacks are an error."""
    state = model.state_dict()
    unknown = sorted(set(tensors) - set(state))
    if unknown:
        raise KeyError(f"checkpoint has tensors the model lacks: {unknown[:5]}")
    with torch.no_grad():
        for name, value in tensors.items():
            state[name].copy_(value)


@dataclass
class ResumeState:
    """One committed epoch: JSON state, trained tensors, optimizer state, best weights."""

    epoch: int
    state: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    best: dict[str, torch.Tensor] | None


class ResumeStore:
    """Commits and loads resume state under ``directory`` for one resume ``key``."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory = Path(directory)
        self.key = key
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._best_sha: str | None = None

    # ------------------------------------------------------------------ load

    def load(self) -> ResumeState | None:
        """The latest committed state, or None (after a warning if it was unusable)."""
        if not self.directory.is_dir():
            return None
        self._remove_strays()  # an epoch whose commit was interrupted
        committed = self._committed()
        if not committed:
            return None
        epoch, path = committed[-1]
        try:
            manifest = json.loads((path / MANIFEST_FILE).read_text())
        except (OSError, ValueError) as error:
            return self._discard(f"its manifest is unreadable ({error})")
        if manifest.get("key") != self.key:
            LOG.info(
                "resume state in %s belongs to a different configuration, model or dataset; "
                "starting from scratch",
                self.directory,
            )
            self.clear()
            return None
        files = manifest.get("files")
        if not isinstance(files, dict) or set(files) != {MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, BEST_FILE}:
            return self._discard("its manifest does not list the expected files")
        for name, expected in sorted(files.items()):
            if not (path / name).is_file():
                return self._discard(f"{name} is missing")
            actual = sha256_file(path / name)
            if actual != expected:
                return self._discard(
                    f"{name} fails its checksum (sha256 {actual[:12]}, expected {expected[:12]})"
                )
        try:
            state = json.loads((path / STATE_FILE).read_text())
            result = ResumeState(
                epoch=epoch,
                state=state,
                model=load_weights(path / MODEL_FILE),
                optimizer=torch.load(path / OPTIMIZER_FILE, map_location="cpu", weights_only=True),
                best=load_weights(path / BEST_FILE),
            )
        except Exception as error:  # any failure to read means the state is unusable
            return self._discard(f"it could not be read ({type(error).__name__}: {error})")
        if state.get("epoch") != epoch:
            return self._discard(f"state.json says epoch {state.get('epoch')}, its directory says {epoch}")
        self._best_sha = files[BEST_FILE]
        return result

    def _discard(self, reason: str) -> ResumeState | None:
        """Warn, delete the unusable state and return None (so the run starts from scratch)."""
        LOG.warning(
            "resume state in %s is corrupted: %s. It is discarded and the run starts from scratch.",
            self.directory,
            reason,
        )
        self.clear()
        return None

    # ------------------------------------------------------------------ save

    def save_async(self, epoch: int, *commit: Any) -> None:
        """Commit ``epoch`` in a background thread (the next epoch trains meanwhile).

        ``commit``: ``save``'s (state, model, optimizer, best). Every argument must already
        be a CPU copy. ``best`` None means "unchanged since the previous commit", which is
        then hard-linked instead of rewritten.
        """
        state, model, optimizer, best = commit
        self.wait()
        self._thread = threading.Thread(
            target=self._save_guarded,
            args=(epoch, dict(state), dict(model), dict(optimizer), best),
            name=f"resume-save-{epoch}",
        )
        self._thread.start()

    def wait(self) -> None:
        """Block until the pending commit is done; re-raise its error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"saving resume state in {self.directory} failed: {error}") from error

    def _save_guarded(self, *args: Any) -> None:
        try:
            self.save(*args)
        except BaseException as error:  # handed to the main thread by wait()
            self._error = error

    def save(
        self,
        epoch: int,
        state: Mapping[str, Any],
        model: Mapping[str, torch.Tensor],
        optimizer: Mapping[str, Any],
        best: Mapping[str, torch.Tensor] | None,
    ) -> None:
        """Commit ``epoch`` now (see ``save_async``)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        previous = self._committed()
        tmp = Path(tempfile.mkdtemp(prefix=f".epoch-{epoch:04d}.", suffix=".tmp", dir=self.directory))
        try:
            save_file(dict(model), str(tmp / MODEL_FILE))
            torch.save(dict(optimizer), tmp / OPTIMIZER_FILE)
            (tmp / STATE_FILE).write_text(
                json.dumps({**state, "epoch": epoch}, sort_keys=True, allow_nan=False)
            )
            best_sha = self._write_best(tmp, best, previous)
            files = {name: sha256_file(tmp / name) for name in (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE)}
            files[BEST_FILE] = best_sha
            manifest = {"key": self.key, "epoch": epoch, "files": files}
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, sort_keys=True, indent=2))
            for name in (*files, MANIFEST_FILE):
                with open(tmp / name, "rb") as handle:
                    os.fsync(handle.fileno())
            target = self.directory / f"epoch-{epoch:04d}"
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._best_sha = best_sha
        for old_epoch, path in previous:
            if old_epoch != epoch:
                shutil.rmtree(path, ignore_errors=True)

    def _write_best(
        self, tmp: Path, best: Mapping[str, torch.Tensor] | None, previous: list[tuple[int, Path]]
    ) -> str:
        if best is None and previous and self._best_sha is not None:
            source = previous[-1][1] / BEST_FILE
            try:
                os.link(source, tmp / BEST_FILE)
            except OSError:
                shutil.copyfile(source, tmp / BEST_FILE)
            return self._best_sha
        if best is None:
            raise ValueError("the first resume commit needs the best weights")
        save_file(dict(best), str(tmp / BEST_FILE))
        return sha256_file(tmp / BEST_FILE)

    # ------------------------------------------------------------------ housekeeping

    def clear(self) -> None:
        """Remove every committed state and stray temporary directory."""
        self._best_sha = None
        if self.directory.is_dir():
            for child in self.directory.iterdir():
                if _EPOCH_DIR.match(child.name) or child.name.startswith(".epoch-"):
                    shutil.rmtree(child, ignore_errors=True)

    def _committed(self) -> list[tuple[int, Path]]:
        found = []
        for child in self.directory.iterdir() if self.directory.is_dir() else []:
            match = _EPOCH_DIR.match(child.name)
            if match and child.is_dir():
                found.append((int(match.group(1)), child))
        return sorted(found)

    def _remove_strays(self) -> None:
        for child in self.directory.iterdir():
            if child.name.startswith(".epoch-"):
                shutil.rmtree(child, ignore_errors=True)
