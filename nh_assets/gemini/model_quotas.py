"""Each model's declared quota (``registry/quotas.tsv``), counted in the shared bucket.

Google counts requests per model; the global bucket (``NH_RATE_PER_MINUTE`` / ``NH_RATE_PER_DAY``)
counts all of them together. So every model with a declared quota gets a bucket of its own in
the same store (a table per model in the SQLite file or the Postgres database), taken at the
gate right before the global one, by every process on every machine. When a model's declared
day is used up the gate refuses the request as ``quota_spent`` — what Google would answer — and
the row's ``fallback_model``, if any, is asked instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from nh_assets.gemini.rate_gate import GateRefusal
from nh_assets.gemini.failures import FailureKind
from nh_assets.gemini.rate_limit import DailyCapExceeded, SharedRateLimit
from nh_assets.gemini.rate_limit_stores import TABLE, RateLimitStoreError, store_for


def model_table(model: str) -> str:
    return f"{TABLE}__{re.sub(r'[^a-z0-9]', '_', model.lower())}"


class ModelBuckets:
    """One shared bucket per model with a declared quota, opened on first use."""

    def __init__(self, quotas: Mapping[str, tuple[int, int]], *, backend: str, sqlite_path: str | Path, postgres_url: str):
        self.quotas = dict(quotas)  # model -> (per_minute, per_day)
        self._store_args = {"backend": backend, "sqlite_path": Path(sqlite_path), "postgres_url": postgres_url}
        self._limiters: dict[str, SharedRateLimit] = {}
        self._lock = threading.Lock()

    def limiter(self, model: str) -> SharedRateLimit | None:
        if model not in self.quotas:
            return None
        with self._lock:
            if model not in self._limiters:
                per_minute, per_day = self.quotas[model]
                store = store_for(**self._store_args, table=model_table(model))
                self._limiters[model] = SharedRateLimit(store, per_minute, per_day)
            return self._limiters[model]

    def take(self, model: str, log: Callable[[str], None]) -> float:
        """Wait for a rate permit in the model's minute window; refuse when its declared day is used up."""
        try:
            limiter = self.limiter(model)
            if limiter is None:
                return 0.0
            return limiter.acquire(log).waited_s
        except DailyCapExceeded:
            per_day = self.quotas[model][1]
            raise GateRefusal(
                FailureKind.QUOTA_SPENT,
                f"{model}'s declared quota of {per_day} requests a day (registry/quotas.tsv) is used up in the "
                "shared bucket; a permit frees as the oldest request turns 24 h old",
            ) from None
        except (RateLimitStoreError, OSError) as exc:
            raise GateRefusal(FailureKind.RATE_LIMIT_STORE, f"{model}'s shared bucket failed: {exc}") from None

    def used_today(self, model: str) -> int | None:
        """Requests the shared bucket counted for the model in the last 24 h (None: no declared quota)."""
        limiter = self.limiter(model)
        return None if limiter is None else limiter.usage()["last_day"]

    def close(self) -> None:
        with self._lock:
            for limiter in self._limiters.values():
                limiter.close()
            self._limiters = {}
