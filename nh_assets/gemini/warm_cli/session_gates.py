"""The rate gates of prompts that share a warm CLI: one gate per prompt in flight, reused one prompt at a time.

When one CLI serves several sessions at once, its process-wide ``GOOGLE_GEMINI_BASE_URL`` gate
would mix their requests, and a prompt's ledger (requests, usage, grounding, refusals) must be
exactly its own. So each prompt borrows a gate of its own here and the CLI is told to send that
session's requests there (``authenticate`` with ``_meta.gateway.baseUrl`` right before
``session/new``). A gate is lent again only after a prompt that ended: a session
cancelled without acknowledgement, or one that failed midway, may still send requests, which
must not land in the next prompt's ledger, so its gate is closed instead. Closing waits for the
server's poll, so it happens on a thread of its own, off every prompt's path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from nh_assets.gemini.rate_gate import GateGuard, RateGate


class SessionGates:
    """Gates in front of one upstream, each lent to one prompt at a time."""

    def __init__(self, upstream: str, take_permit: Callable[[], float], guard: GateGuard | None = None):
        self._upstream = upstream
        self._take_permit = take_permit
        self._guard = guard
        self._lock = threading.Lock()
        self._idle: list[RateGate] = []
        self._lent: set[RateGate] = set()

    def borrow(self) -> RateGate:
        """A gate with an empty ledger, for one prompt."""
        with self._lock:
            gate = self._idle.pop() if self._idle else None
        if gate is None:
            gate = RateGate(self._upstream, self._take_permit, self._guard)
        gate.begin()
        with self._lock:
            self._lent.add(gate)
        return gate

    def give_back(self, gate: RateGate, *, reusable: bool) -> None:
        """``reusable`` only when no request of the prompt's session can still arrive."""
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
        for gate in gates:
            gate.close()
