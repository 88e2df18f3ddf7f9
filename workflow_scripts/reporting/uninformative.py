"""Contrasts that carry no information, said once in one line instead of a row and a sentence each.

On a censored metric (first step beating naive) a contrast in which every run of both arms is
"never" has no Δ, a p of 1 and nothing to rank: it can only say that no run got there. With
several such contrasts the report used to say so once per contrast in the table and again in
the conclusions. :func:`split_contrasts` keeps the informative contrasts for the table and the
conclusions, and writes one line per metric for the rest, which the report shows once, under
the contrast table. Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workflow_scripts.reporting.contrast_results import ContrastResult
from workflow_scripts.reporting.measures import METRICS, NEVER


@dataclass(frozen=True)
class ContrastSplit:
    """The contrasts worth a row (in their planned order) and one line per metric for the rest."""

    informative: list[ContrastResult]
    collapsed: list[str]


def carries_no_information(row: ContrastResult) -> bool:
    """Every run of both arms is "never": no Δ, no ranks, nothing but "no run got there"."""
    values = [*row.a_values, *row.b_values]
    return bool(values) and all(value == NEVER for value in values)


def collapsed_line(rows: Sequence[ContrastResult]) -> str:
    """One line for the uninformative contrasts of one metric."""
    spec = METRICS[rows[0].metric]
    pairs = [f"{row.a} − {row.b}" for row in rows]
    listed = pairs[0] if len(pairs) == 1 else ", ".join(pairs[:-1]) + " and " + pairs[-1]
    count = (
        "this contrast carries no information and has"
        if len(rows) == 1
        else (f"these {len(rows)} contrasts carry no information and have")
    )
    return f'{spec.title.capitalize()}: every run of both arms of {listed} is "{NEVER}", so {count} no row.'


def split_contrasts(rows: Sequence[ContrastResult]) -> ContrastSplit:
    """The informative contrasts, and one :func:`collapsed_line` per metric for the others."""
    empty: dict[str, list[ContrastResult]] = {}
    for row in rows:
        if carries_no_information(row):
            empty.setdefault(row.metric, []).append(row)
    informative = [row for row in rows if not carries_no_information(row)]
    return ContrastSplit(informative, [collapsed_line(group) for group in empty.values()])
