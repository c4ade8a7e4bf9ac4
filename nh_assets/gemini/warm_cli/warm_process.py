"""One warm CLI: a CLI process in ACP mode (``AcpConnection``) with its own rate gates, its
process permit and its history.

Each warm CLI talks to the API only through gates, so a prompt's requests — a search loop's
three, the CLI's own retries — are counted for that prompt and each takes a rate permit from the
shared bucket, exactly as in a one-shot call. A CLI serving one prompt at a time counts them at
the gates of its environment; a CLI serving several sessions at once (``sessions`` > 1) points
each new session at the prompt's own gate (``open_session``). It holds one of the machine's
process permits for its whole life (it holds ~200 MB whether busy or idle), and passes the
permit's descriptor on to the CLI, so a CLI that outlives the service keeps its permit until it
really exits. A CLI that has served its share, or left a session it could not cancel, is
*draining*: it takes no new session and ends when its last prompt has.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nh_assets.gemini.process_permits import ProcessPermit, ProcessPermits
from nh_assets.gemini.rate_gate import GateGuard, RateGate
from nh_assets.gemini.warm_cli.connection import AcpConnection, CliExited
from nh_assets.process_stat import TICKS_PER_S, process_stat

_STOPPING = threading.Lock()


def _with_descendants(pid: int) -> tuple[int, ...]:
    found, frontier = [pid], [pid]
    while frontier:
        current = frontier.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                children = [int(child) for child in task.read_text().split()]
            except (OSError, ValueError):
                continue
            found += children
            frontier += children
    return tuple(found)


@dataclass
class WarmProcess:
    cli: AcpConnection
    gates: dict[str, RateGate]
    permit: ProcessPermit
    approval_mode: str
    sessions: int = 1  # prompts it may serve at once
    started: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    prompts: int = 0  # sessions opened so far
    in_flight: int = 0
    draining: bool = False
    stopped: bool = False

    pids: tuple[int, ...] = ()
    # ``authenticate`` sets the base URL of every later ``session/new``: the pair must not interleave.
    _opening: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def busy(self) -> bool:
        return self.in_flight > 0

    def has_room(self, approval_mode: str) -> bool:
        return self.alive and not self.draining and self.approval_mode == approval_mode and self.in_flight < self.sessions

    def open_session(self, cwd: str, timeout_s: float, gateway: tuple[str, str] | None = None) -> str:
        """A new session in ``cwd``; with ``gateway`` = (auth method, gate URL) its requests go to that gate."""
        if gateway is None:
            return self.cli.new_session(cwd, timeout_s)
        method, url = gateway
        with self._opening:
            self.cli.authenticate(method, url, timeout_s)
            return self.cli.new_session(cwd, timeout_s)

    def cpu_seconds(self) -> float:
        """CPU used so far by the CLI's processes (a wrapper's child included), from /proc."""
        stats = [process_stat(pid) for pid in self.pids]
        return sum(stat.cpu_ticks for stat in stats if stat) / TICKS_PER_S

    @property
    def alive(self) -> bool:
        return not self.cli.exited.is_set()

    @classmethod
    def start(
        cls,
        *,
        cli: str,
        approval_mode: str,
        skip_trust: bool,
        env: dict[str, str],
        cwd: str,
        upstreams: dict[str, str],
        take_permit: Callable[[Callable[[str], None] | None], float],
        permit: ProcessPermit,
        sessions: int = 1,
        guard: GateGuard | None = None,
        init_timeout_s: float,
        redact: Callable[[str], str],
    ) -> "WarmProcess":
        """Start and initialize; raises what the CLI raised, after ending it and closing its gates."""
        gates = {name: RateGate(url, take_permit, guard) for name, url in upstreams.items()}
        args = [cli, "--acp", "--approval-mode", approval_mode, *(["--skip-trust"] if skip_trust else [])]
        child_env = {**env, **{name: gate.url for name, gate in gates.items()}}
        warm = None
        try:
            warm = AcpConnection(args, env=child_env, cwd=cwd, pass_fds=(permit.fd,), redact=redact)
            warm.initialize(init_timeout_s)
        except CliExited as exc:
            assert warm is not None
            said = warm.first_error_line()
            warm.kill()
            for gate in gates.values():
                gate.close()
            raise type(exc)(f"{exc}: {said}" if said else str(exc)) from None
        except BaseException:
            if warm is not None:
                warm.kill()
            for gate in gates.values():
                gate.close()
            raise
        return cls(
            cli=warm, gates=gates, permit=permit, approval_mode=approval_mode, sessions=sessions,
            pids=_with_descendants(warm.pid),
        )

    def stop(self, grace_s: float = 2.0) -> None:
        with _STOPPING:
            if self.stopped:
                return
            self.stopped = True
        self.cli.close(grace_s)
        for gate in self.gates.values():
            gate.close()
        ProcessPermits.release(self.permit)
