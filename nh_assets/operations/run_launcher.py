"""The instance's run launcher: Dagster's ``DefaultRunLauncher``, plus the worker health check that
run monitoring needs to reclaim a run whose worker died.

The daemon launches every run into the code server it spawned, and the run worker is a child of
that server on this machine (``workspace.yaml`` loads a Python module, so there is no remote code
server). When the daemon's service dies, systemd stops its whole control group — daemon, code
server, run workers, step processes, CLIs — and the runs they held stay STARTED for ever:
``DefaultRunLauncher`` offers run monitoring no health check, so nothing fails them, their day
stays taken in the run queue (one run per ``dagster/partition``) and their steps' pool slots stay
claimed. Here the check reads the pid the worker recorded when it started ("Started process for
run (pid: N)") and asks the OS: a worker that no longer exists, or whose pid now belongs to a
process started later, is FAILED; run monitoring then fails the run and frees its slots, and run
retries run it again (``dagster_home/dagster.yaml``). A worker still alive is RUNNING whatever
became of the daemon — killing the daemon process alone leaves its code server and workers running
to the end — so a day is never started again beside itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

from nh_assets.process_stat import process_stat, started_at

# The message and metadata of the engine event a run worker of DefaultRunLauncher reports first
# (dagster/_grpc/impl.py, EngineEventData.in_process).
WORKER_STARTED = "Started process for run"
# A process's start time is known to a clock tick (10 ms); the margin also covers a small clock step.
START_SLACK_S = 0.5


def process_alive_since(pid: int, since: float) -> bool:
    """Whether process ``pid`` exists, is not a zombie and started no later than ``since`` (a pid
    the OS gave to a later process is not the worker's). Without /proc (macOS under launchd) only
    whether the pid exists."""
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    stat = process_stat(pid)
    if stat is None or stat.exited:
        return False
    return started_at(stat) <= since + START_SLACK_S


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, when it was reported) of the run's worker, or None if no worker reported one."""
    for entry in reversed(instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)):
        event = entry.dagster_event
        pid = event.engine_event_data.metadata.get("pid") if event and event.engine_event_data else None
        if pid is not None and (event.message or "").startswith(WORKER_STARTED):
            return int(pid.value), entry.timestamp
    return None


class LocalRunLauncher(dg.DefaultRunLauncher):
    """``DefaultRunLauncher`` whose run workers run monitoring can check (see the module doc)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        found = worker_pid(self._instance, run.run_id)
        if found is None:
            # Not started by a worker of this launcher (``dagster asset materialize`` runs in its
            # own process): not ours to judge, and UNKNOWN would make monitoring fail it.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker pid recorded")
        pid, reported = found
        if process_alive_since(pid, reported):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker pid {pid} is alive")
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker pid {pid} is gone (killed with its daemon?)")
