"""Turning finished training runs into numbers, plots and sentences a researcher can trust.

Two layers: pure statistics that return numbers and typed results, and one module that
turns results into sentences. The modules are split so each can be tested on hand-made inputs:

- ``stats``: mean, std, Student-t and bootstrap intervals and the IQM over seeds (the one
  ``CONFIDENCE`` and ``BOOTSTRAP_RESAMPLES``);
- ``paired``: exact sign-flip test, Holm, d_z, probability of improvement, paired share,
  the transfer ratio;
- ``power``: power, minimum detectable effect and seeds needed of the test the report runs;
- ``metrics``: which metrics are compared and which direction is better;
- ``contrasts``: the planned paired contrasts, Holm-adjusted, with their power fields;
- ``controls``: the positive and negative controls and the transfer ratio's row-level inputs;
- ``budget``: the contrasts along the budget curve and each arm's convergence;
- ``sentences``: every sentence about a result (headline, control lines, contrast
  sentences, budget-curve text), with the one Δ/interval formatter;
- ``formatting``: how a single number reads (value, count, duration, p);
- ``runs``: reading one run's summary.json / metrics.csv / benchmark file, with failed
  and missing runs kept as explicit records rather than zeros;
- ``aggregate``: the per-variant summary that ``collect`` writes as results/summary.json;
- ``tables``: the rows of the report's tables (settings, results, convergence, compute);
- ``conclusions``: the conclusions' topics and the headline, assembled from ``sentences``;
- ``plots``: the matplotlib figures, rendered to PNG bytes;
- ``provenance``: versions, commit, hashes and the commands that reproduce the results;
- ``render``: the Jinja2 environment and the HTML / Markdown renderers.

Nothing here imports Snakemake; the entry points are ``workflow_scripts.collect`` and
``workflow_scripts.report``.
"""
