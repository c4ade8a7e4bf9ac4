"""What the Gemini service told one step that every other step must know at once.

Two answers hold for hours, for everyone using the same account: a model whose daily quota is
spent (until the quota day resets) and credentials the service refused (until they change).
Each step runs in its own process, possibly on another machine, so the memory lives beside the
shared rate-limit bucket (a SQLite file under ``DAGSTER_HOME``, or the Postgres database every
machine reaches). An entry is a (kind, key) pair with the instant it stops holding and the one
line of cause to repeat; the first writer's cause stands while it holds, so the operator reads
the same cause from every step, and ``remember`` says whether this step was the first to learn
it (the one that alerts).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from nh_assets.gemini.rate_gate import GateGuard, GateRefusal
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.gemini.model_quotas import ModelBuckets
from nh_assets.gemini.quota import QuotaError, QuotaViolation, quota_day_reset
from nh_assets.gemini.rate_limit_stores import (
    CONNECT_TIMEOUT_S,
    POSTGRES,
    SQLITE,
    RateLimitStoreError,
    libpq_url,
    split_password,
)

SPENT = "spent"  # key: a model name
AUTH = "auth"  # key: a fingerprint of the credentials, never the credentials
TABLE = "nh_gemini_service_memory"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (kind TEXT NOT NULL, key TEXT NOT NULL, until_s DOUBLE PRECISION NOT NULL, "
    "cause TEXT NOT NULL, since_s DOUBLE PRECISION NOT NULL, PRIMARY KEY (kind, key))"
)
_UPSERT = (
    f"INSERT INTO {TABLE} (kind, key, until_s, cause, since_s) VALUES ({{p}}, {{p}}, {{p}}, {{p}}, {{p}}) "
    f"ON CONFLICT (kind, key) DO UPDATE SET until_s = excluded.until_s, cause = excluded.cause, "
    f"since_s = excluded.since_s WHERE {TABLE}.until_s <= excluded.since_s"
)
_RECALL = f"SELECT cause, until_s FROM {TABLE} WHERE kind = {{p}} AND key = {{p}} AND until_s > {{p}}"
_SINCE = f"SELECT key, cause, until_s, since_s FROM {TABLE} WHERE kind = {{p}} AND since_s > {{p}} ORDER BY since_s"
# Added to a cause repeated from the memory: the step that learnt it is the one that alerts.
REMEMBERED = "remembered from an earlier step"


class ServiceMemory(Protocol):
    def remember(self, kind: str, key: str, until_s: float, cause: str) -> bool: ...

    def recall(self, kind: str, key: str) -> tuple[str, float] | None: ...

    def recorded_since(self, kind: str, after_s: float) -> list[tuple[str, str, float, float]]: ...


class SQLiteMemory:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute(_SCHEMA)
        return conn

    def remember(self, kind: str, key: str, until_s: float, cause: str) -> bool:
        """Record the entry unless one still holds; True when this call recorded it."""
        with self._connect() as conn:
            changed = conn.execute(_UPSERT.format(p="?"), (kind, key, until_s, cause, time.time())).rowcount
        conn.close()
        return changed > 0

    def recall(self, kind: str, key: str) -> tuple[str, float] | None:
        """(cause, until) of the entry that holds now, or None."""
        conn = self._connect()
        try:
            row = conn.execute(_RECALL.format(p="?"), (kind, key, time.time())).fetchone()
        finally:
            conn.close()
        return (row[0], float(row[1])) if row else None

    def recorded_since(self, kind: str, after_s: float) -> list[tuple[str, str, float, float]]:
        """(key, cause, until, since) of the entries first recorded after ``after_s``, oldest first."""
        conn = self._connect()
        try:
            return [tuple(row) for row in conn.execute(_SINCE.format(p="?"), (kind, after_s)).fetchall()]
        finally:
            conn.close()


# Two sessions running CREATE TABLE IF NOT EXISTS at once can both miss the table and one then
# fails on the catalog's unique index (UniqueViolation): the first steps of a day do exactly that,
# so the creation holds a transaction-scoped advisory lock of its own.
_SCHEMA_LOCK = int.from_bytes(hashlib.sha256(TABLE.encode()).digest()[:8], "big", signed=True)


class PostgresMemory:
    def __init__(self, url: str):
        if not url:
            raise RateLimitStoreError("the postgres service memory needs a URL; set NH_POSTGRES_URL")
        self._conninfo, self._password = split_password(libpq_url(url))
        self._schema_ready = False

    def _connect(self):
        import psycopg

        extra = {"password": self._password} if self._password is not None else {}
        conn = psycopg.connect(self._conninfo, connect_timeout=int(CONNECT_TIMEOUT_S), autocommit=True, **extra)
        if not self._schema_ready:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute(_SCHEMA)
            self._schema_ready = True
        return conn

    def remember(self, kind: str, key: str, until_s: float, cause: str) -> bool:
        with self._connect() as conn:
            return conn.execute(_UPSERT.format(p="%s"), (kind, key, until_s, cause, time.time())).rowcount > 0

    def recall(self, kind: str, key: str) -> tuple[str, float] | None:
        with self._connect() as conn:
            row = conn.execute(_RECALL.format(p="%s"), (kind, key, time.time())).fetchone()
        return (row[0], float(row[1])) if row else None

    def recorded_since(self, kind: str, after_s: float) -> list[tuple[str, str, float, float]]:
        with self._connect() as conn:
            return [tuple(row) for row in conn.execute(_SINCE.format(p="%s"), (kind, after_s)).fetchall()]


def memory_path(rate_limit_db: str | Path) -> Path:
    """The SQLite memory's file: beside the rate-limit bucket's."""
    return Path(rate_limit_db).with_name("gemini_service_memory.sqlite")


def memory_for(backend: str, *, sqlite_path: Path, postgres_url: str) -> ServiceMemory:
    """The memory beside the rate-limit bucket: the same backend, the same database."""
    if backend == SQLITE:
        return SQLiteMemory(sqlite_path)
    if backend == POSTGRES:
        return PostgresMemory(postgres_url)
    raise RateLimitStoreError(f"unknown rate-limit backend {backend!r}; set NH_RATE_LIMIT_BACKEND to sqlite or postgres")


_CREDENTIAL_NAMES = (
    "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_GCA", "GEMINI_CLI_USE_COMPUTE_ADC",
)


def credentials_fingerprint(env: dict[str, str]) -> str:
    """A short hash that changes when the CLI's credentials change: the credential variables and
    the cached Google login. Only the hash is stored; it cannot be turned back into a secret."""
    digest = hashlib.sha256()
    for name in _CREDENTIAL_NAMES:
        digest.update(f"{name}={env.get(name, '')}\0".encode())
    home = env.get("GEMINI_CLI_HOME") or env.get("HOME") or ""
    for cached in ("oauth_creds.json", "google_accounts.json"):
        try:
            digest.update((Path(home) / ".gemini" / cached).read_bytes())
        except OSError:
            pass
    return digest.hexdigest()[:16]


class MemoryGuard(GateGuard):
    """The gate's view of the memory: a spent model is refused before any request leaves, and a
    429 naming a per-day quota or a 401/403 is remembered for every other step."""

    def __init__(
        self, memory: ServiceMemory, credentials: str, log: Callable[[str], None] = lambda _m: None,
        buckets: ModelBuckets | None = None,
    ):
        self.memory = memory
        self.credentials = credentials
        self.log = log
        self.buckets = buckets  # the declared per-model quotas, counted in the shared store

    def close(self) -> None:
        if self.buckets is not None:
            self.buckets.close()

    def fail_if_refused(self, model: str, *, auth: bool = True) -> None:
        """Fail at once, without starting a CLI, when the service already said no for today
        (``auth=False``: after a call, whose own auth failure speaks for itself)."""
        try:
            refused = self.memory.recall(AUTH, self.credentials) if auth else None
            spent = self.memory.recall(SPENT, model)
        except Exception as exc:  # noqa: BLE001 - sqlite3 or psycopg: the store, not the call, failed
            raise GeminiFailure(
                FailureKind.RATE_LIMIT_STORE, f"the shared service memory failed ({type(exc).__name__})"
            ) from None
        if refused is not None:
            raise GeminiFailure(
                FailureKind.AUTH, f"{refused[0]} ({REMEMBERED} until the credentials change)"
            )
        if spent is not None:
            raise GeminiFailure(FailureKind.QUOTA_SPENT, spent[0])

    def learn(self, failure: GeminiFailure, quota: list[tuple[str, QuotaError]]) -> GeminiFailure:
        """An auth failure is remembered for every other step; a per-minute 429 keeps the delay
        the API asked for."""
        if failure.kind is FailureKind.AUTH:
            reset = quota_day_reset(datetime.now(timezone.utc))
            self.memory.remember(AUTH, self.credentials, reset.timestamp(), failure.cause)
        if failure.kind is FailureKind.RATE_LIMIT:
            delays = [q.retry_delay_s for _model, q in quota if q.retry_delay_s is not None]
            if delays:
                failure.retry_after_s = max(delays)
        return failure

    def admit(self, model: str) -> float:
        try:
            spent = self.memory.recall(SPENT, model)
        except Exception as exc:  # noqa: BLE001 - sqlite3 or psycopg: refused with the store named, not a dropped request
            raise GateRefusal(FailureKind.RATE_LIMIT_STORE, f"the shared service memory failed ({type(exc).__name__})") from None
        if spent is not None:
            raise GateRefusal(FailureKind.QUOTA_SPENT, spent[0])
        return self.buckets.take(model, self.log) if self.buckets is not None else 0.0

    def observe(self, model: str, status: int, quota: QuotaError | None) -> None:
        try:
            self._remember(model, status, quota)
        except Exception as exc:  # noqa: BLE001 - the answer still reaches the CLI; the step reports it
            self.log(f"could not record what the API answered ({status}) in the shared memory: {type(exc).__name__}")

    def _remember(self, model: str, status: int, quota: QuotaError | None) -> None:
        now = datetime.now(timezone.utc)
        reset = quota_day_reset(now)
        daily = quota.daily(model) if quota is not None else None
        if daily is not None:
            if self.memory.remember(SPENT, model, reset.timestamp(), spent_cause(model, daily, reset)):
                self.log(f"{model}: daily quota spent ({daily.quota_id}); no more requests until {reset:%Y-%m-%d %H:%M} UTC")
        elif status in (401, 403):
            cause = f"the Gemini API answered {status} to the pipeline's credentials ({'UNAUTHENTICATED' if status == 401 else 'PERMISSION_DENIED'})"
            self.memory.remember(AUTH, self.credentials, reset.timestamp(), cause)


def spent_cause(model: str, violation: QuotaViolation, reset: datetime) -> str:
    limit = f"limit {violation.limit}" if violation.limit is not None else "its limit"
    return (
        f"{model}'s daily quota is spent: Google stated {violation.quota_id} ({limit} requests a day); "
        f"it resets at {reset:%Y-%m-%d %H:%M} UTC (midnight America/Los_Angeles)"
    )


def open_guard(
    *, backend: str, rate_limit_db: str | Path, postgres_url: str, model_quotas: dict, env: dict[str, str],
    log: Callable[[str], None],
) -> MemoryGuard:
    """The guard of a process's gates: the memory and the per-model buckets beside the global bucket."""
    memory = memory_for(backend, sqlite_path=memory_path(rate_limit_db), postgres_url=postgres_url)
    buckets = ModelBuckets(
        {model: (limits[0], limits[1]) for model, limits in model_quotas.items()},
        backend=backend, sqlite_path=rate_limit_db, postgres_url=postgres_url,
    )
    return MemoryGuard(memory, credentials_fingerprint(env), log, buckets)
