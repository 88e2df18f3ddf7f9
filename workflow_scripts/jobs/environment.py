"""The environment that jobs inherit from the Snakemake process.

Rules run ``python -m workflow_scripts.<step>``. Two things must hold for that to work
however Snakemake was started (an activated venv, ``.venv/bin/snakemake`` called by
path, or a cluster job re-running the Snakefile):

* ``python`` is the interpreter that runs Snakemake, unless a conda env activated for
  the job puts its own interpreter first (activation prepends to PATH after this);
* ``workflow_scripts`` is imported from this checkout, not from another install.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping


def prepend_path(environ: MutableMapping[str, str], name: str, entry: str) -> None:
    """Put ``entry`` first in the path-list variable ``name``, without duplicating it."""
    parts = [part for part in environ.get(name, "").split(os.pathsep) if part and part != entry]
    environ[name] = os.pathsep.join([entry, *parts])


def prepare_job_environment(workflow_basedir: str, environ: MutableMapping[str, str] = os.environ) -> None:
    prepend_path(environ, "PYTHONPATH", os.path.abspath(workflow_basedir))
    prepend_path(environ, "PATH", os.path.dirname(sys.executable))
