"""The Gemini request budget, shared by every process that calls Gemini.

Each run executes in its own process (its steps in threads, or in processes of their own with
``NH_EXECUTOR=multiprocess``), and several runs and backfills may execute at once, so an
in-memory token bucket would give each process its own budget. The limit therefore lives in a shared store (``rate_limit_stores``: a SQLite file under
``DAGSTER_HOME`` on one machine, PostgreSQL across machines): every acquisition, from any
process, is counted in the same sliding windows. The per-minute window is waited out; the
per-day window is a hard cap that fails at once with a clear message, because waiting hours
inside a step helps nobody.

The store is another process's too, and can be held or gone for a while: a SQLite file locked by
another process (its file lock, or a long write transaction), a Postgres server restarting. Both
are waited out, silently at first, for at most ``patience_s``; past that the step fails with one
line naming the store and the fix (``RateLimitStoreError``), never a traceback and never a permit
taken without being counted: a permit is ours only once the store committed it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

from pyrate_limiter import Duration, Limiter, Rate, RateItem, SingleBucketFactory

from nh_assets.gemini.rate_limit_stores import BucketStore, RateLimitStoreError

_ITEM = "gemini"
# The permit is taken a moment before the CLI's request reaches the API (process start, node
# start-up). Counting the minute window over 61 s keeps the API-side count within R in every
# 60 s window despite that jitter, at a cost of under 2 % of throughput.
MINUTE_WINDOW_MS = Duration.MINUTE.value + 1000
# How long the store may stay locked by another process or unreachable before a step gives up.
STORE_PATIENCE_S = 60.0


class RateLimitConfigError(ValueError):
    """The two limits cannot both hold: the message says which variable to change."""


class DailyCapExceeded(Exception):
    """The per-day request cap is used up; retrying today cannot succeed."""


@dataclass(frozen=True)
class Acquired:
    waited_s: float


class SharedRateLimit:
    """Blocking acquisition of one Gemini rate permit from the shared bucket."""

    def __init__(self, store: BucketStore, per_minute: int, per_day: int, *, patience_s: float = STORE_PATIENCE_S):
        self.store = store
        self.patience_s = patience_s
        self.per_minute = per_minute
        self.per_day = per_day
        if per_minute < 1 or per_day <= per_minute:
            raise RateLimitConfigError(
                f"rate limits {per_minute}/min and {per_day}/day are inconsistent; "
                "set NH_RATE_PER_DAY above NH_RATE_PER_MINUTE (both at least 1)"
            )
        self._minute_rate = Rate(per_minute, MINUTE_WINDOW_MS)
        self._day_rate = Rate(per_day, Duration.DAY)
        rates = [self._minute_rate]
        # A day cap above 1440 x the minute rate can never bind; pyrate-limiter rejects such lists.
        if per_day * MINUTE_WINDOW_MS < per_minute * Duration.DAY.value:
            rates.append(self._day_rate)
        self._rates = rates
        self._open()

    def _open(self) -> None:
        self._bucket = self.store.open(self._rates)
        # Given the bucket itself, the Limiter also takes the bucket's own cross-process lock
        # (SQLite's file lock); a store that prunes by itself gets no leaker thread.
        self._limiter = Limiter(
            self._bucket if self.store.background_leak else SingleBucketFactory(self._bucket, schedule_leak=False)
        )

    def _reopen(self) -> None:
        """After a store error: a fresh connection pool, rather than one backing off its reconnects
        for minutes after a server restart. Failing to reopen is one more transient error."""
        self.store.close()
        self._limiter.close()
        try:
            self._open()
        except RateLimitStoreError:
            pass

    def acquire(self, log: Callable[[str], None] = lambda _msg: None, max_wait_s: float = 3600.0) -> Acquired:
        """Take one rate permit, waiting (and saying so through ``log``) while the minute window is full."""
        started = time.monotonic()
        announced = False
        blocked_since: float | None = None  # the store locked by another process, or unreachable
        while True:
            try:
                # A put that never ran (the store's lock was taken) must not be read as the verdict
                # of an earlier one: that could be a stale "daily cap".
                self._bucket.failing_rate = None
                if self._limiter.try_acquire(_ITEM, blocking=False):
                    return Acquired(waited_s=time.monotonic() - started)
                failing = self._bucket.failing_rate
                if failing is self._day_rate:
                    raise DailyCapExceeded(
                        f"Gemini daily cap of {self.per_day} requests is used up (shared bucket "
                        f"{self.store.label}); raise NH_RATE_PER_DAY or rerun tomorrow"
                    )
                wait_ms = self._bucket.waiting(RateItem(_ITEM, self._bucket.now()))
                problem = "locked by another process" if wait_ms <= 0 else None
            except self.store.transient_errors as exc:
                wait_ms, problem = 0, f"unavailable ({type(exc).__name__})"
                if self.store.reopen_after_error:
                    self._reopen()
            if problem is None:
                blocked_since = None
            else:
                blocked_since = blocked_since or time.monotonic()
                if time.monotonic() - blocked_since > self.patience_s:
                    raise RateLimitStoreError(
                        f"the shared Gemini rate-limit bucket {self.store.label} stayed {problem} for more than "
                        f"{self.patience_s:.0f}s; {self.store.fix}"
                    )
            # wait_ms 0: not a full window, another process held the bucket's lock (the Postgres
            # bucket refuses at once rather than queueing) or the store failed: retry shortly, without announcing.
            contended = wait_ms <= 0
            wait_s = random.uniform(0.01, 0.05) if contended else max(wait_ms, 50) / 1000.0
            if problem and problem.startswith("unavailable"):
                wait_s = 0.5  # a restarting server: do not hammer it
            if time.monotonic() - started + wait_s > max_wait_s:
                raise TimeoutError(f"waited more than {max_wait_s:.0f}s for a Gemini rate permit")
            if contended:
                time.sleep(wait_s)
                continue
            if not announced:
                log(
                    f"rate limit {self.per_minute}/min reached: waiting {wait_s:.1f}s for a "
                    f"Gemini rate permit (shared bucket {self.store.label})"
                )
                announced = True
            time.sleep(min(wait_s, 5.0))

    def check_day_left(self) -> None:
        """Raise ``DailyCapExceeded`` when today's cap is already used up: no CLI is started then."""
        if self._day_rate in self._bucket.rates and self.usage()["last_day"] >= self.per_day:
            raise DailyCapExceeded(
                f"Gemini daily cap of {self.per_day} requests is used up (shared bucket "
                f"{self.store.label}); raise NH_RATE_PER_DAY or rerun tomorrow"
            )

    def usage(self) -> dict[str, int]:
        """How many requests the shared bucket counted in the last minute and day."""
        now = self._bucket.now()
        minute, day = self.store.count_since(self._bucket, [now - MINUTE_WINDOW_MS, now - Duration.DAY.value])
        return {"last_minute": minute, "last_day": day}

    def close(self) -> None:
        self.store.close()  # first: closing the Limiter closes the bucket's connections too
        self._limiter.close()
