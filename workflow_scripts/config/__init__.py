"""Typed experiment configuration, in layers (docs/DESIGN.md).

* ``base``        - one frozen dataclass per section (model, data, train, variant, contrast)
* ``pretraining`` - the ``pretrain:`` section's dataclass
* ``tune``        - the ``tune:`` section's dataclass and its grid arithmetic
* ``experiment``  - ``ExperimentConfig``: the sections together, the tuned arms
* ``checks``      - the schema and the cross-field checks, each naming the key
* ``loader``      - YAML and defaults to a checked ``ExperimentConfig``

Each layer imports only the ones above it in this list; import a name from the module
that defines it (nothing is re-exported here, so each name has one path).
"""
