"""Keep the Hugging Face token out of everything the pipeline writes.

huggingface_hub sends the token only in the Authorization header and never prints
it; this module is the defence in depth for our own messages: every error text that
could have picked up a URL, header or environment dump goes through ``redact`` before
it reaches a log, manifest or report. Kept free of heavy imports so every entry point
can use it.
"""

from __future__ import annotations

import os

TOKEN_ENV_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
_MIN_TOKEN_LENGTH = 4  # shorter values would blank out ordinary words


def redact(text: str) -> str:
    """``text`` with every token found in the environment replaced by ``***``."""
    for name in TOKEN_ENV_VARS:
        token = os.environ.get(name)
        if token and len(token) >= _MIN_TOKEN_LENGTH:
            text = text.replace(token, "***")
    return text
