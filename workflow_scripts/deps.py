"""Which source files of this package an entry point depends on.

Snakemake only reruns a job for a code change in files it knows about. Each rule
declares, as inputs, the package modules its entry point imports (directly or
transitively), found here by reading the import statements, so editing a helper
module reruns exactly the jobs whose code imports it, and nothing else.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "workflow_scripts"
ROOT = Path(__file__).resolve().parent.parent


def _module_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    """Absolute names of the package modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            # "from pkg import submodule" imports a module, not just a name.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


@cache
def local_module_files(entry: str, root: Path = ROOT) -> tuple[str, ...]:
    """Sorted paths (relative to ``root``) of ``entry`` and every package module it reaches.

    Parent packages' ``__init__.py`` files are included because importing a submodule
    executes them.
    """
    seen: dict[str, Path] = {}
    pending = [entry]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        path = _module_file(module, root)
        if path is None:
            continue
        seen[module] = path
        parts = module.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        pending.extend(_imported_modules(path, module))
    return tuple(sorted(str(path.relative_to(root)) for path in seen.values()))
