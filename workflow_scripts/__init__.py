"""Library and entry points of the pretrained-encoder Stage-1 workflow.

Each ``python -m workflow_scripts.<step>`` module is a thin command-line entry point
that a Snakemake rule calls; the sub-packages hold the small, pure, testable pieces.
"""
