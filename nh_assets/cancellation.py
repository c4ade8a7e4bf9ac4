"""Stopping the work of a terminated run that runs in threads of one process.

Dagster stops a step process by raising an interrupt in it; a step that runs in a thread of the
run worker (``step_threads``) cannot be interrupted that way, and it spends its life waiting on a
child process (the Gemini CLI) or on the warm CLI service. So what waits registers how to stop
its wait here (kill the CLI's group, shut the service's socket), and the executor, once Dagster
has told it the run is terminated, stops them all; the step then raises ``Cancelled``, which
Dagster records as an interrupted step like a step process's ``KeyboardInterrupt``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


class Cancelled(KeyboardInterrupt):
    """The run this work belonged to was terminated. A ``KeyboardInterrupt``, so no
    ``except Exception`` on the way up swallows it, and Dagster records an interrupt."""


_lock = threading.Lock()
_stops: dict[int, Callable[[], None]] = {}
_cancelled = threading.Event()


@contextlib.contextmanager
def stoppable(stop: Callable[[], None]) -> Iterator[None]:
    """While the block runs, ``cancel_all`` calls ``stop`` (from another thread) to end its wait.
    Entered after a cancellation, the block's work is stopped at once."""
    token = id(stop)
    with _lock:
        _stops[token] = stop
    if _cancelled.is_set():
        stop()
    try:
        yield
    finally:
        with _lock:
            _stops.pop(token, None)


def raise_if_cancelled() -> None:
    if _cancelled.is_set():
        raise Cancelled("the run was terminated")


def reset() -> None:
    """A new run in this process: nothing of it is cancelled yet."""
    _cancelled.clear()


def cancel_all() -> None:
    """Stop every registered wait of this process; later ones stop as they begin."""
    _cancelled.set()
    with _lock:
        stops = list(_stops.values())
    for stop in stops:
        stop()
