"""Skip or fail when a real system component (Slurm, chromium, graphviz) is not available.

A developer's machine may lack Debian's slurm, chromium or graphviz packages: the tests that
need them are then SKIPPED, and pytest's ``-ra`` (in pyproject's addopts) prints the reason
in the summary. CI installs those packages and sets ``STAGE1_REQUIRE_COMPONENTS=1``
(``.ci/run``): there "not available" is a FAILURE, so a package that vanished, or a cluster
that did not start, cannot turn the tests into green skips. ``SLURM_TEST_REQUIRED=1`` (the
older, Slurm-only switch) does the same for the Slurm tests.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ENV = "STAGE1_REQUIRE_COMPONENTS"
#: component name -> the older environment variable that also makes it required
LEGACY_ENV = {"slurm": "SLURM_TEST_REQUIRED"}


def _set(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def required(component: str) -> bool:
    """Whether a missing ``component`` must fail the run (CI) rather than skip its tests."""
    legacy = LEGACY_ENV.get(component)
    return _set(REQUIRE_ENV) or (legacy is not None and _set(legacy))


def unavailable(component: str, reason: str) -> NoReturn:
    """Skip the calling test, or fail it when ``component`` is required (see the module)."""
    if required(component):
        switches = " or ".join([REQUIRE_ENV, *([LEGACY_ENV[component]] if component in LEGACY_ENV else [])])
        pytest.fail(f"{component} is required ({switches} is set), but: {reason}", pytrace=False)
    pytest.skip(f"{component}: {reason}")
