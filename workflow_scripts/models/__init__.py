"""Acquiring, verifying and loading the pretrained encoder.

The original study reported a randomly initialised T5 as "pretrained" after a failed
download fell back silently. This package makes that impossible: ``hub``/``sources``
fetch exactly the files loading needs (or fail loudly), ``verification`` proves the
weights are complete, finite, trained and the published size, and ``loading`` is the
single code path through which both ``verify_model`` and training obtain an encoder.

Nothing heavy is imported here: ``download_model`` must start (and fail) within
seconds, so only ``loading``, ``checkpoint`` and ``verification`` import torch and
transformers.
"""
