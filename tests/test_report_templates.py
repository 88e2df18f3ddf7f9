"""One source for both report formats, and each rule stated from the one value that applies it.

The HTML and the Markdown render the same ``report.j2`` and ``section_*.j2`` files; only the
macros of ``format_html.j2`` / ``format_md.j2`` differ. The convergence rule, α, the power, the
bootstrap resamples and the positive control's detection rule reach the page through
:class:`~workflow_scripts.reporting.document.ReportRules`, never as a number in a template.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import report_fixtures  # noqa: F401  (puts the repository on sys.path)
from study_builders import skill_arm, study

from workflow_scripts.reporting import controls, document, render
from workflow_scripts.reporting.render import TEMPLATE_DIR, environment, tidy_markdown

MACRO = re.compile(r"{%-?\s*macro\s+(\w+)\(")
USED = re.compile(r"\bf\.(\w+)\(")
#: the rules' values as literals: none may appear in a template or a figure caption
LITERALS = ("2%", "0.05", "80%", "2000", "0.8")


def _templates() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(TEMPLATE_DIR.glob("*.j2"))}


def test_both_formats_define_the_same_macros_and_sections_use_only_them() -> None:
    texts = _templates()
    html = {m for m in MACRO.findall(texts.pop(render.HTML_MACROS)) if not m.startswith("_")}
    markdown = {m for m in MACRO.findall(texts.pop(render.MARKDOWN_MACROS)) if not m.startswith("_")}
    assert html == markdown
    used = {name for text in texts.values() for name in USED.findall(text)}
    assert used and used <= html
    assert set(texts) == {render.REPORT_TEMPLATE} | {n for n in texts if n.startswith("section_")}
    for name, text in texts.items():
        assert "<" not in re.sub(r"{[{%#].*?[}%#]}", "", text, flags=re.DOTALL), f"markup in {name}"


@pytest.mark.parametrize("literal", LITERALS)
def test_no_rule_is_written_as_a_number(literal: str) -> None:
    for name, text in _templates().items():
        assert literal not in text, f"{literal} written in {name}"
    for title, caption in document._FIGURE_TEXT.values():
        assert literal not in title + caption


def _study():
    arms = {name: skill_arm([0.1, 0.12, 0.08, 0.11]) for name in ("nofreeze", "baseline")}
    return study(arms, [{"a": "nofreeze", "b": "baseline", "role": "primary", "label": "transfer"}])


def test_the_rules_come_from_their_constants(monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _study()
    rules = document.report_rules(summary)
    assert (rules.converged_gain, rules.power, rules.bootstrap_resamples) == ("2%", "80%", "2000")
    assert (rules.alpha, rules.budget_alpha, rules.confidence) == ("0.05", "0.05", "95%")
    assert rules.detection == controls.DETECTION_RULE
    monkeypatch.setattr(document, "CONVERGED_GAIN", 0.03)
    monkeypatch.setattr(document, "POWER", 0.9)
    monkeypatch.setattr(document, "BOOTSTRAP_RESAMPLES", 500)
    moved = replace(summary, contrasts=replace(summary.contrasts, alpha=0.1), confidence=0.9)
    rules = document.report_rules(moved)
    assert (rules.converged_gain, rules.power, rules.bootstrap_resamples) == ("3%", "90%", "500")
    assert (rules.alpha, rules.confidence) == ("0.1", "90%")


def test_the_detection_rule_is_the_one_the_controls_apply() -> None:
    row = _study().contrasts.of_role("primary")
    assert row is not None
    assert controls.is_detected(replace(row, significant=True, favours="a"))
    assert not controls.is_detected(replace(row, significant=True, favours="b"))
    assert not controls.is_detected(replace(row, significant=False, favours="a"))


@pytest.mark.parametrize("html", [True, False])
def test_a_rule_reaches_both_formats_from_the_record(html: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(document, "CONVERGED_GAIN", 0.03)
    rules = document.report_rules(_study())
    row = {"variant": "baseline", "converged": "no", "runs": "0 of 2", "max_gain": "5%", "late_best": "2"}
    context = {
        "format": render.HTML_MACROS if html else render.MARKDOWN_MACROS,
        "rules": rules,
        "budget_table": {"rows": [], "columns": []},
        "convergence_status": [row],
        "reference": None,
        "channels": {"columns": []},
    }
    text = environment(html).get_template("section_budget.j2").render(**context)
    assert "improved by less than 3% over the last quarter" in text


def test_html_text_escapes_and_keeps_the_sentences_bold() -> None:
    assert str(render.html_text("a <b> is **not detected** & more")) == (
        "a &lt;b&gt; is <strong>not detected</strong> &amp; more"
    )


def test_tidy_markdown_leaves_one_blank_line_but_not_inside_code() -> None:
    text = "\n\n# T\n\n\n\nline\n\n\n```bash\na\n\n\nb\n```\n\n\nend\n"
    assert tidy_markdown(text) == "# T\n\nline\n\n```bash\na\n\n\nb\n```\n\nend\n"
