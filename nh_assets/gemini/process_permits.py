"""One machine-wide cap on how many Gemini CLI processes run at once: the process permits.

Dagster pools bound each concurrency class, the run queue bounds runs, and an asset may sit in
only one pool, so nothing in Dagster bounds the total number of CLI processes (each real one holds
about 260 MB). This module does: ``limit`` permit files in one directory, each taken with a non-blocking
``flock``. A permit is held by an open file, so the kernel frees it when every process holding that
file is gone, whatever way it died; no stale lock ever needs cleaning. The CLI child inherits the
permit's descriptor, so an orphaned CLI keeps its permit until it really exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator


@dataclass(frozen=True)
class ProcessPermit:
    index: int
    fd: int
    waited_s: float


class ProcessPermits:
    """Blocking acquisition of one of ``limit`` permits shared by every process on this machine."""

    def __init__(self, directory: Path, limit: int, poll_s: float = 0.1):
        if limit < 1:
            raise ValueError(f"process permit limit must be at least 1, got {limit}; set NH_MAX_GEMINI_PROCESSES")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.limit = limit
        self.poll_s = poll_s

    def _path(self, index: int) -> Path:
        return self.directory / f"permit-{index}.lock"

    def _try_one(self, index: int) -> int | None:
        fd = os.open(self._path(index), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def acquire(self, log: Callable[[str], None] = lambda _msg: None, max_wait_s: float = 3600.0) -> ProcessPermit:
        """Take a free permit, waiting (and saying so once through ``log``) while all are held."""
        started = time.monotonic()
        announced = False
        # Start at a per-process offset so concurrent callers do not all contend for permit 0.
        first = os.getpid() % self.limit
        while True:
            for step in range(self.limit):
                index = (first + step) % self.limit
                fd = self._try_one(index)
                if fd is not None:
                    return ProcessPermit(index=index, fd=fd, waited_s=time.monotonic() - started)
            if time.monotonic() - started > max_wait_s:
                raise TimeoutError(f"waited more than {max_wait_s:.0f}s for a Gemini process permit")
            if not announced:
                log(
                    f"all {self.limit} Gemini process permits are busy (NH_MAX_GEMINI_PROCESSES): waiting "
                    f"for one to free up ({self.directory})"
                )
                announced = True
            time.sleep(self.poll_s)

    def try_acquire(self) -> ProcessPermit | None:
        """A free permit now, or None: the warm CLI service must not block on the machine's permits while one of
        its own processes may come free first."""
        for index in range(self.limit):
            fd = self._try_one(index)
            if fd is not None:
                return ProcessPermit(index=index, fd=fd, waited_s=0.0)
        return None

    @staticmethod
    def release(permit: ProcessPermit) -> None:
        # Close, never LOCK_UN: an unlock would free the permit for a CLI child that inherited the
        # descriptor and still runs (an interrupted step); closing leaves the lock to the child.
        os.close(permit.fd)

    @contextlib.contextmanager
    def hold(self, log: Callable[[str], None] = lambda _msg: None, max_wait_s: float = 3600.0) -> Iterator[ProcessPermit]:
        permit = self.acquire(log, max_wait_s)
        try:
            yield permit
        finally:
            self.release(permit)
