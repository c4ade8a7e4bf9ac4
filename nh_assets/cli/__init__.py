"""``nh``: the operator's command line, a thin layer over Dagster.

The old NeuroHelix ``nh`` was its own orchestrator; this one is not. It submits runs and backfills
to the running instance through the webserver's GraphQL API (so the run queue's one-run-per-day
limit and the backfill daemon apply), and reads state from the instance's storage (materialization
metadata, code versions, run records). Each command lives in its own module; ``main`` only parses
arguments, loads ``.env`` as ``dagster dev`` does, and turns known failures into one line and an
exit code (``exit_codes``).
"""
