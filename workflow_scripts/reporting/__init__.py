"""Turning finished training runs into numbers, plots and sentences a researcher can trust.

The modules are split so each can be tested on hand-made inputs:

- ``stats``: mean, std and Student-t confidence intervals over seeds;
- ``paired``: exact sign-flip test, Holm, d_z, probability of improvement, IQM, power/MDE;
- ``metrics``: which metrics are compared and which direction is better;
- ``contrasts``: the planned paired contrasts and the report's one headline;
- ``runs``: reading one run's summary.json / metrics.csv / benchmark file, with failed
  and missing runs kept as explicit records rather than zeros;
- ``aggregate``: the per-variant summary that ``collect`` writes as results/summary.json;
- ``tables``: the rows of the report's tables (settings, results, convergence, compute);
- ``conclusions``: sentences derived from the paired contrasts and their uncertainty;
- ``plots``: the matplotlib figures, rendered to PNG bytes;
- ``provenance``: versions, commit, hashes and the commands that reproduce the results;
- ``render``: the Jinja2 environment and the HTML / Markdown renderers.

Nothing here imports Snakemake; the entry points are ``workflow_scripts.collect`` and
``workflow_scripts.report``.
"""
