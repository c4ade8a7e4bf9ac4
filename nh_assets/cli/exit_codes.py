"""Exit codes and the one exception every command raises for an expected failure.

The codes are the old ``nh``'s, which operators' scripts test: 0 ok, 10 invalid configuration or
registry, 20 a run (or a backfill partition) failed or the day is incomplete, 30 preflight failed.
Two more are ours: 1 when ``nh`` could not reach Dagster or got an answer it does not understand,
and 2 for a bad argument (argparse's own code, kept so usage errors look the same).
"""

from __future__ import annotations

OK = 0
UNAVAILABLE = 1
USAGE = 2
INVALID = 10  # the registry's EXIT_INVALID, kept equal by a test
RUN_FAILED = 20
PREFLIGHT_FAILED = 30


class NhError(Exception):
    """An expected failure: ``main`` prints ``nh: <message>`` on one line and exits with ``code``.

    The message states the cause and the fix; it must never hold a secret value.
    """

    def __init__(self, message: str, code: int = UNAVAILABLE) -> None:
        super().__init__(message)
        self.code = code
