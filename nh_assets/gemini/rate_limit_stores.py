"""Where the shared Gemini request bucket lives: a SQLite file on one machine, or PostgreSQL.

The Gemini quota belongs to the account, not to a machine. On one machine a SQLite file under
``DAGSTER_HOME`` reaches every step process; once steps run on several machines the bucket must
live where they all reach it, and the Postgres database that already holds Dagster's storage is
such a place. Both stores hand pyrate-limiter's own bucket to ``SharedRateLimit``, which applies
the same policy to either; this module only knows how to open, count and describe each store.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote

from pyrate_limiter import AbstractBucket, Rate, SQLiteBucket

from nh_assets.redaction import Redactor, redact_url, secret_values, url_password

TABLE = "gemini_requests"
CONNECT_TIMEOUT_S = 10.0

SQLITE = "sqlite"
POSTGRES = "postgres"


class RateLimitStoreError(RuntimeError):
    """The bucket's store cannot be reached or opened: the message says what to fix."""


def libpq_url(url: str) -> str:
    """``postgresql+psycopg2://…`` (SQLAlchemy's form, which Dagster's storage needs) as libpq's
    ``postgresql://…``, which psycopg 3 and its connection pool accept."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}" if sep else url


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without its password, the password decoded), found by the last "@" of the userinfo.

    libpq gets the password as a separate parameter, never inside the URL: a raw ``/ # ?`` in it
    would make libpq misparse the URL and quote the pieces in its error messages (which psycopg's
    connection pool logs), and libpq itself never prints a password parameter.
    """
    raw = url_password(url)
    if raw is None:
        return url, None
    head, _, tail = url.partition(f":{raw}@")
    return f"{head}@{tail}", unquote(raw)


class BucketStore(Protocol):
    label: str  # where the bucket lives, safe to log
    background_leak: bool  # let pyrate-limiter's leaker thread prune old entries
    transient_errors: tuple[type[BaseException], ...]  # the store is busy or restarting: wait, then give up
    reopen_after_error: bool  # a transient error may have broken the connections: open afresh
    fix: str  # what to do when it stays so

    def open(self, rates: list[Rate]) -> AbstractBucket: ...

    def count_since(self, bucket: AbstractBucket, since_ms: list[int]) -> list[int]: ...

    def close(self) -> None: ...


class SQLiteStore:
    """A SQLite file guarded by a file lock: every process on this machine shares it."""

    def __init__(self, db_path: Path, table: str = TABLE):
        self.db_path = Path(db_path)
        self.table = table
        self.label = str(self.db_path)
        self.background_leak = True
        # "database is locked" after sqlite3's own 5 s; filelock's Timeout is a TimeoutError.
        self.transient_errors = (sqlite3.OperationalError, TimeoutError)
        self.reopen_after_error = False
        self.fix = (
            f"find the process holding {self.db_path} or {self.db_path}.lock (`fuser -v FILE`) and stop it; "
            "deleting both files resets the counts"
        )

    def open(self, rates: list[Rate]) -> AbstractBucket:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteBucket.init_from_file(rates, table=self.table, db_path=str(self.db_path), use_file_lock=True)

    def count_since(self, bucket: AbstractBucket, since_ms: list[int]) -> list[int]:
        assert isinstance(bucket, SQLiteBucket)
        fields = ", ".join("SUM(item_timestamp >= ?)" for _ in since_ms)
        with bucket.lock:
            cur = bucket.conn.execute(f"SELECT {fields} FROM '{self.table}'", since_ms)
            row = cur.fetchone()
            cur.close()
        return [int(value or 0) for value in row]

    def close(self) -> None:
        pass


class PostgresStore:
    """pyrate-limiter's ``PostgresBucket``: one table every machine reaches.

    Its check-and-insert runs under an exclusive table lock, so concurrent processes cannot
    both take the last permit; timestamps come from the database's clock, so machines with skewed
    clocks still count the same windows. Every connection is pinned to UTC because the bucket
    stores ``TIMESTAMP`` without time zone: two machines with different ``PGTZ`` would
    otherwise write the same instant as different values. Entries older than a day are pruned
    when the store closes rather than by pyrate-limiter's leaker thread, whose ten-second sleep
    cannot be interrupted and which would otherwise query a connection pool already closed.
    """

    def __init__(self, url: str, *, max_connections: int = 2, table: str = TABLE):
        if not url:
            raise RateLimitStoreError(
                "the postgres rate-limit store needs a URL; set NH_POSTGRES_URL (or NH_RATE_LIMIT_POSTGRES_URL)"
            )
        self.url = url
        self.table = table
        self.label = redact_url(url)
        # This URL's password in every form, and every secret of the environment.
        self._redact = Redactor([*secret_values(os.environ), *secret_values({"NH_POSTGRES_URL": url})])
        self.max_connections = max_connections
        self.background_leak = False
        import psycopg

        # PoolTimeout is an OperationalError: the server is down or restarting.
        self.transient_errors = (psycopg.OperationalError, TimeoutError)
        self.reopen_after_error = True
        self.fix = "check that the PostgreSQL server is up and NH_POSTGRES_URL (or NH_RATE_LIMIT_POSTGRES_URL)"
        self._connection_pool = None
        self._bucket = None

    def open(self, rates: list[Rate]) -> AbstractBucket:
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout
        from pyrate_limiter import PostgresBucket

        conninfo, password = split_password(libpq_url(self.url))
        connection_pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=self.max_connections,
            kwargs={
                "options": "-c TimeZone=UTC",
                "connect_timeout": int(CONNECT_TIMEOUT_S),
                **({"password": password} if password is not None else {}),
            },
            # A server restart breaks every pooled connection: test each before handing it out, and
            # never wait longer for one than for a new connection.
            check=ConnectionPool.check_connection,
            timeout=CONNECT_TIMEOUT_S,
            open=False,
            name="nh-gemini-rate-limit",
        )
        try:
            connection_pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            self._connection_pool = connection_pool
            self._bucket = PostgresBucket(connection_pool, self.table, rates)
            return self._bucket
        except (PoolTimeout, psycopg.Error) as exc:
            connection_pool.close()
            self._connection_pool = None
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            # psycopg's messages may quote the connection string; never echo a password.
            reason = self._redact(reason)
            raise RateLimitStoreError(
                f"cannot open the shared Gemini rate-limit bucket at {self.label} ({reason}); "
                "check NH_POSTGRES_URL and that the PostgreSQL server is running"
            ) from None

    def count_since(self, bucket: AbstractBucket, since_ms: list[int]) -> list[int]:
        from pyrate_limiter import PostgresBucket

        assert isinstance(bucket, PostgresBucket)
        fields = ", ".join("COUNT(*) FILTER (WHERE item_timestamp >= TO_TIMESTAMP(%s))" for _ in since_ms)
        with bucket.pool.connection() as conn:
            row = conn.execute(
                f'SELECT {fields} FROM "ratelimit___{self.table}"', [ms / 1000 for ms in since_ms]
            ).fetchone()
        return [int(value or 0) for value in row]

    def close(self) -> None:
        if self._connection_pool is None:
            return
        try:
            if self._bucket is not None:
                self._bucket.leak(self._bucket.now())
        except Exception:  # noqa: BLE001 - pruning is housekeeping; the next close retries it
            pass
        finally:
            self._connection_pool.close()
            self._connection_pool = None
            self._bucket = None


def store_for(backend: str, *, sqlite_path: Path, postgres_url: str, table: str = TABLE) -> BucketStore:
    if backend == SQLITE:
        return SQLiteStore(sqlite_path, table)
    if backend == POSTGRES:
        return PostgresStore(postgres_url, table=table)
    raise RateLimitStoreError(
        f"unknown rate-limit backend {backend!r}; set NH_RATE_LIMIT_BACKEND to sqlite or postgres"
    )
