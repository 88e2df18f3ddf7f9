"""The error every model-loading module raises, in a module of its own so none imports another for it.

``loading`` re-exports ``ModelLoadError``: callers keep importing it from there.
"""

from __future__ import annotations

from collections.abc import Iterable


class ModelLoadError(RuntimeError):
    """The checkpoint cannot be loaded faithfully; ``check`` names the verification check it fails."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


SHOWN_KEYS = 8


def shown_keys(keys: Iterable[object]) -> str:
    """Up to ``SHOWN_KEYS`` names, sorted, and how many more there are."""
    ordered = sorted(str(key) for key in keys)
    text = ", ".join(ordered[:SHOWN_KEYS])
    return text if len(ordered) <= SHOWN_KEYS else f"{text}, ... ({len(ordered) - SHOWN_KEYS} more)"
