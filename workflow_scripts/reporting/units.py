"""The paired unit of evidence, in one small module every result type and reader can import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Unit:
    """The paired unit of evidence: one series, one rolling-origin fold, one seed.

    Every arm trains once per unit with the same data, masks and new-layer initialisation, so
    a contrast's Δ is taken within a unit and its test runs over units (docs/report.md, Units).
    """

    series: str
    fold: int
    seed: int

    @property
    def label(self) -> str:
        return f"{self.series} fold {self.fold} seed {self.seed}"
