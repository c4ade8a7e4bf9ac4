"""The Gemini request budget, shared by every process on this machine.

Dagster's multiprocess executor runs each asset step in its own process, and several runs and
backfills may execute at once, so an in-memory token bucket would give each process its own
budget. The limit therefore lives in one SQLite file (pyrate-limiter's ``SQLiteBucket`` guarded
by a file lock) under ``DAGSTER_HOME``: every acquisition, from any process, is counted in the
same sliding windows. The per-minute window is waited out; the per-day window is a hard cap that
fails at once with a clear message, because waiting hours inside a step helps nobody.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pyrate_limiter import Duration, Limiter, Rate, RateItem, SQLiteBucket

_TABLE = "gemini_requests"
_ITEM = "gemini"
# The slot is taken a moment before the CLI's request reaches the API (process start, node
# start-up). Counting the minute window over 61 s keeps the API-side count within R in every
# 60 s window despite that jitter, at a cost of under 2 % of throughput.
MINUTE_WINDOW_MS = Duration.MINUTE.value + 1000


class RateLimitConfigError(ValueError):
    """The two limits cannot both hold: the message says which variable to change."""


class DailyCapExceeded(Exception):
    """The per-day request cap is used up; retrying today cannot succeed."""


@dataclass(frozen=True)
class Acquired:
    waited_s: float


class SharedRateLimit:
    """Blocking acquisition of one Gemini request slot from the shared SQLite bucket."""

    def __init__(self, db_path: Path, per_minute: int, per_day: int):
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
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
        self._bucket = SQLiteBucket.init_from_file(
            rates,
            table=_TABLE,
            db_path=str(db_path),
            use_file_lock=True,
        )
        self._limiter = Limiter(self._bucket)

    def acquire(self, log: Callable[[str], None] = lambda _msg: None, max_wait_s: float = 3600.0) -> Acquired:
        """Take one slot, waiting (and saying so through ``log``) while the minute window is full."""
        started = time.monotonic()
        announced = False
        while True:
            if self._limiter.try_acquire(_ITEM, blocking=False):
                return Acquired(waited_s=time.monotonic() - started)
            failing = self._bucket.failing_rate
            if failing is self._day_rate:
                raise DailyCapExceeded(
                    f"Gemini daily cap of {self.per_day} requests is used up (shared bucket "
                    f"{self.db_path}); raise NH_RATE_PER_DAY or rerun tomorrow"
                )
            wait_ms = self._bucket.waiting(RateItem(_ITEM, self._bucket.now()))
            wait_s = max(wait_ms, 50) / 1000.0
            if time.monotonic() - started + wait_s > max_wait_s:
                raise TimeoutError(f"waited more than {max_wait_s:.0f}s for a Gemini rate-limit slot")
            if not announced:
                log(
                    f"rate limit {self.per_minute}/min reached: waiting {wait_s:.1f}s for a "
                    f"Gemini request slot (shared bucket {self.db_path})"
                )
                announced = True
            time.sleep(min(wait_s, 5.0))

    def usage(self) -> dict[str, int]:
        """How many requests the shared bucket counted in the last minute and day."""
        now = self._bucket.now()
        with self._bucket.lock:
            cur = self._bucket.conn.execute(
                f"SELECT SUM(item_timestamp >= ?), SUM(item_timestamp >= ?) FROM '{_TABLE}'",
                (now - MINUTE_WINDOW_MS, now - Duration.DAY.value),
            )
            minute, day = cur.fetchone()
            cur.close()
        return {"last_minute": int(minute or 0), "last_day": int(day or 0)}

    def close(self) -> None:
        self._limiter.close()
