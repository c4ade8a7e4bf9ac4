"""What the benchmarks measure of the machine itself: the process tree's peak memory and the load
average printed beside every figure (a figure without its load cannot be compared).

Memory is sampled two ways. Summed RSS counts a page once per process that maps it, so the step
processes forked from one forkserver count the server's imported modules again each; summed PSS
(``/proc/PID/smaps_rollup``) divides every shared page among the processes sharing it, so it adds
up to what the tree really holds. Both are printed, so the difference stays visible.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from pathlib import Path

from nh_assets.process_stat import process_stat, started_at

DAGSTER = str(Path(sys.executable).parent / "dagster")
KINDS = ["run worker", "forkserver", "step processes", "log capture", "warm CLI service", "CLIs", "other"]


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper(why: str) -> None:
    """Descendants whose parents die are re-parented to this process instead of init, so the
    benchmark still sees (counts, kills) a service or a killed day's processes; ``why`` names what
    would be lost without it."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit(f"bench: cannot become a child subreaper; {why}")


def load_average() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def pss_bytes(pid: int) -> int:
    """The process's proportional set size, 0 when it is gone (or unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class TreeMemory(threading.Thread):
    """Samples a process and all its descendants every 100 ms: the peak of the summed RSS, the peak
    of the summed PSS, the peak PSS of each kind of process, and when each pid started and was last
    seen.

    With ``count_root=False`` the root is only where the tree starts, not part of what is summed:
    a benchmark that is a child subreaper roots the tree at itself, so that a service which detaches
    from the step that started it (the warm CLI service) is still sampled once re-parented, while
    the benchmark's own process (its imports, the fake Gemini API standing in for Google) is not
    counted as the day's."""

    def __init__(self, root_pid: int, root_kind: str = "run worker", *, count_root: bool = True):
        super().__init__(daemon=True)
        self.root_pid, self.root_kind, self.count_root = root_pid, root_kind, count_root
        self.peak_bytes = 0  # summed RSS
        self.peak_pss_bytes = 0
        # kind -> (peak summed PSS, most processes at once, largest single PSS)
        self.peak_by_kind: dict[str, tuple[int, int, int]] = {}
        self.last_seen: dict[int, float] = {}
        self.started: dict[int, float] = {}  # from /proc/PID/stat, to the clock tick
        self._kinds: dict[int, str] = {}
        self._halt = threading.Event()

    def _kind(self, pid: int, parent: int) -> str:
        if pid == self.root_pid:
            return self.root_kind
        if pid not in self._kinds:
            command = _cmdline(pid)
            if "multiprocessing.forkserver" in command:
                # Step processes are forked by the server and keep its command line.
                kind = "step processes" if self._kinds.get(parent) == "forkserver" else "forkserver"
            elif "watch_orphans" in command or command.startswith("tail -F"):
                # Dagster's compute log capture: a tail and its orphan watcher per stream per step.
                kind = "log capture"
            elif " job execute " in command:
                kind = "run worker"  # ``dagster job execute`` below a root that is not counted
            elif "warm_cli" in command:
                kind = "warm CLI service"
            elif "gemini" in command:
                kind = "CLIs"
            else:
                kind = "other"
            self._kinds[pid] = kind
        return self._kinds[pid]

    def _sample(self) -> None:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        stats = {}
        for entry in os.listdir("/proc"):
            stat = process_stat(int(entry)) if entry.isdigit() else None
            if stat is not None and not stat.exited:
                parents[int(entry)], rss[int(entry)], stats[int(entry)] = stat.parent, stat.rss_bytes, stat
        members, frontier, order = {self.root_pid}, [self.root_pid], [self.root_pid]
        while frontier:
            pid = frontier.pop(0)
            for child, parent in parents.items():
                if parent == pid and child not in members:
                    members.add(child)
                    frontier.append(child)
                    order.append(child)
        now, by_kind = time.time(), {}
        pss_total = 0
        if not self.count_root:
            members.discard(self.root_pid)
        for pid in order:  # parents before children, so a child's kind can follow its parent's
            if pid not in rss:
                continue
            self.last_seen[pid] = now
            if pid not in self.started:
                self.started[pid] = started_at(stats[pid])
            if pid not in members:
                continue  # the uncounted root
            pss = pss_bytes(pid)
            pss_total += pss
            kind = self._kind(pid, parents[pid])
            total, count, largest = by_kind.get(kind, (0, 0, 0))
            by_kind[kind] = (total + pss, count + 1, max(largest, pss))
        self.peak_bytes = max(self.peak_bytes, sum(rss.get(pid, 0) for pid in members))
        self.peak_pss_bytes = max(self.peak_pss_bytes, pss_total)
        for kind, (total, count, largest) in by_kind.items():
            old = self.peak_by_kind.get(kind, (0, 0, 0))
            self.peak_by_kind[kind] = (max(old[0], total), max(old[1], count), max(old[2], largest))

    def run(self) -> None:
        while not self._halt.is_set():
            self._sample()
            time.sleep(0.1)

    def stop(self) -> int:
        """Stops sampling; the peak summed RSS, as before PSS was sampled too."""
        self._halt.set()
        self.join()
        return self.peak_bytes

    def summary_lines(self) -> list[str]:
        mb = 2**20
        lines = [
            f"  peak memory (process tree) RSS summed {self.peak_bytes / mb:.0f} MB,"
            f" PSS summed {self.peak_pss_bytes / mb:.0f} MB (sampled every 0.1 s)"
        ]
        for kind in KINDS + sorted(set(self.peak_by_kind) - set(KINDS)):
            if kind in self.peak_by_kind:
                total, count, largest = self.peak_by_kind[kind]
                lines.append(
                    f"    peak PSS {kind:<17} {total / mb:6.0f} MB, {count} at once, largest {largest / mb:.0f} MB"
                )
        return lines
