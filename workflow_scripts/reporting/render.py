"""Jinja2 rendering of the report, HTML (autoescaped) and Markdown, from one context.

Templates are loaded from ``templates/`` next to this file, so the report renders the
same from a source checkout, an installed package or a Snakemake conda environment.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
HTML_TEMPLATE = "report.html.j2"
MARKDOWN_TEMPLATE = "report.md.j2"


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: no pipe or line break can split the row."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def png_data_uri(png: bytes) -> str:
    """Embed a PNG in the HTML itself, so the report is one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def environment() -> jinja2.Environment:
    """Autoescaping for ``*.html.j2`` (a config description cannot inject markup), none for
    Markdown; undefined names fail loudly instead of rendering as blanks."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_cell
    return env


def render_html(context: Mapping[str, Any]) -> str:
    return environment().get_template(HTML_TEMPLATE).render(**context)


def render_markdown(context: Mapping[str, Any]) -> str:
    return environment().get_template(MARKDOWN_TEMPLATE).render(**context)
