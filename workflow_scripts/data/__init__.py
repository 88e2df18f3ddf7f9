"""The data stage: raw bars in, leakage-free derived arrays out.

Modules, in the order the ``preprocess`` entry point uses them:

* ``spec``        - the slice of ``DataConfig`` this stage reads, and how it is parsed
* ``readers``     - CSV/Parquet/embedded input to a table with validated UTC timestamps
* ``validation``  - ``DataValidationError`` and the checks that name file, column and row
* ``timeframes``  - timeframe strings (m1 ... w), bucket arithmetic, spacing inference
* ``bars``        - the in-memory bar series every later step works on
* ``resample``    - base bars to higher timeframes (OHLC first/max/min/last, generic mean)
* ``features``    - per-bar features and train-only normalisation
* ``windows``     - aligned sample end instants and chronological splits with gaps
* ``derived``     - the on-disk format and its reader ``load_derived``
* ``embedded``    - the real MSFT daily series shipped inside the pmdarima wheel
* ``pipeline``    - ``preprocess(config, out_dir)``, the whole stage as one function
* ``synthetic``   - random-walk bars for tests and the benchmark
* ``benchmark``   - ``python -m workflow_scripts.data.benchmark``
"""
