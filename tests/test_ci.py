""".ci/run fails when a component it needs is missing, and the tests it runs cannot skip one.

The system-package step runs against a stub ``apt-get`` first on PATH (it logs its arguments
and refuses a package named ``no-such-package`` the way apt-get does, exit 100), so no real
package manager is touched. The component switch (tests/components.py) is checked by running
pytest on a one-test file in a subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from components import REQUIRE_ENV
from conftest import REPO

CI_RUN = REPO / ".ci" / "run"
DEFAULT_PACKAGES = "graphviz chromium slurmctld slurmd slurm-client munge"
STUB_APT = """#!/usr/bin/env bash
echo "$*" >> "{log}"
if [[ "$1" == update && -n "${{STUB_UPDATE_FAILS:-}}" ]]; then echo "E: network down" >&2; exit 100; fi
for arg in "$@"; do
  if [[ "$arg" == no-such-package ]]; then echo "E: Unable to locate package $arg" >&2; exit 100; fi
done
"""


def _stubbed(tmp_path: Path, commands: tuple[str, ...] = ()) -> tuple[dict[str, str], Path]:
    """An environment whose PATH starts with a stub apt-get (and stub ``commands``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    for name, text in {"apt-get": STUB_APT.format(log=log), **{c: "#!/bin/sh\n" for c in commands}}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_APT", "CI_REQUIRED", "STUB_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env, log


def _ci_packages_step(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", str(CI_RUN), "--system-packages-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(result.stdout, result.stderr)
    return result


def test_ci_fails_when_a_required_apt_package_is_unavailable(tmp_path: Path) -> None:
    env, log = _stubbed(tmp_path)
    env["CI_APT_PACKAGES"] = "graphviz no-such-package"
    result = _ci_packages_step(env)
    assert result.returncode == 100
    assert "apt-get install failed (exit 100) for: graphviz no-such-package" in result.stderr
    assert log.read_text().splitlines() == [
        "update -qq",
        "install -y -qq --no-install-recommends graphviz no-such-package",
    ]


def test_ci_fails_when_apt_get_update_fails(tmp_path: Path) -> None:
    env, log = _stubbed(tmp_path)
    env["STUB_UPDATE_FAILS"] = "1"
    result = _ci_packages_step(env)
    assert result.returncode == 100 and "apt-get update failed" in result.stderr
    assert log.read_text().splitlines() == ["update -qq"]  # never went on to install


def test_ci_fails_when_a_required_command_is_still_missing(tmp_path: Path) -> None:
    env, _ = _stubbed(tmp_path, commands=("dot",))
    env["CI_REQUIRED_COMMANDS"] = "dot no-such-command"
    result = _ci_packages_step(env)
    assert result.returncode == 1
    assert "still missing: no-such-command" in result.stderr and "dot" not in result.stderr


def test_ci_installs_the_default_packages_and_passes_when_all_is_there(tmp_path: Path) -> None:
    commands = ("dot", "chromium", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "munged", "munge")
    env, log = _stubbed(tmp_path, commands=commands)
    result = _ci_packages_step(env)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines()[-1] == f"install -y -qq --no-install-recommends {DEFAULT_PACKAGES}"


def test_ci_runs_the_tests_with_components_required() -> None:
    lines = CI_RUN.read_text().splitlines()
    export = lines.index(f"export {REQUIRE_ENV}=1")
    pytest_line = next(i for i, line in enumerate(lines) if line.startswith(".venv/bin/python -m pytest"))
    assert export < pytest_line
    assert not any("|| echo" in line or "|| true" in line for line in lines), "CI must not swallow errors"


ONE_TEST = """
from components import unavailable

def test_needs_it():
    unavailable("{component}", "it is gone")
"""


@pytest.mark.parametrize(
    ("component", "switch", "fails"),
    [
        ("chromium", None, False),
        ("chromium", REQUIRE_ENV, True),
        ("graphviz", REQUIRE_ENV, True),
        ("slurm", REQUIRE_ENV, True),
        ("slurm", "SLURM_TEST_REQUIRED", True),
        ("chromium", "SLURM_TEST_REQUIRED", False),
    ],
)
def test_a_missing_component_skips_with_its_reason_or_fails_when_required(
    tmp_path: Path, component: str, switch: str | None, fails: bool
) -> None:
    (tmp_path / "test_one.py").write_text(ONE_TEST.format(component=component))
    env = {k: v for k, v in os.environ.items() if k not in (REQUIRE_ENV, "SLURM_TEST_REQUIRED")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), env.get("PYTHONPATH", "")])
    if switch:
        env[switch] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "test_one.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if fails:
        assert result.returncode == 1, result.stdout
        assert f"FAILED test_one.py::test_needs_it - Failed: {component} is required" in result.stdout
        assert "it is gone" in result.stdout
    else:
        assert result.returncode == 0, result.stdout
        assert re.search(rf"SKIPPED \[1\] \S+: {component}: it is gone", result.stdout), result.stdout


def test_a_cluster_that_does_not_come_up_fails_even_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_slurm import check_start

    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    monkeypatch.delenv("SLURM_TEST_REQUIRED", raising=False)
    check_start(0, "cluster up")
    with pytest.raises(pytest.fail.Exception, match="did not start"):
        check_start(1, "timed out waiting for slurmctld")
    with pytest.raises(pytest.skip.Exception, match="missing binaries: slurmd"):
        check_start(77, "SKIP: missing binaries: slurmd")
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="missing binaries: slurmd"):
        check_start(77, "SKIP: missing binaries: slurmd")
