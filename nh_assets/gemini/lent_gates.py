"""Rate gates lent to one call at a time: one gate per call in flight, reused by the next.

A call's ledger (requests, usage, grounding, refusals) must be exactly its own, yet calls run at
once in one process: steps in threads of a run worker, each with its one-shot CLI
(``resource``), and sessions sharing one warm CLI (``warm_cli.service``, which tells the CLI to
send a session's requests to its gate with ``authenticate``'s ``_meta.gateway.baseUrl`` right
before ``session/new``). So each call borrows a gate of its own here, and a process opens as
many gates as it has calls at once, not one per call. A gate is lent again only after a call
that ended: a session cancelled without acknowledgement, or one that failed midway, may still
send requests, which must not land in the next call's ledger, so its gate is closed instead.
Closing waits for the server's poll, so it happens on a thread of its own, off every call's path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from nh_assets.gemini.rate_gate import GateGuard, RateGate


class LentGates:
    """Gates in front of one upstream, each lent to one call at a time."""

    def __init__(self, upstream: str, take_permit: Callable[[Callable[[str], None] | None], float], guard: GateGuard | None = None):
        self._upstream = upstream
        self._take_permit = take_permit
        self._guard = guard
        self._lock = threading.Lock()
        self._idle: list[RateGate] = []
        self._lent: set[RateGate] = set()

    def borrow(self, log: Callable[[str], None] | None = None) -> RateGate:
        """A gate with an empty ledger, for one call; its permit waits are told to ``log``."""
        with self._lock:
            gate = self._idle.pop() if self._idle else None
        if gate is None:
            gate = RateGate(self._upstream, self._take_permit, self._guard)
        gate.begin(log)
        with self._lock:
            self._lent.add(gate)
        return gate

    def give_back(self, gate: RateGate, *, reusable: bool) -> None:
        """``reusable`` only when no request of the call can still arrive."""
        with self._lock:
            self._lent.discard(gate)
            if reusable:
                self._idle.append(gate)
                return
        threading.Thread(target=gate.close, name="session-gate-close", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            gates, self._idle = [*self._idle, *self._lent], []
            self._lent.clear()
        # Together: each close waits for its server's next poll.
        closing = [threading.Thread(target=gate.close, name="lent-gate-close") for gate in gates]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join()
