"""The ``train`` stage: patch model, masking, metrics, optimiser, precision, loop, checkpoints.

Each module does one job so it can be tested on its own; ``loop.Trainer`` wires them
together and ``workflow_scripts.train`` is the command-line entry point the rule calls.
"""
