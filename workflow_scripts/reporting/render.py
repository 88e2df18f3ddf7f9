"""Jinja2 rendering of the report, HTML (autoescaped) and Markdown, from one context and one
set of section templates.

``report.j2`` and its ``section_*.j2`` files write every sentence and number once; they build
the page only from the macros of ``format_html.j2`` or ``format_md.j2`` (heading, paragraph,
table, row, cell, figure, code block...), which this module chooses. A template's ``t`` filter
makes a piece of text safe for its format: escaped HTML with the sentence layer's
``**bold**`` as ``<strong>``, or Markdown that no pipe or line break can split a table row of.

Templates are loaded from ``templates/`` next to this file, so the report renders the
same from a source checkout, an installed package or a Snakemake conda environment.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: the one template of the whole report; each format only brings its macros
REPORT_TEMPLATE = "report.j2"
HTML_MACROS = "format_html.j2"
MARKDOWN_MACROS = "format_md.j2"

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_FENCE = re.compile(r"(^```.*?^```$)", flags=re.MULTILINE | re.DOTALL)


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: no pipe or line break can split the row."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def html_text(value: Any) -> markupsafe.Markup:
    """Text escaped for HTML, with the Markdown ``**bold**`` a sentence may carry as ``<strong>``
    (so a word the Markdown report shows bold is bold in the HTML one too)."""
    return markupsafe.Markup(_BOLD.sub(r"<strong>\1</strong>", str(markupsafe.escape(value))))


def png_data_uri(png: bytes) -> str:
    """Embed a PNG in the HTML itself, so the report is one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def environment(html: bool = True) -> jinja2.Environment:
    """The environment of one format: autoescaping for HTML (a config description cannot inject
    markup), none for Markdown; undefined names fail loudly instead of rendering as blanks."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_cell
    env.filters["t"] = html_text if html else md_cell
    return env


def tidy_markdown(text: str) -> str:
    """One blank line between blocks: the shared templates leave more where an HTML-only block
    (the table of contents) renders as nothing. Code blocks are left as they are."""
    parts = _FENCE.split(text)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"\n{3,}", "\n\n", parts[i])
    return "".join(parts).lstrip("\n")


def render_html(context: Mapping[str, Any]) -> str:
    return environment(html=True).get_template(REPORT_TEMPLATE).render(**context, format=HTML_MACROS)


def render_markdown(context: Mapping[str, Any]) -> str:
    text = environment(html=False).get_template(REPORT_TEMPLATE).render(**context, format=MARKDOWN_MACROS)
    return tidy_markdown(text)
