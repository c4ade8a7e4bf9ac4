"""Concurrency limits under real processes: the shared rate limit, the machine-wide CLI process
permits, the one-run-per-day queue, the Dagster pools of each class, the order of a multi-day backfill, and that a
terminated run leaves no CLI behind holding a process permit.

The first tests race real OS processes on real files. The rest drive a real ``dagster dev``
(webserver + daemon) with the fake CLI, and judge from the fake CLI's per-call log (start, end,
pid) and the instance's run records, never from mocks.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import threading
import time
from itertools import combinations
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.registry import load_registry
from nh_assets.gemini.process_permits import ProcessPermits
from nh_assets.gemini.rate_limit import SharedRateLimit
from nh_assets.gemini.rate_limit_stores import SQLiteStore
from nh_assets.process_stat import process_stat
from nh_assets.settings import REPO_ROOT
from nh_assets_tests.support.dagster_server import DagsterServer, overlaps, run_span, running_dagster, wait_for_runs
from nh_assets_tests.support.fakes import pipeline_env

pytestmark = pytest.mark.dagster

# fork: workers start at once (no re-import); each builds its own limiter or process permits after the fork.
_FORK = multiprocessing.get_context("fork")


def _maxoverlaps(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant (an end frees before a start takes)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, delta in events:
        open_now += delta
        peak = max(peak, open_now)
    return peak


# --- the shared rate limit, across processes ---------------------------------------------------

RATE = 5
MINUTE_MS = 60_000
TRY_FOR_S = 30.0  # a worker stops at once when the next rate permit is further off (a minute)


def _rate_worker(db: str, ready, go, window, out: str) -> None:
    limiter = SharedRateLimit(SQLiteStore(Path(db)), per_minute=RATE, per_day=1000)
    taken = []
    try:
        ready.set()
        go.wait(60)
        until = window[0] + TRY_FOR_S
        while (left := until - time.time()) > 0:
            try:
                limiter.acquire(max_wait_s=left)
            except TimeoutError:
                break
            taken.append(time.time())
    finally:
        limiter.close()
        Path(out).write_text(json.dumps({"pid": os.getpid(), "taken": taken}))


def test_two_processes_never_exceed_the_per_minute_limit_in_any_window(tmp_path):
    """Three requests made 58.5 s before the start fill most of the window and leave it 2.5 s in
    (the window is 61 s), so the sliding window (not a fixed minute) decides: 2 rate permits at once, 3
    more 2.5 s later, then none for a minute."""
    db = tmp_path / "rate.sqlite"
    SharedRateLimit(SQLiteStore(db), per_minute=RATE, per_day=1000).close()
    go, window = _FORK.Event(), _FORK.Array("d", 1)
    outs = [tmp_path / f"worker{i}.json" for i in range(2)]
    readies = [_FORK.Event() for _ in outs]
    workers = [
        _FORK.Process(target=_rate_worker, args=(str(db), ready, go, window, str(out)))
        for ready, out in zip(readies, outs)
    ]
    for worker in workers:
        worker.start()
    try:
        assert all(ready.wait(60) for ready in readies), "workers did not start"
        window[0] = time.time()
        earlier_ms = int(window[0] * 1000) - 58_500
        with sqlite3.connect(db) as conn:
            conn.executemany(
                "INSERT INTO gemini_requests (name, item_timestamp) VALUES ('gemini', ?)",
                [(earlier_ms + i,) for i in range(3)],
            )
        go.set()
    finally:
        for worker in workers:
            worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    results = [json.loads(out.read_text()) for out in outs]
    taken = sorted(t for r in results for t in r["taken"])
    # Every rate permit that exists in those seconds was used, by the two processes together; no more,
    assert len(taken) == RATE
    # and 3 of them only once the old requests had left the window.
    assert sum(t * 1000 >= earlier_ms + MINUTE_MS for t in taken) == 3

    with sqlite3.connect(db) as conn:
        stamps = sorted(ts for (ts,) in conn.execute("SELECT item_timestamp FROM gemini_requests"))
    assert len(stamps) == 3 + RATE
    for i, start in enumerate(stamps):
        in_window = sum(1 for ts in stamps[i:] if ts < start + MINUTE_MS)
        assert in_window <= RATE, f"{in_window} requests within a minute of {start}"


# --- the machine-wide CLI process permits ------------------------------------------------------


def _permit_worker(directory: str, limit: int, rounds: int, hold_s: float, out: str) -> None:
    permits = ProcessPermits(Path(directory), limit, poll_s=0.02)
    held = []
    for _ in range(rounds):
        with permits.hold():
            start = time.time()
            time.sleep(hold_s)
            held.append((start, time.time()))
    Path(out).write_text(json.dumps(held))


@pytest.mark.parametrize("limit", [1, 2])
def test_process_permits_bound_concurrent_holders_across_processes(tmp_path, limit):
    outs = [tmp_path / f"holder{i}.json" for i in range(3)]
    workers = [
        _FORK.Process(target=_permit_worker, args=(str(tmp_path / "permits"), limit, 3, 0.3, str(out))) for out in outs
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    held = [tuple(interval) for out in outs for interval in json.loads(out.read_text())]
    assert len(held) == 9
    # Exactly the limit: never more, and the permits are really used in parallel when there are several.
    assert _maxoverlaps(held) == limit


def _hold_forever(directory: str, ready: str) -> None:
    permit = ProcessPermits(Path(directory), 1).acquire()
    Path(ready).write_text(str(permit.index))
    time.sleep(600)


def test_a_killed_holder_frees_its_permit_and_waiters_say_so_once(tmp_path):
    directory, ready = tmp_path / "permits", tmp_path / "ready"
    holder = _FORK.Process(target=_hold_forever, args=(str(directory), str(ready)))
    holder.start()
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline and holder.is_alive()
            time.sleep(0.05)
        permits = ProcessPermits(directory, 1, poll_s=0.05)
        with pytest.raises(TimeoutError):
            permits.acquire(max_wait_s=0.3)
        said: list[str] = []
        threading.Timer(1.0, os.kill, (holder.pid, signal.SIGKILL)).start()
        permit = permits.acquire(said.append, max_wait_s=20)
        permits.release(permit)
    finally:
        holder.kill()
        holder.join()
    assert permit.waited_s >= 0.9
    assert len(said) == 1 and "NH_MAX_GEMINI_PROCESSES" in said[0]


# --- through a real dagster dev ------------------------------------------------------------------

LATENCY_S = 2.0
MAX_PROCESSES = 2
HANGS = "meta_project_explorer"  # the one prompt the fake CLI hangs on; no other test runs it
SEQUENTIAL = {
    spec.prompt_id
    for spec in load_registry(REPO_ROOT / "registry" / "prompts.tsv").prompts
    if spec.concurrency_class == "sequential"
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One ``dagster dev`` for the module: the fake CLI answers after LATENCY_S (and hangs for
    HANGS), and at most MAX_PROCESSES CLI processes run at once, machine-wide."""
    base = tmp_path_factory.mktemp("concurrency")
    env = {
        **os.environ,
        **pipeline_env(
            base,
            NH_MAX_GEMINI_PROCESSES=str(MAX_PROCESSES),
            FAKE_GEMINI_LATENCY=str(LATENCY_S),
            FAKE_GEMINI_LOG=str(base / "calls.jsonl"),
            FAKE_GEMINI_STATE=str(base / "fake_cli_state"),
            FAKE_GEMINI_SCENARIO="hang",
            FAKE_GEMINI_ONLY_FOR=HANGS,
            FAKE_GEMINI_RENDEZVOUS=f"{base / 'rendezvous'}:2",  # only while a test makes the folder
            PYTHONWARNINGS="ignore",
        ),
    }
    with running_dagster(env) as srv:
        yield srv


def _calls(server: DagsterServer, days: set[str]) -> list[dict]:
    log = server.dagster_home.parent / "calls.jsonl"
    calls = []
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        entry["day"] = next(l.split(":", 1)[1].strip() for l in entry["prompt"].splitlines() if l.startswith("DATE:"))
        if entry["day"] in days:
            calls.append(entry)
    return calls


def test_runs_of_one_day_queue_while_different_days_run_together(server):
    same_day, other_day = "2026-11-10", "2026-11-11"
    asset = ["ai_ecosystem_watch"]
    # The first call of each day waits for a call of the other day, so days allowed to run
    # together do, however the machine is loaded.
    rendezvous = server.dagster_home.parent / "rendezvous"
    rendezvous.mkdir()
    try:
        first, second = server.submit_daily(same_day, asset), server.submit_daily(same_day, asset)
        other = server.submit_daily(other_day, asset)
        with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
            records = wait_for_runs(instance, [first, second, other])
    finally:
        shutil.rmtree(rendezvous)
    spans = {rid: run_span(record) for rid, record in records.items()}
    assert not overlaps(spans[first], spans[second]), "two runs of the same day ran at once"
    assert overlaps(spans[other], spans[first]) or overlaps(spans[other], spans[second]), "days did not overlap"


def test_pool_of_one_serializes_sequential_steps_across_runs_and_processes_stay_capped(server):
    days = ["2026-11-12", "2026-11-13"]
    # novelty_filter and continuity_builder are `sequential`; the four research inputs are not.
    research = ["ai_ecosystem_watch", "emergent_open_source", "startup_radar", "developer_tools"]
    assets = [*research, "novelty_filter", "continuity_builder"]
    run_ids = [server.submit_daily(day, assets) for day in days]
    with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
        records = wait_for_runs(instance, run_ids)
        materialized = [
            instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=days), limit=10
            ).records
            for asset in assets
        ]
    assert overlaps(run_span(records[run_ids[0]]), run_span(records[run_ids[1]])), "the two runs did not run together"
    calls = _calls(server, set(days))
    assert sorted((c["prompt_id"], c["day"]) for c in calls) == sorted((a, d) for a in assets for d in days)
    sequential = [(c["start"], c["end"]) for c in calls if c["prompt_id"] in SEQUENTIAL]
    assert len(sequential) == 4
    for a, b in combinations(sequential, 2):
        assert not overlaps(a, b), f"two `sequential` calls overlapped: {a} {b}"
    # The machine-wide cap holds across both runs' step processes.
    assert _maxoverlaps([(c["start"], c["end"]) for c in calls]) <= MAX_PROCESSES
    waits = [r.asset_materialization.metadata["gemini.process_slot_wait_s"].value for rs in materialized for r in rs]
    assert len(waits) == len(assets) * len(days) and all(w >= 0 for w in waits)


BACKFILL_DAYS = ["2026-11-14", "2026-11-15"]
_BACKFILL_PREVIEW = """
query($params: AssetBackfillPreviewParams!) {
  assetBackfillPreview(params: $params) { assetKey { path } partitions { ranges { start end } } }
}"""


BACKFILLED = ["concept_synthesizer", "novelty_filter"]  # novelty_filter(d) needs concept_synthesizer(d-1)


def test_backfill_by_partition_names_shifts_novelty_filter_a_day_late(server):
    """Why backfills name exact per-asset ranges: given ``partitionNames``, Dagster applies them to
    the selection's roots only and maps them downstream, so across the @-1 dependency
    novelty_filter's target becomes the day after each named day (a UI range backfill does this)."""
    preview = server.graphql(
        _BACKFILL_PREVIEW,
        {"params": {"partitionNames": BACKFILL_DAYS, "assetSelection": [{"path": [a]} for a in BACKFILLED]}},
    )["assetBackfillPreview"]
    targets = {tuple(p["assetKey"]["path"]): p["partitions"]["ranges"] for p in preview}
    assert targets[("concept_synthesizer",)] == [{"start": "2026-11-14", "end": "2026-11-15"}]
    assert targets[("novelty_filter",)] == [{"start": "2026-11-15", "end": "2026-11-16"}]


def test_multi_run_backfill_runs_novelty_filter_only_after_yesterdays_concepts(server, registry):
    """Dagster's default (multi-run) asset backfill of concept_synthesizer and novelty_filter for two
    days, with exact per-asset ranges (``partitionsByAssets``). Their same-day research inputs are
    written beforehand, so the only thing ordering the two days' runs is the @-1 dependency."""
    data = server.dagster_home.parent / "data"
    inputs = {d.prompt_id for a in BACKFILLED for d in registry.by_id(a).depends_on if d.is_same_day} - {*BACKFILLED}
    assert len(inputs) == 10
    for prompt_id, day in ((p, d) for p in inputs for d in BACKFILL_DAYS):
        path = data / registry.by_id(prompt_id).output_path(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {prompt_id} for {day}\n\nResearch notes.\n")
    ranges = {"range": {"start": BACKFILL_DAYS[0], "end": BACKFILL_DAYS[-1]}}
    params = {"partitionsByAssets": [{"assetKey": {"path": [a]}, "partitions": ranges} for a in BACKFILLED]}
    backfill_id = server.launch_backfill(params)
    deadline = time.monotonic() + 240
    while True:
        status = server.backfill_status(backfill_id)
        if status != "REQUESTED":
            break
        assert time.monotonic() < deadline, "backfill did not finish"
        time.sleep(1)
    assert status == "COMPLETED_SUCCESS"

    made = _calls(server, {*BACKFILL_DAYS, "2026-11-16"})
    # Each asset once per day of the range, nothing for the day after it.
    assert sorted((c["prompt_id"], c["day"]) for c in made) == sorted((a, d) for a in BACKFILLED for d in BACKFILL_DAYS)
    calls = {(c["prompt_id"], c["day"]): c for c in made}
    concepts_day1 = calls[("concept_synthesizer", BACKFILL_DAYS[0])]
    novelty_day2 = calls[("novelty_filter", BACKFILL_DAYS[1])]
    assert novelty_day2["start"] >= concepts_day1["end"]
    assert f"concept_synthesizer for {BACKFILL_DAYS[0]}" in novelty_day2["prompt"]


def _alive(pid: int) -> bool:
    stat = process_stat(pid)
    return stat is not None and not stat.exited


def test_terminating_a_run_kills_its_cli_and_frees_the_process_permit(server):
    pids = server.dagster_home.parent / "fake_cli_state" / "hang_pids"
    run_id = server.submit_daily("2026-11-17", [HANGS])
    deadline = time.monotonic() + 90
    while not pids.exists():
        assert time.monotonic() < deadline, "the hanging CLI never started"
        time.sleep(0.2)
    cli_pid, its_child = (int(pid) for pid in pids.read_text().split())
    assert _alive(cli_pid) and _alive(its_child)
    server.graphql_client().terminate_run(run_id)
    deadline = time.monotonic() + 60
    while _alive(cli_pid) or _alive(its_child):
        assert time.monotonic() < deadline, "the CLI outlived its terminated run"
        time.sleep(0.2)
    # Every process permit is free again: none stays held by an orphaned CLI.
    permits = ProcessPermits(server.dagster_home / "gemini_process_permits", MAX_PROCESSES)
    held = [permits.acquire(max_wait_s=10) for _ in range(MAX_PROCESSES)]
    for permit in held:
        permits.release(permit)
    with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
        deadline = time.monotonic() + 60
        while not (run := instance.get_run_by_id(run_id)).is_finished:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert run.status == dg.DagsterRunStatus.CANCELED
