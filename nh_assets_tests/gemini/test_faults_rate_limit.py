"""Faults of the shared rate-limit store, with real processes and a real PostgreSQL server: a SQLite
bucket held by another process (its file lock, or a write transaction) beyond a step's patience,
and the Postgres bucket's server restarting and going away mid-run."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nh_assets.gemini.rate_limit import SharedRateLimit
from nh_assets.gemini.rate_limit_stores import TABLE, PostgresStore, RateLimitStoreError, SQLiteStore

HOLD_FILE_LOCK = """
import sys
from filelock import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
"""
HOLD_WRITE_TRANSACTION = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


class Holder:
    """Another real process holding the bucket until ``release``."""

    def __init__(self, code: str, target: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.wait(timeout=30) == 0


def _sqlite_limiter(db: Path, patience_s: float, per_minute: int = 5) -> SharedRateLimit:
    return SharedRateLimit(SQLiteStore(db), per_minute=per_minute, per_day=1000, patience_s=patience_s)


@pytest.mark.dagster
@pytest.mark.parametrize(
    ("code", "target"), [(HOLD_FILE_LOCK, "rate.sqlite.lock"), (HOLD_WRITE_TRANSACTION, "rate.sqlite")],
    ids=["file_lock", "write_transaction"],
)
def test_a_bucket_held_past_the_steps_patience_fails_in_one_line_then_works_again(tmp_path, code, target):
    db = tmp_path / "rate.sqlite"
    limiter = _sqlite_limiter(db, patience_s=1.0)
    try:
        holder = Holder(code, tmp_path / target)
        try:
            with pytest.raises(RateLimitStoreError) as caught:
                limiter.acquire()
        finally:
            holder.release()
        message = str(caught.value)
        assert "\n" not in message and str(db) in message and "fuser" in message
        assert "stayed" in message and "more than 1s" in message
        limiter.acquire()  # the holder is gone: the same limiter goes on
        assert limiter.usage()["last_minute"] == 1
    finally:
        limiter.close()


@pytest.mark.dagster
def test_a_bucket_held_for_less_than_the_patience_is_waited_for(tmp_path):
    db = tmp_path / "rate.sqlite"
    limiter = _sqlite_limiter(db, patience_s=120.0)
    try:
        holder = Holder(HOLD_FILE_LOCK, tmp_path / "rate.sqlite.lock")
        got: list[object] = []
        waiter = threading.Thread(target=lambda: got.append(limiter.acquire()))
        waiter.start()
        waiter.join(timeout=1.0)
        assert waiter.is_alive() and not got  # still waiting behind the holder, not failed
        holder.release()
        waiter.join(timeout=60)
        assert len(got) == 1 and limiter.usage()["last_minute"] == 1
    finally:
        limiter.close()


def _count(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(f'SELECT COUNT(*) FROM "ratelimit___{TABLE}"').fetchone()[0]


@pytest.mark.services
def test_the_postgres_bucket_survives_a_server_restart_and_never_exceeds_its_limit(postgres_server, postgres_url):
    limit = 4
    limiter = SharedRateLimit(PostgresStore(postgres_url), per_minute=limit, per_day=1000, patience_s=30.0)
    try:
        for _ in range(2):
            limiter.acquire()
        postgres_server.pg_ctl("-m", "fast", "restart")  # every pooled connection is now broken
        for _ in range(2):
            limiter.acquire()
        # The window is full: the next request waits (here: gives up waiting) rather than passing.
        with pytest.raises(TimeoutError):
            limiter.acquire(max_wait_s=2.0)
        assert _count(postgres_url) == limit
    finally:
        limiter.close()


@pytest.mark.services
def test_the_postgres_bucket_gone_past_the_patience_fails_in_one_line(postgres_server, postgres_url, monkeypatch):
    # Each attempt to reach a stopped server waits this long for a connection.
    monkeypatch.setattr("nh_assets.gemini.rate_limit_stores.CONNECT_TIMEOUT_S", 2.0)
    limiter = SharedRateLimit(PostgresStore(postgres_url), per_minute=4, per_day=1000, patience_s=2.0)
    try:
        limiter.acquire()
        postgres_server.pg_ctl("-m", "fast", "stop")
        try:
            with pytest.raises(RateLimitStoreError) as caught:
                limiter.acquire()
        finally:
            postgres_server.pg_ctl("start")
        message = str(caught.value)
        assert "\n" not in message and "unavailable" in message and "PostgreSQL server is up" in message
        limiter.acquire()  # back: the same limiter recovers
        assert _count(postgres_url) == 2
    finally:
        limiter.close()
