"""results/summary.json is a typed result: read back into the dataclasses that wrote it, a
removed, renamed or mistyped field is refused by name; collect writes numbers, not sentences."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from study_builders import skill_arm, study

from workflow_scripts import report
from workflow_scripts.jobs.typed_json import ResultFormatError, decode, encode
from workflow_scripts.reporting.measures import METRICS
from workflow_scripts.reporting.results import RunEntry, StudyResult, read_study, study_from_json

ROOT = Path(__file__).resolve().parents[1]
PRIMARY = [{"a": "nofreeze", "b": "baseline", "role": "primary", "label": "transfer"}]


def _hand_study() -> StudyResult:
    ten = [0.10, 0.12, 0.08, 0.11, 0.09, 0.13, 0.10, 0.12, 0.11, 0.09]
    return study({"nofreeze": skill_arm([v + 0.05 for v in ten]), "baseline": skill_arm(ten)}, PRIMARY)


def test_a_study_survives_json_and_back_unchanged() -> None:
    original = _hand_study()
    text = json.dumps(encode(original), sort_keys=True)
    again = study_from_json(json.loads(text))
    assert again == original
    assert json.dumps(encode(again), sort_keys=True) == text


@pytest.mark.slow
def test_the_smoke_runs_summary_reads_into_the_typed_result_and_a_removed_field_is_named(
    smoke_run: Path, tmp_path: Path
) -> None:
    path = smoke_run / "results" / "summary.json"
    study_result = read_study(path)
    assert study_result.contrasts.of_role("primary") is not None
    assert set(study_result.variants) == set(study_result.variant_order)
    # The smoke study's units: 2 series x 2 folds x 1 seed, each arm one run per unit.
    assert (study_result.series, study_result.folds) == (["smoke-msft-daily", "smoke-synthetic-h1"], 2)
    units = {(s, f, seed) for s in study_result.series for f in range(2) for seed in study_result.seeds}
    for arm in study_result.variants.values():
        assert sorted((run.series, run.fold, run.seed) for run in arm.runs) == sorted(units)
    data = json.loads(path.read_text())
    name = next(iter(data["variants"]))
    del data["variants"][name]["runs"][0]["seed"]
    broken = tmp_path / "summary.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(ResultFormatError, match=rf"variants\.{name}\.runs\[0\]\.seed' is missing"):
        read_study(broken)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["contrasts"]["results"][0].pop("p_adjusted"),
            r"contrasts\.results\[0\]\.p_adjusted' is missing",
        ),
        (
            lambda d: d["contrasts"]["results"][0].update(
                p_adj=d["contrasts"]["results"][0].pop("p_adjusted")
            ),
            r"contrasts\.results\[0\]\.p_adj' is not a field of ContrastResult",
        ),
        (
            lambda d: d["variants"]["baseline"].update(n_ok="10"),
            r"variants\.baseline\.n_ok' must be an integer",
        ),
        (lambda d: d["budget"].pop("convergence"), r"budget\.convergence' is missing"),
        (lambda d: d.update(seeds=[0, True]), r"seeds\[1\]' must be an integer"),
        (
            lambda d: d["variants"]["baseline"]["runs"][0].update(fold="0"),
            r"variants\.baseline\.runs\[0\]\.fold' must be an integer",
        ),
        (lambda d: d["variants"]["baseline"]["runs"][0].pop("series"), r"runs\[0\]\.series' is missing"),
    ],
    ids=["removed", "renamed", "mistyped", "removed-block", "bool-as-int", "mistyped-fold", "removed-series"],
)
def test_a_changed_field_is_refused_by_its_key_path(change, message) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(encode(_hand_study())))
    change(data)
    with pytest.raises(ResultFormatError, match=message):
        study_from_json(data)


def test_the_report_refuses_an_old_summary_naming_the_file_and_key(tmp_path: Path) -> None:
    data = json.loads(json.dumps(encode(_hand_study())))
    del data["variants"]["baseline"]["iqm"]
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    with pytest.raises(report.InputError, match=r"summary\.json: key 'variants\.baseline\.iqm' is missing"):
        report.read_collected(path)


def test_every_metric_is_a_field_of_a_run_entry() -> None:
    """RunEntry.value(metric) reads a field: every metric the report compares must be one."""
    fields = set(RunEntry.__dataclass_fields__)
    assert set(METRICS) <= fields


def test_decode_turns_json_string_keys_back_into_steps() -> None:
    entry = decode(
        RunEntry, {**encode(RunEntry("s", 0, 0, "completed", "")), "budget_curve": {"25": 0.1, "100": 0.2}}
    )
    assert entry.budget_curve == {25: 0.1, 100: 0.2}


def _imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _closure(entry: str) -> set[str]:
    """Every workflow_scripts module ``entry`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = ROOT / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / name.replace(".", "/") / "__init__.py"
        if not path.exists():
            continue
        seen.add(name)
        todo.extend(n for n in _imports(path) if n.startswith("workflow_scripts"))
    return seen


SENTENCE_LAYER = (
    "workflow_scripts.reporting.sentences",
    "workflow_scripts.reporting.conclusions",
    "workflow_scripts.reporting.controls",
    "workflow_scripts.reporting.document",
    "workflow_scripts.reporting.tables",
    "workflow_scripts.reporting.curve_tables",
    "workflow_scripts.reporting.plots",
    "workflow_scripts.reporting.plan_table",
)


def test_collect_does_not_import_the_sentence_layer() -> None:
    """collect computes numbers; every sentence is the report's. Nothing collect imports, however
    indirectly, may be a module that writes words."""
    reached = _closure("workflow_scripts.collect")
    assert "workflow_scripts.reporting.aggregate" in reached  # the check sees through imports
    assert not reached & set(SENTENCE_LAYER), sorted(reached & set(SENTENCE_LAYER))


def test_the_import_check_would_see_a_sentence_import(tmp_path: Path) -> None:
    """The closure follows `from workflow_scripts.reporting import sentences` too."""
    assert "workflow_scripts.reporting.sentences" in _closure("workflow_scripts.reporting.conclusions")
