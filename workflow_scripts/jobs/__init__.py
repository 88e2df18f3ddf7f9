"""Job plumbing: what every stage's job needs around its science (docs/DESIGN.md).

* ``cli``         - the wrapper around an entry point's work; the one ``InputError``
* ``io_utils``    - canonical JSON, hashes, atomic writes of files and directories
* ``logs``        - the job log's format
* ``environment`` - the environment a job starts in (PATH, threads, offline Hub)
* ``deps``        - a rule's code inputs: the local modules an entry point imports
* ``placement``   - which jobs claim a GPU and how many threads each runs with
* ``gpu_pool``    - which GPUs a local run's jobs may take
* ``gpu_locks``   - one lock file per GPU slot, held for the life of the job
"""
