"""The daemon killed mid-backfill, then restarted (docs/reliability.md, "Faults"), in the production shape:
``dagster-webserver`` and ``dagster-daemon run`` as separate processes on the repo's dagster.yaml,
as the units in ``deploy/`` run them (``dagster dev`` would exit with its daemon).

What is killed is what systemd kills when the daemon's service dies (``KillMode=control-group``):
every process the daemon started, whatever its session — its code server, the run workers, their
step processes, and the Gemini CLIs, which the steps' runner starts in sessions of their own (a
process-group kill leaves them running). The test freezes that tree with SIGSTOP, checks that the
moment is the one it wants, and SIGKILLs all of it. (Killing the daemon process alone is milder:
its code server outlives it, the workers finish their runs and the backfill completes unaided.)

Judged from the instance's run records, materializations and pool slots, and from the fake CLI's
call log plus the calls killed in flight; never from mocks or timings. The first tests check the
launcher's health check itself on real processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType, EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import BACKFILL_ID_TAG

from nh_assets.operations.run_launcher import LocalRunLauncher, process_alive_since
from nh_assets.pools import pool_name
from nh_assets.process_stat import process_stat, started_at
from nh_assets.registry import load_registry
from nh_assets.settings import REPO_ROOT
from nh_assets_tests.support.dagster_server import overlaps, run_span, running_webserver, start_daemon, stop_process_group
from nh_assets_tests.support.fakes import pipeline_env

pytestmark = pytest.mark.dagster

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


# --- the daemon's service killed mid-backfill ----------------------------------------------------

DAYS = ["2026-11-03", "2026-11-04", "2026-11-05"]
ASSET = "emergent_open_source"
POOL = pool_name(load_registry(REPO_ROOT / "registry" / "prompts.tsv").by_id(ASSET).concurrency_class)
RUN_FAILURE = DagsterEventType.RUN_FAILURE


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            if stat := process_stat(int(entry.name)):
                children.setdefault(stat.parent, []).append(int(entry.name))
    return children


def _tree(root: int) -> set[int]:
    children, found, todo = _children(), set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def _state(pid: int) -> str:
    stat = process_stat(pid)
    return stat.state if stat else "gone"


def _signal(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _freeze(root: int) -> set[int]:
    """SIGSTOP the daemon and every process it started, until a scan of stopped processes finds
    no new one (what a cgroup freezer does at once)."""
    frozen: set[int] = set()
    while new := _tree(root) - frozen:
        _signal(new, signal.SIGSTOP)
        frozen |= new
        deadline = time.monotonic() + 10
        while any(_state(pid) not in ("T", "t", "Z", "gone") for pid in new):
            assert time.monotonic() < deadline, "SIGSTOP did not stop the daemon's processes"
            time.sleep(0.01)
    return frozen


def _day(prompt: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in prompt.splitlines() if line.startswith("DATE:"))


def _cli_call(pid: int, cli: str) -> dict | None:
    """The day and start of a fake CLI call in flight, from its command line and /proc."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    if cli not in argv:
        return None
    stat = process_stat(pid)
    if stat is None:
        return None
    return {"pid": pid, "day": _day(argv[argv.index("-p") + 1]), "start": started_at(stat)}


def _kill_when_busy(
    daemon: subprocess.Popen, instance: dg.DagsterInstance, backfill_id: str, cli: str, calls_log: Path
) -> tuple[dict, list]:
    """Wait for the moment to kill: two days' runs STARTED with their steps inside the CLI (both
    slots of the pool held), the third day's run QUEUED behind the pool, no call finished yet.
    Then SIGKILL the daemon's whole tree. Returns each day's run status at the kill and the CLI
    calls killed in flight."""
    deadline = time.monotonic() + 240
    seen = None
    while time.monotonic() < deadline:
        # Read before freezing: a frozen writer can leave SQLite's WAL locked for readers. A run
        # read STARTED or QUEUED cannot end unnoticed before the freeze: it would need a finished
        # call (logged) or a free slot (only a finished call frees one).
        runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
        status = {r.tags["dagster/partition"]: r.status for r in runs}
        seen = sorted(s.value for s in status.values())
        if seen == ["QUEUED", "STARTED", "STARTED"]:
            frozen = _freeze(daemon.pid)
            in_flight = [call for pid in frozen if (call := _cli_call(pid, cli))]
            if len(in_flight) == 2 and not calls_log.exists():
                _signal(frozen, signal.SIGKILL)
                daemon.wait()
                return status, [{**call, "end": time.time()} for call in in_flight]
            _signal(frozen, signal.SIGCONT)
        time.sleep(0.3)
    raise AssertionError(f"never two CLI calls in flight and a run queued behind them; last seen {seen}")


def _wait_for_backfill(server, backfill_id: str, timeout_s: float = 360) -> str:
    deadline = time.monotonic() + timeout_s
    while (status := server.backfill_status(backfill_id)) == "REQUESTED":
        assert time.monotonic() < deadline, "the backfill did not finish after the daemon's restart"
        time.sleep(2)
    return status


def test_a_daemon_killed_with_its_service_mid_backfill_then_restarted_completes_it_one_run_per_day(tmp_path):
    calls_log, release = tmp_path / "calls.jsonl", tmp_path / "release_the_calls"
    # Calls wait for the release, made after the kill: two of them in flight is a state to wait for.
    fake = {"FAKE_GEMINI_HOLD_UNTIL": str(release), "FAKE_GEMINI_LOG": str(calls_log)}
    env = {**os.environ, **pipeline_env(tmp_path, **fake, PYTHONWARNINGS="ignore")}
    home = Path(env["DAGSTER_HOME"])
    ranges = {"range": {"start": DAYS[0], "end": DAYS[-1]}}
    target = {"partitionsByAssets": [{"assetKey": {"path": [ASSET]}, "partitions": ranges}]}
    with running_webserver(env) as server, dg.DagsterInstance.from_config(str(home)) as instance:
        # Launched before any daemon runs, so the first daemon's first backfill tick requests it.
        backfill_id = server.launch_backfill(target)
        daemon = start_daemon(env, home / "daemon_killed.log")
        try:
            at_kill, killed = _kill_when_busy(daemon, instance, backfill_id, env["NH_GEMINI_CLI"], calls_log)
        finally:
            stop_process_group(daemon)
        release.touch()
        restarted = start_daemon(env, home / "daemon_restarted.log")
        try:
            status = _wait_for_backfill(server, backfill_id)
        finally:
            stop_process_group(restarted)

        log = (home / "daemon_restarted.log").read_text()
        assert status == "COMPLETED_SUCCESS", f"the backfill ended {status}; the daemon's log ends:\n{log[-2000:]}"
        records = instance.get_run_records(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
        materialized = {
            day: instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(ASSET), asset_partitions=[day]), limit=10
            ).records
            for day in DAYS
        }
        pool = instance.event_log_storage.get_concurrency_info(POOL)
        failures = {
            r.dagster_run.run_id: [e.message for e in instance.all_logs(r.dagster_run.run_id, of_type=RUN_FAILURE)]
            for r in records
        }

    by_day: dict[str, list] = {day: [] for day in DAYS}
    for record in sorted(records, key=lambda r: r.create_timestamp):
        by_day[record.dagster_run.tags["dagster/partition"]].append(record)
    started = {day for day, status in at_kill.items() if status == dg.DagsterRunStatus.STARTED}
    assert started == {call["day"] for call in killed}
    for day in started:
        # The run whose worker died is failed by run monitoring, then rerun (run retries).
        assert len(by_day[day]) == 2, [r.dagster_run.status for r in by_day[day]]
        dead, rerun = by_day[day]
        assert dead.dagster_run.status == dg.DagsterRunStatus.FAILURE
        assert "is gone" in failures[dead.dagster_run.run_id][0]
        assert rerun.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert rerun.dagster_run.parent_run_id == dead.dagster_run.run_id
    for day in set(DAYS) - started:
        # The run still queued is launched by the restarted daemon once the dead steps' slots are
        # freed: the queue holds runs whose steps would all wait for a slot.
        assert [r.dagster_run.status for r in by_day[day]] == [dg.DagsterRunStatus.SUCCESS]
    for day, runs in by_day.items():
        for a, b in combinations(runs, 2):
            assert not overlaps(run_span(a), run_span(b)), f"two runs of {day} at once"
        # Each day materialized once, by its last run.
        assert [m.run_id for m in materialized[day]] == [runs[-1].dagster_run.run_id]

    # The Gemini work: each day called once to the end, never two calls of a day at once.
    finished = [json.loads(line) for line in calls_log.read_text().splitlines()]
    for call in finished:
        call["day"] = _day(call["prompt"])
    assert sorted(c["day"] for c in finished) == DAYS
    for a, b in combinations([*killed, *finished], 2):
        assert a["day"] != b["day"] or not overlaps((a["start"], a["end"]), (b["start"], b["end"])), (a, b)

    # The slots the killed steps held were freed: none is claimed or awaited any more.
    assert (pool.claimed_slots, pool.pending_steps) == ([], [])
