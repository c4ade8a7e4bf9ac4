"""What Linux's ``/proc/PID/stat`` says of a process: its state, parent, CPU time, start time and memory.

A pid alone does not name a process for long: once it ends the OS hands the pid to another.
With its start time it does, which is how the warm CLI service tells whether the Dagster process
it serves is still there and the run launcher whether a run's worker is. The service also reads its
CLIs' CPU time here, and the benchmark a process tree's memory. One parser for all of them: the
command name in parentheses may itself hold spaces and parentheses, so the fields are counted
after its last ``)``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcessStat:
    state: str  # R, S, D, Z (zombie), X (dead) …
    parent: int
    cpu_ticks: int  # user + system, in clock ticks
    start_ticks: int  # clock ticks after boot
    rss_bytes: int  # resident memory

    @property
    def exited(self) -> bool:
        """A zombie has exited (only its parent has not reaped it yet), as has a dead one."""
        return self.state in ("Z", "X")


def process_stat(pid: int) -> ProcessStat | None:
    """The process's figures, or None when there is no such process (or no ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return ProcessStat(
            state=fields[0], parent=int(fields[1]), cpu_ticks=int(fields[11]) + int(fields[12]),
            start_ticks=int(fields[19]), rss_bytes=int(fields[21]) * PAGE_BYTES,
        )
    except (OSError, IndexError, ValueError):
        return None


def started_at(stat: ProcessStat) -> float:
    """When the process started, in seconds since the epoch (its start counts ticks since boot, as
    ``/proc/uptime`` counts seconds)."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - (uptime - stat.start_ticks / TICKS_PER_S)
