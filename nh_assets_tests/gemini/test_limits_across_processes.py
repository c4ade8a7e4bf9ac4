"""The shared rate limit and the machine-wide CLI process permits, raced by real OS processes on real
files: no process sees more than the limit, and a killed holder frees its permit.

The same limits under a real ``dagster dev`` are in ``e2e/test_concurrency.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from nh_assets.gemini.process_permits import ProcessPermits
from nh_assets.gemini.rate_limit import SharedRateLimit
from nh_assets.gemini.rate_limit_stores import SQLiteStore
from nh_assets_tests.support.intervals import max_open

pytestmark = pytest.mark.fast

# fork: workers start at once (no re-import); each builds its own limiter or process permits after the fork.
_FORK = multiprocessing.get_context("fork")


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


# --- the machine-wide CLI process permits --------------------------------------------------------


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
    assert max_open(held) == limit


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
