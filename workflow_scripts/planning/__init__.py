"""The study's cost before it runs (issue 30): what work remains, what a step costs here, and
the wall time that work takes on the slots an invocation allows.

Layers (each imports only those listed after it): ``measure`` (a few real training steps
per shape, through bench's loop; imports training) -> ``companions`` (the CPU jobs that run
beside a measured one, as processes training the same step) -> ``advice`` (which settings fit a time
budget) -> ``schedule`` (the jobs on cores and GPU slots: pure arithmetic) -> ``costs``
(seconds per job from counts and step times: pure) -> ``work`` (the jobs and their step and
pass counts, from the config: pure) -> ``plan_file`` (results/plan.json, typed; torch-free,
read by ``reporting`` and ``progress``).
"""
