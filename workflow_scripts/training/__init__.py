"""The ``train`` stage: patch model, masking, metrics, optimiser, precision, loop, resume state.

Each module does one job so it can be tested on its own: ``build.build_run`` builds a run at step 0,
``loop.fit`` trains it, ``identity`` names it, ``evaluation`` scores it and ``outputs``
writes it; ``workflow_scripts.train`` is the command-line entry point the rule calls.
"""
