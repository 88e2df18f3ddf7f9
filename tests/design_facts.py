"""The code facts docs/DESIGN.md lists, each compared with the code both ways.

Why: DESIGN.md calls itself a contract, and hand-kept lists of fields, flags, columns and
variants drift (issue 29 found it stale in all four). So every list of code facts in it
has a fixed, parseable form - a markdown table whose first header cell names what it
lists, or, for the command lines, the fenced block of ``python -m workflow_scripts.<entry>``
lines - and each entry of :func:`checks` reads one kind of fact from the code and reports,
by name, what the document lacks and what it lists that the code no longer has.

Adding a kind of fact is one more entry in :func:`checks`: an existing class (for example
``DataclassTable(SomeResult)`` for the fields of one more dataclass) or a small new one
with a ``title`` (the table it owns, or None) and ``problems(doc) -> list[str]``. A table
that no check owns is itself reported, so every table in DESIGN.md is a checked one.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
import re
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, Union, get_args, get_origin, get_type_hints

import yaml

import workflow_scripts
from workflow_scripts.reporting.stats import SummaryStats
from workflow_scripts.training.run_contract import METRIC_COLUMNS

#: The modules whose dataclasses are the result files: a run's summary.json, results/summary.json.
RUN_RESULT = "workflow_scripts.training.run_contract"
STUDY_RESULT = (
    "workflow_scripts.reporting.units",
    "workflow_scripts.reporting.results",
    "workflow_scripts.reporting.contrast_results",
    "workflow_scripts.reporting.random_effects",
)

REPO = Path(__file__).resolve().parents[1]
DESIGN = REPO / "docs" / "DESIGN.md"
CONFIG_DIR = REPO / "config"
#: The studies the shipped configs define: config/config.yaml (the Snakefile's configfile)
#: with the ``--configfile`` overlays of each, merged as Snakemake merges them. A shipped
#: YAML file in none of them is reported, so a new config cannot bring variants unseen.
STUDIES: Mapping[str, tuple[str, ...]] = {
    "config": ("config.yaml",),
    "smoke": ("config.yaml", "smoke.yaml"),
    "smoke_models": ("config.yaml", "smoke.yaml", "smoke_models.yaml"),
    "pretrainings": ("config.yaml", "pretrainings.yaml"),
    "offline": ("config.yaml", "offline.yaml"),
    "offline_tuned": ("config.yaml", "offline.yaml", "offline_tuned.yaml"),
}
RUNS_IN = "runs in"  # the variant table's column of the studies that enable a variant
REQUIRED = "required"

Table = list[dict[str, str]]


class Check(Protocol):
    """One kind of code fact: ``title`` names the table it owns (None: no table)."""

    @property
    def title(self) -> str | None: ...

    def problems(self, doc: str) -> list[str]: ...


# --------------------------------------------------------------------------- the document


def plain(cell: str) -> str:
    """A cell's text without the backticks that format it."""
    return cell.replace("`", "").strip()


def split_row(line: str) -> list[str]:
    """A table row's cells; ``\\|`` is a pipe inside a cell, as in GitHub's markdown."""
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [cell.replace("\\|", "|").strip() for cell in cells]


def tables(doc: str) -> list[tuple[str, Table]]:
    """Every markdown table in ``doc`` as (title, rows); the title is its first header cell."""
    found: list[tuple[str, Table]] = []
    lines = doc.splitlines()
    index = 0
    while index < len(lines):
        if not (lines[index].startswith("|") and index + 1 < len(lines) and "---" in lines[index + 1]):
            index += 1
            continue
        header = [plain(cell) for cell in split_row(lines[index])]
        rows: Table = []
        index += 2
        while index < len(lines) and lines[index].startswith("|"):
            rows.append(dict(zip(header, split_row(lines[index]), strict=False)))
            index += 1
        found.append((header[0], rows))
    return found


def table(doc: str, title: str) -> Table | None:
    """The one table titled ``title``, or None when the document has none."""
    matches = [rows for found, rows in tables(doc) if found == title]
    return matches[0] if matches else None


def compare(what: str, in_code: Sequence[str], in_doc: Sequence[str]) -> list[str]:
    """Both directions of one list: in the code but not documented, documented but gone."""
    problems = [
        f"{what} {name!r}: in the code, missing from DESIGN.md" for name in in_code if name not in in_doc
    ]
    problems += [f"{what} {name!r}: in DESIGN.md, not in the code" for name in in_doc if name not in in_code]
    return problems


def missing_table(title: str) -> list[str]:
    return [f"DESIGN.md has no table titled {title!r} (its first header cell)"]


# --------------------------------------------------------------------------- dataclasses


def dataclasses_in(package: str) -> list[type]:
    """Every dataclass defined in ``package``'s modules, so a new one needs a table too."""
    root = importlib.import_module(package)
    found: list[type] = []
    for info in pkgutil.iter_modules(root.__path__, prefix=f"{package}."):
        found += dataclasses_of(info.name)
    return found


def dataclasses_of(module_name: str) -> list[type]:
    """Every dataclass defined in one module (a result file's types: a new one needs a table)."""
    module = importlib.import_module(module_name)
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == module.__name__
    ]


def allowed_values(hint: Any) -> list[str]:
    """The values a ``Literal`` annotation allows, inside unions too; [] for any other type."""
    if get_origin(hint) is Literal:
        return [str(value) for value in get_args(hint)]
    if get_origin(hint) in (Union, types.UnionType):
        return [value for arg in get_args(hint) for value in allowed_values(arg)]
    return []


def documented_default(cell: str, known: Mapping[str, type]) -> object:
    """A default cell's value: ``required``, a Python literal, or ``SomeConfig()``."""
    text = plain(cell)
    if text == REQUIRED:
        return REQUIRED
    factory = re.fullmatch(r"(\w+)\(\)", text)
    if factory and factory.group(1) in known:
        return known[factory.group(1)]()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return f"<unreadable {text!r}>"


def code_default(field: dataclasses.Field[Any]) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return REQUIRED


@dataclasses.dataclass(frozen=True)
class DataclassTable:
    """A dataclass's fields: names, defaults and (for ``Literal`` types) allowed values.

    Its table, titled ``<Name> field``, has the columns ``type`` (every allowed value as
    a double-quoted string, nothing else quoted) and ``default`` (``required``, a Python
    literal or ``SomeConfig()``), then free text.
    """

    cls: type
    known: Mapping[str, type] = dataclasses.field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.cls.__name__} field"

    def problems(self, doc: str) -> list[str]:
        rows = table(doc, self.title)
        if rows is None:
            return missing_table(self.title)
        by_name = {plain(row[self.title]): row for row in rows}
        fields = {field.name: field for field in dataclasses.fields(self.cls)}
        hints = get_type_hints(self.cls)
        problems = compare(f"{self.cls.__name__} field", list(fields), list(by_name))
        for name in fields.keys() & by_name.keys():
            row, where = by_name[name], f"{self.cls.__name__}.{name}"
            quoted = re.findall(r'"([^"]*)"', row.get("type", ""))
            problems += compare(f"{where} allowed value", allowed_values(hints[name]), quoted)
            expected = code_default(fields[name])
            written = documented_default(row.get("default", ""), self.known)
            if written != expected:
                problems.append(f"{where}: default is {expected!r} in the code, {written!r} in DESIGN.md")
        return problems


# --------------------------------------------------------------------------- columns


@dataclasses.dataclass(frozen=True)
class ColumnList:
    """An ordered list of names (a CSV's columns): its table lists them in the code's order."""

    title: str
    names: tuple[str, ...]

    def problems(self, doc: str) -> list[str]:
        rows = table(doc, self.title)
        if rows is None:
            return missing_table(self.title)
        written = [plain(row[self.title]) for row in rows]
        problems = compare(self.title, self.names, written)
        if not problems and tuple(written) != self.names:
            problems.append(f"{self.title}s: the code's order is {list(self.names)}, DESIGN.md's {written}")
        return problems


# --------------------------------------------------------------------------- command lines

#: A documented option (``--out-dir``, after a space or ``[``; not ``{model}--timeseries``)
#: or positional argument (``<command>``).
ARGUMENT = re.compile(r"(?<![^\s\[])--[a-z][\w-]*|<[a-z_]+>")
COMMAND_LINE = re.compile(r"^\s*python -m workflow_scripts\.([\w.]+)(.*)$")


def parser_arguments(source: str) -> set[str]:
    """The options and positionals a module's ``add_argument`` calls declare, read with ``ast``.

    Read from the source, never by importing: train's imports take seconds. A name that is
    not a string literal cannot be read this way and is returned as ``<unreadable>``.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"):
            continue
        values = [
            arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        ]
        if not values or len(values) != len(node.args):
            names.add("<unreadable>")
            continue
        names.update(value if value.startswith("-") else f"<{value}>" for value in values)
    return names


def entry_points(package_dir: Path = Path(workflow_scripts.__file__).parent) -> dict[str, set[str]]:
    """Every module that builds an ``ArgumentParser``: ``python -m`` name -> its arguments."""
    found: dict[str, set[str]] = {}
    for path in sorted(package_dir.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "ArgumentParser(" in source:
            name = ".".join(path.relative_to(package_dir).with_suffix("").parts)
            found[name] = parser_arguments(source)
    return found


def documented_commands(doc: str) -> dict[str, set[str]]:
    """The fenced blocks' ``python -m workflow_scripts.<entry>`` lines and the arguments on them.

    An entry's arguments are those on its line and on the indented lines after it, to the
    next command line or the end of the block.
    """
    found: dict[str, set[str]] = {}
    current: str | None = None
    in_block = False
    for line in doc.splitlines():
        if line.startswith("```"):
            in_block, current = not in_block, None
            continue
        match = COMMAND_LINE.match(line) if in_block else None
        if match:
            current = match.group(1)
            found.setdefault(current, set()).update(ARGUMENT.findall(match.group(2)))
        elif current is not None and line.startswith(" "):
            found[current].update(ARGUMENT.findall(line))
        else:
            current = None
    return found


@dataclasses.dataclass(frozen=True)
class CommandLines:
    """Every entry point's argparse arguments, against the documented command lines."""

    commands: Mapping[str, set[str]]
    title: None = None

    def problems(self, doc: str) -> list[str]:
        written = documented_commands(doc)
        problems = compare("entry point", sorted(self.commands), sorted(written))
        for name in sorted(self.commands.keys() & written.keys()):
            problems += compare(f"{name} argument", sorted(self.commands[name]), sorted(written[name]))
        return problems


# --------------------------------------------------------------------------- variants


def merged(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` merged into ``base`` recursively, as ``snakemake.utils.update_config`` does."""
    result = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def study_variants(config_dir: Path, files: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A study's variants, each with the schema's defaults for the keys it leaves out."""
    raw: dict[str, Any] = {}
    for name in files:
        raw = merged(raw, yaml.safe_load((config_dir / name).read_text(encoding="utf-8")) or {})
    schema = yaml.safe_load((config_dir / "schema.yaml").read_text(encoding="utf-8"))
    defaults = {key: sub["default"] for key, sub in schema["$defs"]["variant"]["properties"].items()}
    return {name: {**defaults, **(values or {})} for name, values in raw.get("variants", {}).items()}


def unstudied(config_dir: Path, studies: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Shipped YAML files in no study: their variants would otherwise go unchecked."""
    used = {name for files in studies.values() for name in files}
    return [
        f"config/{path.name} is in no study of STUDIES (tests/design_facts.py)"
        for path in sorted(config_dir.glob("*.yaml"))
        if path.name != "schema.yaml" and path.name not in used
    ]


def variant_row_problems(name: str, row: Mapping[str, str], values: Mapping[str, Any]) -> list[str]:
    """The cells of a variant's row that a column named by a variant key makes checkable."""
    return [
        f"variant {name}: {key} is {values[key]!r} in the configs, {plain(row[key])!r} in DESIGN.md"
        for key in sorted(row.keys() & values.keys())
        if plain(row[key]) != str(values[key])
    ]


@dataclasses.dataclass(frozen=True)
class VariantTable:
    """The variants the shipped configs define, and the studies that run each.

    A column named by a variant key (``init``, ``freeze_epochs``, ...) is checked against
    the value in the first study that defines the variant (config/config.yaml, unless only
    an overlay does); ``runs in`` against the studies that enable it (``—``: none).
    """

    config_dir: Path = CONFIG_DIR
    studies: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=lambda: dict(STUDIES))
    title: str = "variant"

    def problems(self, doc: str) -> list[str]:
        problems = unstudied(self.config_dir, self.studies)
        rows = table(doc, self.title)
        if rows is None:
            return problems + missing_table(self.title)
        per_study = {study: study_variants(self.config_dir, files) for study, files in self.studies.items()}
        settings: dict[str, dict[str, Any]] = {}
        for variants in per_study.values():
            for name, values in variants.items():
                settings.setdefault(name, values)
        by_name = {plain(row[self.title]): row for row in rows}
        problems += compare("variant", list(settings), list(by_name))
        for name in sorted(settings.keys() & by_name.keys()):
            row = by_name[name]
            problems += variant_row_problems(name, row, settings[name])
            runs_in = [study for study, found in per_study.items() if found.get(name, {}).get("enabled")]
            written = [plain(cell) for cell in row.get(RUNS_IN, "").split(",")]
            problems += compare(
                f"variant {name}: runs in", runs_in, [s for s in written if s not in ("", "—")]
            )
        return problems


# --------------------------------------------------------------------------- all of them


def checks() -> list[Check]:
    """The table of checks: one entry per kind of code fact DESIGN.md lists."""
    config_classes = dataclasses_in("workflow_scripts.config")
    known = {cls.__name__: cls for cls in config_classes}
    study = [cls for module in STUDY_RESULT for cls in dataclasses_of(module)]
    results = [*dataclasses_of(RUN_RESULT), *study, SummaryStats]
    return [
        *(DataclassTable(cls, known) for cls in config_classes),
        *(DataclassTable(cls) for cls in results),
        ColumnList("metrics.csv column", METRIC_COLUMNS),
        CommandLines(entry_points()),
        VariantTable(),
    ]


def unowned_tables(doc: str, owned: set[str]) -> Iterator[str]:
    """Tables no check owns (stale, or a new list nobody checks), and titles used twice."""
    titles = [title for title, _ in tables(doc)]
    for title in titles:
        if title not in owned:
            yield f"DESIGN.md table {title!r}: no check in tests/design_facts.py owns it"
    for title in sorted({title for title in titles if titles.count(title) > 1}):
        yield f"DESIGN.md has {titles.count(title)} tables titled {title!r}"


def design_problems(doc: str, entries: Sequence[Check] | None = None) -> list[str]:
    """Every way ``doc`` disagrees with the code; [] when DESIGN.md is true."""
    entries = checks() if entries is None else entries
    problems = [problem for entry in entries for problem in entry.problems(doc)]
    owned = {entry.title for entry in entries if entry.title is not None}
    return problems + list(unowned_tables(doc, owned))
