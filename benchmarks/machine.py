"""What the benchmarks measure of the machine itself: the process tree's peak memory and the load
average printed beside every figure (a figure without its load cannot be compared)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from nh_assets.process_stat import process_stat

DAGSTER = str(Path(sys.executable).parent / "dagster")


def load_average() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


class TreeMemory(threading.Thread):
    """Samples the summed RSS of a process and all its descendants every 100 ms."""

    def __init__(self, root_pid: int):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.peak_bytes = 0
        self._halt = threading.Event()

    def _tree_rss(self) -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            stat = process_stat(int(entry)) if entry.isdigit() else None
            if stat is not None:
                parents[int(entry)], rss[int(entry)] = stat.parent, stat.rss_bytes
        members, frontier = {self.root_pid}, [self.root_pid]
        while frontier:
            pid = frontier.pop()
            for child, parent in parents.items():
                if parent == pid and child not in members:
                    members.add(child)
                    frontier.append(child)
        return sum(rss.get(pid, 0) for pid in members)

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak_bytes = max(self.peak_bytes, self._tree_rss())
            time.sleep(0.1)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak_bytes
