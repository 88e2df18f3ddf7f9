"""Where the numbers came from: code, model, data, configuration and environment.

A result is only as trustworthy as one's ability to rerun it, so the report records the
exact model revision and weight hashes, the data hash, the configuration hash, the
package versions and git commit, and the literal commands that reproduce each run.
"""

from __future__ import annotations

import importlib.metadata
import platform
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from workflow_scripts.config.base import DEFAULT_MODEL, model_slug
from workflow_scripts.jobs.io_utils import canonical_json, config_hash
from workflow_scripts.models.lookahead import effective_cutoff
from workflow_scripts.reporting.planned import planned_units
from workflow_scripts.reporting.results import StudyResult
from workflow_scripts.reporting.units import Unit

PACKAGES = (
    "torch",
    "transformers",
    "safetensors",
    "numpy",
    "pandas",
    "scipy",
    "matplotlib",
    "jinja2",
    "snakemake",
    "tensorboard",
)
UNKNOWN = "unknown"


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each package (``not installed`` rather than an error)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_state(cwd: str | Path = ".") -> dict[str, Any]:
    """Commit of the working tree and whether it had uncommitted changes.

    Outside a git checkout (an unpacked archive, a container) the commit is "unknown";
    that must not stop a report from being written.
    """

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {"commit": UNKNOWN, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def model_provenance(verification: Mapping[str, Any]) -> dict[str, Any]:
    """Model identity from verification.json: source, resolved revision, weight hashes."""
    weights = [
        {"path": str(w.get("path", "")), "sha256": str(w.get("sha256", UNKNOWN)), "size": w.get("size")}
        for w in verification.get("weights") or []
        if isinstance(w, Mapping)
    ]
    return {
        "name_or_path": verification.get("name_or_path", UNKNOWN),
        "resolved_revision": verification.get("resolved_revision")
        or "not recorded (local or packaged model; see the weight hashes)",
        "architecture": verification.get("architecture", UNKNOWN),
        "model_type": verification.get("model_type", UNKNOWN),
        "dtype": verification.get("dtype", UNKNOWN),
        "params_full": verification.get("params_full"),
        "checks": dict(verification.get("checks") or {}),
        "weights": weights,
    }


def find_hashes(value: Any, prefix: str = "") -> list[dict[str, str]]:
    """Every ``*sha256*`` entry of a (nested) manifest, with its dotted key path.

    The data manifest's layout belongs to the preprocess stage; searching by key name
    keeps the report correct whatever nesting that stage chooses.
    """
    found: list[dict[str, str]] = []
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            item = value[key]
            if "sha256" in str(key).lower() and isinstance(item, str):
                found.append({"key": path, "sha256": item})
            else:
                found.extend(find_hashes(item, path))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(find_hashes(item, f"{prefix}[{index}]"))
    return found


def run_hashes(study: StudyResult) -> dict[str, list[str]]:
    """The distinct config/model/data hashes recorded by the runs themselves.

    More than one model or data hash across runs means the runs did not see the same
    inputs, which a reader must know before comparing them.
    """
    hashes: dict[str, set[str]] = {"config_hash": set(), "model_hash": set(), "data_hash": set()}
    for arm in study.variants.values():
        for run in arm.runs:
            for key, seen in hashes.items():
                if value := getattr(run, key):
                    seen.add(str(value))
    return {key: sorted(values) for key, values in hashes.items()}


def arm_model_dir(experiment: Mapping[str, Any], variant: str, model_dir: str) -> tuple[str, list[str]]:
    """The model directory an arm trains from (``model_dir``, the study's, unless the arm names
    a model under ``models:``) and its flags: the study model's embedding scale for another
    model's arm, and its cut-off with the model's name (the test data dirs follow)."""
    name = str(((experiment.get("variants") or {}).get(variant) or {}).get("model", DEFAULT_MODEL))
    spec = (experiment.get("models") or {}).get(name) if name != DEFAULT_MODEL else experiment.get("model")
    if not spec:
        return model_dir, []
    directory = (
        model_dir
        if name == DEFAULT_MODEL
        else f"resources/models/{model_slug(spec['name_or_path'], spec.get('revision'))}"
    )
    cutoff = effective_cutoff(str(spec.get("name_or_path", "")), spec.get("pretraining_cutoff"))
    scale = [] if directory == model_dir else ["--scale-model-dir", model_dir]
    return directory, scale + (
        [] if cutoff is None else ["--pretraining-cutoff", cutoff, "--cutoff-model", name]
    )


def train_command(
    variant: str, params: Mapping[str, Any], unit: Unit, model_dir: str, lookahead: Sequence[str] = ()
) -> str:
    """The exact ``python -m workflow_scripts.train`` invocation the train rule runs (``lookahead``:
    the cut-off flags and --test-data-dirs, for an arm whose model has a known cut-off)."""
    where = f"{unit.series}/fold{unit.fold}"
    run = f"{where}/{variant}/seed{unit.seed}"
    parts = [
        "python", "-m", "workflow_scripts.train",
        "--variant-json", canonical_json(dict(params)),
        "--seed", str(unit.seed),
        "--data-dir", f"data/derived/{where}",
        "--model-dir", model_dir,
        "--out-dir", f"results/runs/{run}",
        "--tensorboard-dir", f"logs/tensorboard/{run}",
        "--resume-dir", f"results/resume/{run}",
        *lookahead,
    ]  # fmt: skip
    return shlex.join(parts)


def _command(label: str, command: str) -> dict[str, str]:
    return {"label": label, "command": command}


def reproduce_commands(
    experiment: Mapping[str, Any],
    commit: str,
    model_dir: str,
    variants: Sequence[str],
) -> list[dict[str, str]]:
    """Commands that rebuild these results, from the whole workflow down to one run."""
    snakemake = "snakemake --cores 4 --resources gpu=1"
    commands = []
    if commit != UNKNOWN:
        commands.append(_command("check out the code that produced this report", f"git checkout {commit}"))
    commands.append(_command("rerun the whole workflow with the same config file", snakemake))
    specs = experiment.get("variants") or {}
    planned = [(v, unit) for v in variants if v in specs for unit in planned_units(experiment)]
    for variant, unit in planned:
        target = f"results/runs/{unit.series}/fold{unit.fold}/{variant}/seed{unit.seed}/summary.json"
        commands.append(
            _command(f"force-rerun {variant} {unit.label} through Snakemake", f"{snakemake} --force {target}")
        )
    # In the rule's order: the run's own fold first, then every series' folds (rules/common.smk).
    every_dir = list(
        dict.fromkeys(f"data/derived/{u.series}/fold{u.fold}" for u in planned_units(experiment))
    )
    for variant, unit in planned:
        directory, cutoff = arm_model_dir(experiment, variant, model_dir)
        own = f"data/derived/{unit.series}/fold{unit.fold}"
        dirs = ["--test-data-dirs", own, *(d for d in every_dir if d != own)]
        lookahead = [*cutoff, *(dirs if "--pretraining-cutoff" in cutoff else [])]
        commands.append(
            _command(
                f"train {variant} {unit.label} directly (what the train rule runs)",
                train_command(variant, specs[variant], unit, directory, lookahead),
            )
        )
    commands.append(
        _command("compare the runs' logs in TensorBoard", "tensorboard --logdir logs/tensorboard")
    )
    return commands


def provenance(
    experiment: Mapping[str, Any],
    verification: Mapping[str, Any],
    manifests: Sequence[Mapping[str, Any]],
    study: StudyResult,
    *,
    git: Mapping[str, Any],
    versions: Mapping[str, str],
    data_dirs: Sequence[str],
    model_dir: str,
    variants: Sequence[str],
) -> dict[str, Any]:
    """Everything the provenance section prints, as plain data (git and versions passed in,
    so this stays pure and testable). ``manifests`` and ``data_dirs``: every series' folds."""
    return {
        "git_commit": git.get("commit", UNKNOWN),
        "git_dirty": git.get("dirty"),
        "config_hash": config_hash(dict(experiment)),
        "model": model_provenance(verification),
        "data_hashes": [
            {**entry, "key": f"{directory}: {entry['key']}"}
            for directory, manifest in zip(data_dirs, manifests, strict=True)
            for entry in find_hashes(manifest)
        ],
        "data_dir": ", ".join(data_dirs),
        "model_dir": model_dir,
        "run_hashes": run_hashes(study),
        "versions": dict(versions),
        "experiment_json": canonical_json(dict(experiment)),
        "commands": reproduce_commands(experiment, git.get("commit", UNKNOWN), model_dir, variants),
    }
