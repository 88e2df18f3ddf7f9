"""Which source files of this package an entry point depends on.

Snakemake only reruns a job for a code change in files it knows about. Each rule
declares, as inputs, the package modules its entry point imports (directly or
transitively), found here by reading the import statements, so editing a helper
module reruns exactly the jobs whose code imports it, and nothing else.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

PACKAGE = "workflow_scripts"
ROOT = Path(__file__).resolve().parents[2]


def _module_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# Import statements at any indentation (lazy imports inside functions count too). A
# regex instead of ast: the DAG is built on every Snakemake start, and parsing every
# module's syntax tree there costs more than the rest of the planning. An import-like
# line inside a docstring can only add a dependency, never lose one.
_FROM_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)", re.MULTILINE
)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#]*)", re.MULTILINE)


def _names(clause: str) -> list[str]:
    """Imported names of an import clause, without aliases: 'a as b, c' -> ['a', 'c']."""
    parts = clause.strip().strip("()").replace("\\", " ").split(",")
    return [part.split()[0] for part in parts if part.split()]


@cache
def _imported_modules(path: Path, module: str) -> frozenset[str]:
    """Absolute names of the package modules ``path`` imports (relative imports resolved)."""
    text = path.read_text(encoding="utf-8")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for match in _IMPORT.finditer(text):
        found.update(_names(match.group(1)))
    for dots, name, clause in _FROM_IMPORT.findall(text):
        if dots:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (len(dots) - 1)]
            base = ".".join(anchor + ([name] if name else []))
        else:
            base = name
        found.add(base)
        # "from pkg import submodule" imports a module, not just a name.
        found.update(f"{base}.{alias}" for alias in _names(clause))
    return frozenset(name for name in found if name == PACKAGE or name.startswith(PACKAGE + "."))


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
