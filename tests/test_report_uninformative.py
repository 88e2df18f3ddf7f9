"""The report says each thing once: contrasts in which every run is "never" are one line, not a
row and a sentence each, and the conclusions repeat no sentence of the contrast section."""

from __future__ import annotations

import re

import report_fixtures  # noqa: F401  (puts the repository on sys.path)
from study_builders import skill_arm, study

from workflow_scripts.reporting import conclusions, tables
from workflow_scripts.reporting.document import report_rules
from workflow_scripts.reporting.measures import CONTRAST_METRICS
from workflow_scripts.reporting.render import MARKDOWN_MACROS, environment
from workflow_scripts.reporting.results import StudyResult
from workflow_scripts.reporting.uninformative import carries_no_information, split_contrasts

FAMILY = [
    {"a": "nofreeze", "b": "baseline", "role": "primary", "label": "transfer effect"},
    {"a": "frozen_all", "b": "frozen_random", "role": "secondary", "label": "representations"},
    {"a": "freeze", "b": "nofreeze", "role": "secondary", "label": "freeze schedule"},
]
ARMS = ("nofreeze", "baseline", "frozen_all", "frozen_random", "freeze")
SKILL = [0.10, 0.12, 0.08, 0.11]


def never_study(reaching: dict[str, list[int | str]] | None = None) -> StudyResult:
    """Every run of every arm "never" beats naive, except the arms in ``reaching``."""
    steps = {name: ["never"] * len(SKILL) for name in ARMS} | (reaching or {})
    return study({name: skill_arm(SKILL, steps[name]) for name in ARMS}, FAMILY)


def test_three_all_never_contrasts_become_one_line() -> None:
    summary = never_study()
    split = split_contrasts(summary.contrasts.on(*CONTRAST_METRICS))
    assert [r.metric for r in split.informative].count("first_step_beats_naive") == 0
    assert len(split.collapsed) == 1
    line = split.collapsed[0]
    for pair in ("nofreeze − baseline", "frozen_all − frozen_random", "freeze − nofreeze"):
        assert line.count(pair) == 1
    assert line.startswith("First step beating naive:") and "these 3 contrasts" in line
    rows = tables.contrast_rows(summary)
    assert len(rows) == 9 and not any("first step" in row["metric"] for row in rows)  # 3 x MSE, MAE, AUC
    speed = conclusions.learning_speed(summary.contrasts)
    assert "first step beating naive" not in speed.text and "area under the val-loss curve" in speed.text


def test_a_contrast_with_an_arm_that_reaches_naive_keeps_its_row() -> None:
    summary = never_study({"nofreeze": [10, 20, 10, 20]})
    rows = summary.contrasts.on("first_step_beats_naive")
    kept = [r for r in rows if not carries_no_information(r)]
    assert {(r.a, r.b) for r in kept} == {("nofreeze", "baseline"), ("freeze", "nofreeze")}
    line = split_contrasts(rows).collapsed
    assert line == [
        'First step beating naive: every run of both arms of frozen_all − frozen_random is "never", so '
        "this contrast carries no information and has no row."
    ]
    speed = conclusions.learning_speed(summary.contrasts).text
    assert "nofreeze vs baseline on first step beating naive" in speed


def _sentences(text: str) -> set[str]:
    """The sentences of a rendered text (split at a full stop that ends a clause)."""
    return {s.strip() for s in re.split(r"(?<=\.)\s+|\n", text) if len(s.strip()) > 30}


def test_conclusions_and_contrast_section_share_no_sentence() -> None:
    summary = never_study()
    figure = {"title": "Paired differences per seed", "caption": "c", "href": "plots/p.png", "data_uri": ""}
    context = {
        "format": MARKDOWN_MACROS,
        "rules": report_rules(summary),
        "conclusions": conclusions.write_conclusions(summary),
        "contrasts": tables.contrast_rows(summary),
        "uninformative": split_contrasts(summary.contrasts.on(*CONTRAST_METRICS)).collapsed,
        "figures": {"paired_deltas": figure},
    }
    env = environment(html=False)
    said = env.get_template("section_conclusions.j2").render(**context)
    table = env.get_template("section_contrasts.j2").render(**context)
    line = context["uninformative"][0]
    assert table.count(line) == 1 and line not in said
    assert "0: never, 1: never" not in table and "| first step beating naive" not in table
    assert not _sentences(said) & _sentences(table)
