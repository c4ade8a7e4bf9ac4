"""One way to run a child process: a deadline on the child, its whole group killed, a bounded drain.

Every program the pipeline starts (the Gemini CLI, wrangler, the site build, preflight's
``--version`` probes) goes through ``run``, because each of them can hang or leave helpers
behind, and the obvious ``communicate(timeout=…)`` gets both wrong:

- it waits for the pipes to close, not for the child: a CLI that prints its answer, exits 0 and
  leaves a background helper holding stdout would be reported as a timeout and its good answer
  thrown away. Here the deadline is on the child itself, and a child that exited is a result;
- a grandchild that moved to its own session outlives the group kill and keeps the pipes open,
  so a final unbounded ``communicate()`` blocks forever. Here output is collected by reader
  threads and the drain after the exit or the kill is bounded;
- an interrupted step (its run terminated) must not leave the child running unwatched: any
  exception while waiting kills the group before it propagates, and a step in a thread, which
  Dagster cannot interrupt, has its child killed through ``cancellation``.

Each child gets its own session (``start_new_session``), so ``killpg`` reaches every process it
started in its group. Output is decoded as UTF-8 with replacement and passed through ``redact``
before anyone sees it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from nh_assets import cancellation

DRAIN_S = 2.0


@dataclass(frozen=True)
class Completed:
    stdout: str
    stderr: str  # empty when stderr was merged into stdout
    returncode: int
    timed_out: bool
    duration_s: float


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reader(stream: IO[bytes], sink: list[bytes]) -> threading.Thread:
    def pump() -> None:
        try:
            for chunk in iter(lambda: stream.read1(65536), b""):
                sink.append(chunk)
        except (OSError, ValueError):
            pass

    thread = threading.Thread(target=pump, name="subprocess-drain", daemon=True)
    thread.start()
    return thread


def _wait(proc: subprocess.Popen, timeout_s: float) -> bool:
    """True when the child exited within ``timeout_s``."""
    try:
        proc.wait(timeout=max(timeout_s, 0.0))
        return True
    except subprocess.TimeoutExpired:
        return False


def run(
    args: Sequence[str] | str,
    *,
    env: Mapping[str, str],
    cwd: str,
    timeout_s: float,
    kill_grace_s: float = 5.0,
    drain_s: float = DRAIN_S,
    merge_stderr: bool = False,
    shell: bool = False,
    pass_fds: tuple[int, ...] = (),
    redact: Callable[[str], str] = lambda text: text,
) -> Completed:
    """Run to exit or deadline. Raises ``OSError`` when the program cannot be started."""
    started = time.monotonic()
    proc = subprocess.Popen(
        args,
        shell=shell,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
        pass_fds=pass_fds,
    )
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [_reader(proc.stdout, out)]
    if not merge_stderr:
        readers.append(_reader(proc.stderr, err))
    try:
        # A terminated run stops the child (a step in a thread cannot be interrupted otherwise).
        with cancellation.stoppable(lambda: kill_group(proc.pid)):
            timed_out = not _wait(proc, timeout_s)
        cancellation.raise_if_cancelled()
        if timed_out:
            kill_group(proc.pid, signal.SIGTERM)
            if not _wait(proc, kill_grace_s):
                kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
    except BaseException:
        # Interrupted (the run was terminated): an orphaned child would run on unwatched.
        kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        # A finished child must not leave helpers behind (MCP servers, shells): reap its group.
        kill_group(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + drain_s
    for reader in readers:
        reader.join(timeout=max(deadline - time.monotonic(), 0.0))
    for stream in (proc.stdout, proc.stderr):
        if stream is not None and not any(r.is_alive() for r in readers):
            stream.close()

    def text(chunks: list[bytes]) -> str:
        return redact(b"".join(chunks).decode("utf-8", errors="replace"))

    return Completed(text(out), text(err), proc.returncode, timed_out, time.monotonic() - started)
