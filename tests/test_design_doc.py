"""docs/DESIGN.md stays true (issue 29): its lists of code facts match the code, both ways.

The first test is the check itself; the others break the code or the document on purpose
and show that the checker names what broke (tests/design_facts.py says how it works).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from tests.design_facts import (
    CONFIG_DIR,
    DESIGN,
    ColumnList,
    CommandLines,
    DataclassTable,
    VariantTable,
    design_problems,
    entry_points,
    parser_arguments,
    split_row,
)
from workflow_scripts.config import base
from workflow_scripts.training.run_contract import METRIC_COLUMNS


@pytest.fixture(scope="module")
def doc() -> str:
    return DESIGN.read_text(encoding="utf-8")


def test_design_md_matches_the_code(doc: str) -> None:
    problems = design_problems(doc)
    assert not problems, "docs/DESIGN.md disagrees with the code:\n" + "\n".join(problems)


def test_a_field_added_to_a_config_dataclass_is_reported_by_name(
    doc: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    extended = dataclasses.make_dataclass(
        "TrainConfig",
        [("new_knob", int, dataclasses.field(default=3))],
        bases=(base.TrainConfig,),
        frozen=True,
    )
    extended.__module__ = base.__name__
    monkeypatch.setattr(base, "TrainConfig", extended)
    assert "TrainConfig field 'new_knob': in the code, missing from DESIGN.md" in design_problems(doc)


@pytest.mark.parametrize("module", ["run_contract", "results"])
def test_a_field_added_to_a_result_file_is_reported_by_name(
    doc: str, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    """A run's summary.json (RunSummary) and results/summary.json (StudyResult) are listed field
    by field: a new field of either needs its DESIGN.md row."""
    from workflow_scripts.reporting import results
    from workflow_scripts.training import run_contract

    owner, name = (run_contract, "RunSummary") if module == "run_contract" else (results, "StudyResult")
    extended = dataclasses.make_dataclass(
        name,
        [("new_number", float, dataclasses.field(default=0.0))],
        bases=(getattr(owner, name),),
        frozen=True,
    )
    extended.__module__ = owner.__name__
    monkeypatch.setattr(owner, name, extended)
    assert f"{name} field 'new_number': in the code, missing from DESIGN.md" in design_problems(doc)


def test_a_new_config_dataclass_needs_its_own_table(doc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    section = dataclasses.make_dataclass("FoldsConfig", [("count", int, dataclasses.field(default=5))])
    section.__module__ = base.__name__
    monkeypatch.setattr(base, "FoldsConfig", section, raising=False)
    assert "DESIGN.md has no table titled 'FoldsConfig field' (its first header cell)" in design_problems(doc)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "| `mask_span` | int | `8` |",
            "| `mask_span` | int | `8` |\n| `mask_width` | int | `4` | gone |",
            "TrainConfig field 'mask_width': in DESIGN.md, not in the code",
        ),
        (
            '`"pretrained"`, `"random"`, `"timeseries"`, `"timeseries_encoder"`',
            '`"pretrained"`, `"random"`',
            "VariantConfig.init allowed value 'timeseries_encoder': in the code, missing from DESIGN.md",
        ),
        (
            '`"experiment"`, `"own"`, `"none"` | `"experiment"`',
            '`"checkpoint_rms"`, `"none"` | `"experiment"`',
            "TrainConfig.embedding_scale allowed value 'checkpoint_rms': in DESIGN.md, not in the code",
        ),
        (
            "| `mask_ratio` | float | `0.15` |",
            "| `mask_ratio` | float | `0.2` |",
            "TrainConfig.mask_ratio: default is 0.15 in the code, 0.2 in DESIGN.md",
        ),
        (
            "| `budget_test_skill` | likewise |\n",
            "",
            "metrics.csv column 'budget_test_skill': in the code, missing from DESIGN.md",
        ),
        (
            "    [--validation-only]",
            "    [--validation-only] [--dry]",
            "train argument '--dry': in DESIGN.md, not in the code",
        ),
        (
            "| `baseline_aa` | random | checkpoint | 0 | none | 1000 | config, pretrainings, offline_tuned |",
            "| `baseline_aa` | random | checkpoint | 0 | none | 0 | config, pretrainings, offline |",
            "variant baseline_aa: init_seed_offset is 1000 in the configs, '0' in DESIGN.md",
        ),
    ],
    ids=["field-gone", "init-value", "embedding-scale-value", "default", "column", "flag-gone", "variant"],
)
def test_a_wrong_document_is_reported_by_name(doc: str, old: str, new: str, expected: str) -> None:
    assert old in doc, "the test's anchor is no longer in DESIGN.md"
    assert expected in design_problems(doc.replace(old, new, 1))


def test_a_new_entry_point_flag_or_positional_is_reported(doc: str, tmp_path: Path) -> None:
    commands = entry_points()
    commands["train"] |= parser_arguments('parser.add_argument("--warm-start", type=Path)')
    assert "train argument '--warm-start': in the code, missing from DESIGN.md" in CommandLines(
        commands
    ).problems(doc)
    tool = tmp_path / "gpu_probe.py"
    tool.write_text(
        "import argparse\nparser = argparse.ArgumentParser()\n"
        'parser.add_argument("--json", action="store_true")\nparser.add_argument("device")\n'
        "parser.add_argument(NAME)\n"
    )
    assert entry_points(tmp_path) == {"gpu_probe": {"--json", "<device>", "<unreadable>"}}
    problems = CommandLines({**commands, **entry_points(tmp_path)}).problems(doc)
    assert "entry point 'gpu_probe': in the code, missing from DESIGN.md" in problems


def test_a_new_or_reordered_metrics_column_is_reported(doc: str) -> None:
    added = ColumnList("metrics.csv column", (*METRIC_COLUMNS, "budget_test_mae"))
    assert added.problems(doc) == [
        "metrics.csv column 'budget_test_mae': in the code, missing from DESIGN.md"
    ]
    swapped = ColumnList("metrics.csv column", (METRIC_COLUMNS[1], METRIC_COLUMNS[0], *METRIC_COLUMNS[2:]))
    assert [problem.split(":")[0] for problem in swapped.problems(doc)] == ["metrics.csv columns"]


def test_a_variant_in_a_shipped_config_is_reported(doc: str, tmp_path: Path) -> None:
    shutil.copytree(CONFIG_DIR, tmp_path / "config")
    config_dir = tmp_path / "config"
    with open(config_dir / "smoke.yaml", "a", encoding="utf-8") as handle:
        handle.write("  patch_only:\n    encoder: none\n  frozen_ln:\n    enabled: true\n")
    (config_dir / "gpu.yaml").write_text("variants:\n  wide:\n    init: random\n", encoding="utf-8")
    problems = VariantTable(config_dir).problems(doc)
    assert "variant 'patch_only': in the code, missing from DESIGN.md" in problems
    assert "variant frozen_ln: runs in 'smoke': in the code, missing from DESIGN.md" in problems
    assert "config/gpu.yaml is in no study of STUDIES (tests/design_facts.py)" in problems


def test_every_table_is_owned_by_a_check(doc: str) -> None:
    extra = doc + "\n| summary.json key | meaning |\n| --- | --- |\n| `variant` | the arm |\n"
    assert design_problems(extra)[-1] == (
        "DESIGN.md table 'summary.json key': no check in tests/design_facts.py owns it"
    )
    duplicated = doc + "\n| metrics.csv column | meaning |\n| --- | --- |\n| `epoch` | 1-based |\n"
    assert "DESIGN.md has 2 tables titled 'metrics.csv column'" in design_problems(duplicated)


def test_a_dataclass_table_is_one_entry_in_the_table_of_checks() -> None:
    """How the summary.json types will be checked: one ``DataclassTable`` per class."""

    @dataclasses.dataclass
    class ArmResult:
        variant: str
        n_seeds: int = 0

    doc = (
        "| ArmResult field | type | default | meaning |\n| --- | --- | --- | --- |\n"
        "| `variant` | str | required | the arm |\n| `n_seeds` | int | `0` | seeds |\n"
    )
    assert design_problems(doc, [DataclassTable(ArmResult)]) == []
    assert split_row(r"| `a` | int \| None | `None` |") == ["`a`", "int | None", "`None`"]
