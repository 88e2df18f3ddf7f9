"""Unit tests of the backbone helpers: atomic writes, hashing, dependency tracking, job env."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest

from workflow_scripts.jobs import io_utils
from workflow_scripts.jobs.deps import local_module_files
from workflow_scripts.jobs.environment import prepare_job_environment, prepend_path


def test_atomic_write_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    io_utils.atomic_write_json(target, {"b": 1, "a": 2})
    assert json.loads(target.read_text()) == {"a": 2, "b": 1}
    with pytest.raises(ValueError):
        io_utils.atomic_write_json(target, {"x": float("nan")})
    assert json.loads(target.read_text()) == {"a": 2, "b": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_disk_full_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        io_utils.atomic_write_text(tmp_path / "metrics.csv", "epoch,loss\n1,0.5\n")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_is_all_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "derived"
    with pytest.raises(RuntimeError), io_utils.atomic_directory(target) as tmp:
        (tmp / "half.npy").write_bytes(b"x")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with io_utils.atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with io_utils.atomic_directory(target) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["derived"]


def test_sha256_and_canonical_json(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights" * 1000)
    assert io_utils.sha256_file(path) == hashlib.sha256(b"weights" * 1000).hexdigest()
    assert io_utils.canonical_json({"b": [1, 2], "a": None}) == '{"a":null,"b":[1,2]}'
    assert io_utils.config_hash({"a": 1, "b": 2}) == io_utils.config_hash({"b": 2, "a": 1})


def test_local_module_files_follows_imports_transitively(tmp_path: Path) -> None:
    package = tmp_path / "workflow_scripts"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "entry.py").write_text("import os\nfrom workflow_scripts.sub import helper\n")
    (package / "sub" / "helper.py").write_text(
        "from . import leaf\nfrom .leaf import thing\n\ndef lazy():\n    from .. import late as l\n"
    )
    (package / "sub" / "leaf.py").write_text("from workflow_scripts.sub import (\n    deep,  # comment\n)\n")
    (package / "sub" / "deep.py").write_text("import workflow_scripts.aliased as a, json\n")
    (package / "late.py").write_text("")
    (package / "aliased.py").write_text("")
    (package / "unused.py").write_text("")
    files = local_module_files("workflow_scripts.entry", tmp_path)
    assert files == (
        "workflow_scripts/__init__.py",
        "workflow_scripts/aliased.py",
        "workflow_scripts/entry.py",
        "workflow_scripts/late.py",
        "workflow_scripts/sub/__init__.py",
        "workflow_scripts/sub/deep.py",
        "workflow_scripts/sub/helper.py",
        "workflow_scripts/sub/leaf.py",
    )


def test_entry_points_track_their_library_modules() -> None:
    train = local_module_files("workflow_scripts.train")
    report = local_module_files("workflow_scripts.report")
    assert "workflow_scripts/training/running_scores.py" in train
    assert "workflow_scripts/reporting/plots.py" in report
    assert "workflow_scripts/reporting/plots.py" not in train


def test_job_environment_puts_this_checkout_and_interpreter_first() -> None:
    env = {"PATH": "/usr/bin", "PYTHONPATH": "/elsewhere"}
    prepare_job_environment("/checkout", env)
    prepare_job_environment("/checkout", env)
    assert env["PYTHONPATH"] == os.pathsep.join(["/checkout", "/elsewhere"])
    assert env["PATH"].split(os.pathsep)[1:] == ["/usr/bin"]
    fresh: dict[str, str] = {}
    prepend_path(fresh, "PYTHONPATH", "/a")
    assert fresh["PYTHONPATH"] == "/a"
