"""A real ``dagster dev`` (webserver + daemon) on 127.0.0.1 for tests that need the run queue,
backfills or the UI, or the production shape: ``dagster-webserver`` and ``dagster-daemon run`` as
separate processes, as the systemd units in ``deploy/`` run them. Each is started in its own
process group and always torn down."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from nh_assets.settings import REPO_ROOT

BIN = Path(sys.executable).parent
DAGSTER = str(BIN / "dagster")
WORKSPACE = str(REPO_ROOT / "workspace.yaml")

_LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
  }
}"""

_BACKFILL_STATUS = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status } ... on PythonError { message } } }"""


@dataclass(frozen=True)
class DagsterServer:
    url: str
    port: int
    dagster_home: Path
    log: Path

    def graphql_client(self):
        from dagster_graphql import DagsterGraphQLClient

        return DagsterGraphQLClient("127.0.0.1", port_number=self.port)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """POST one GraphQL document (for what the python client lacks, such as backfills)."""
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def launch_backfill(self, params: dict) -> str:
        """Launch an asset backfill (``LaunchBackfillParams``); returns its id."""
        launched = self.graphql(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {launched}")
        return launched["backfillId"]

    def submit_daily(self, day: str, assets: list[str]) -> str:
        """Submit the daily job for ``day`` limited to ``assets``, as the UI's Materialize does."""
        from nh_assets.definitions import DAILY_JOB_NAME

        return self.graphql_client().submit_job_execution(
            DAILY_JOB_NAME, tags={"dagster/partition": day}, asset_selection=[[a] for a in assets]
        )

    def backfill_status(self, backfill_id: str) -> str:
        """REQUESTED while it runs, then COMPLETED_SUCCESS, COMPLETED_FAILED, FAILED, CANCELED …"""
        return self.graphql(_BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]


def wait_for_runs(instance, run_ids: list[str], timeout_s: float = 150) -> dict:
    """Wait until every run finished; assert each succeeded; return their RunRecords by id."""
    import dagster as dg

    deadline = time.monotonic() + timeout_s
    while True:
        records = {rid: instance.get_run_record_by_id(rid) for rid in run_ids}
        if all(r is not None and r.dagster_run.is_finished for r in records.values()):
            break
        assert time.monotonic() < deadline, {rid: r and r.dagster_run.status for rid, r in records.items()}
        time.sleep(0.5)
    for rid, record in records.items():
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS, f"run {rid} ended {record.dagster_run.status}"
    return records


def run_span(record) -> tuple[float, float]:
    assert record.start_time and record.end_time
    return record.start_time, record.end_time


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def stop_process_group(proc: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM a server started with ``start_new_session=True`` and all its children; SIGKILL
    whatever is left after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def free_port() -> int:
    """A free port below the kernel's ephemeral range. A port asked of the kernel (bind to 0) is
    free only until a child binds it seconds later, and meanwhile Dagster takes its own gRPC ports
    from the same range; below it, only the tests' own choices can meet."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{proc.args[0]} did not answer within {timeout_s:.0f}s:\n{log.read_text()[-4000:]}")


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as handle:
        return subprocess.Popen(
            args, env=env, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _apply_pools(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "nh_assets.pools", "apply"], env=env, check=True, capture_output=True, timeout=120
    )


@contextlib.contextmanager
def _serving(args: list[str], env: dict[str, str], log: Path, timeout_s: float) -> Iterator[DagsterServer]:
    port = free_port()
    proc = _start([*args, "-h", "127.0.0.1", "-p", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc, log, timeout_s)
        yield DagsterServer(url=url, port=port, dagster_home=Path(env["DAGSTER_HOME"]), log=log)
    finally:
        stop_process_group(proc)


@contextlib.contextmanager
def running_dagster(env: dict[str, str], *, timeout_s: float = 120.0) -> Iterator[DagsterServer]:
    """Run ``dagster dev`` with ``env`` (must hold DAGSTER_HOME) until the block exits."""
    home = Path(env["DAGSTER_HOME"])
    _apply_pools(env)
    with _serving([DAGSTER, "dev", "-w", WORKSPACE], env, home / "dagster_dev.log", timeout_s) as server:
        yield server


@contextlib.contextmanager
def running_webserver(env: dict[str, str], *, timeout_s: float = 120.0) -> Iterator[DagsterServer]:
    """Run ``dagster-webserver`` alone (no daemon: nothing is launched until one runs), as
    deploy/nh-assets-webserver.service does, after ``nh_assets.pools apply`` as the daemon's
    unit does first."""
    home = Path(env["DAGSTER_HOME"])
    _apply_pools(env)
    with _serving([str(BIN / "dagster-webserver"), "-w", WORKSPACE], env, home / "webserver.log", timeout_s) as server:
        yield server


def start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``dagster-daemon run`` in its own process group, as deploy/nh-assets-daemon.service
    does; the caller stops it (``stop_process_group``)."""
    return _start([str(BIN / "dagster-daemon"), "run", "-w", WORKSPACE], env, log)
