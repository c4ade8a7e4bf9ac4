"""Faults around the Dagster daemon. Run monitoring can reclaim a run whose worker died only if
the run launcher can tell whether that worker lives: checked here on real processes.
"""

from __future__ import annotations

import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus

from nh_assets.operations.run_launcher import LocalRunLauncher, process_alive_since

# --- the run launcher's health check -------------------------------------------------------------


@dg.op
def _noop() -> None:
    pass


@dg.job
def _job() -> None:
    _noop()


@pytest.fixture
def repo_instance(dagster_home):
    """An instance on the repo's dagster.yaml (``instance_for_test`` would write its own)."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        yield instance


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def test_the_instance_launches_runs_with_the_checking_launcher(repo_instance):
    instance = repo_instance
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    assert instance.run_monitoring_enabled and instance.run_retries_enabled
    assert instance.run_retries_retry_on_asset_or_op_failure is False


def test_a_worker_is_running_while_its_process_lives_and_failed_once_it_is_gone(repo_instance):
    instance = repo_instance
    run = instance.create_run_for_job(_job)
    # Not launched by a worker (an in-process run): left alone.
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    worker = _sleeper()
    try:
        # What a run worker of DefaultRunLauncher reports first (dagster/_grpc/impl.py).
        instance.report_engine_event(
            f"Started process for run (pid: {worker.pid}).", run, EngineEventData.in_process(worker.pid)
        )
        assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    finally:
        worker.kill()
        worker.wait()
    health = instance.run_launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED and str(worker.pid) in health.msg


def test_a_pid_given_to_a_later_process_is_not_the_worker():
    reported = time.time()
    time.sleep(1.0)
    later = _sleeper()
    try:
        assert not process_alive_since(later.pid, reported)
        assert process_alive_since(later.pid, time.time())
    finally:
        later.kill()
        later.wait()
    assert not process_alive_since(later.pid, time.time())
