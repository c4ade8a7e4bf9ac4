"""What one day asks of each model's quota, and what the shared store says is left.

A row without tools makes one request on its model; a row with ``google_web_search`` makes three:
the call and the answer on its model, the search on the CLI's web-search model (0.61.0 runs it on
``gemini-3-flash-preview``, measured in ``test_real_cli_pipeline``). Summed over the registry
that is the day's need per model, which ``nh plan`` sets against each model's declared quota
(``registry/quotas.tsv``), the requests its bucket counted in the last 24 h and whether the
service already said its day is spent; ``nh preflight`` warns when a day cannot fit. Retries and
re-asks are not counted: they cost requests only when something goes wrong.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nh_assets.gemini.model_quotas import ModelBuckets
from nh_assets.gemini.service_memory import SPENT, memory_for, memory_path
from nh_assets.registry import PromptSpec
from nh_assets.registry.quotas import ModelQuota

SEARCH_TOOL = "google_web_search"
WEB_SEARCH_MODEL = "gemini-3-flash-preview"


def requests_by_model(specs: Iterable[PromptSpec]) -> Counter:
    need: Counter = Counter()
    for spec in specs:
        if not spec.uses_llm:
            continue
        if SEARCH_TOOL in spec.allowed_tools:
            need[spec.model] += 2
            need[WEB_SEARCH_MODEL] += 1
        else:
            need[spec.model] += 1
    return need


@dataclass(frozen=True)
class ModelBudget:
    model: str
    requests: int  # what the selected days ask of it
    per_day: int | None  # declared; None: no row in quotas.tsv
    used_today: int | None  # counted by its shared bucket in the last 24 h; None: unknown
    spent_until: str = ""  # the service said its day is spent, until this instant (UTC)

    @property
    def left(self) -> int | None:
        if self.spent_until:
            return 0
        if self.per_day is None:
            return None
        return max(0, self.per_day - (self.used_today or 0))

    @property
    def fits(self) -> bool:
        return self.left is None or self.requests <= self.left

    def describe(self) -> str:
        if self.spent_until:
            return f"{self.model}: {self.requests} request(s) needed, none left: its daily quota is spent until {self.spent_until}"
        if self.per_day is None:
            return f"{self.model}: {self.requests} request(s), no quota declared in registry/quotas.tsv"
        used = "" if self.used_today is None else f", {self.used_today} used in the last 24 h"
        return f"{self.model}: {self.requests} request(s) of {self.per_day}/day{used}, {self.left} left"


def day_budget(
    need: Mapping[str, int], quotas: Mapping[str, ModelQuota], *, backend: str, rate_limit_db: Path, postgres_url: str
) -> list[ModelBudget]:
    """Each needed model's budget; the store is only read, never created."""
    reachable = backend != "sqlite" or Path(rate_limit_db).exists()
    buckets = ModelBuckets(
        {q.model: (q.per_minute, q.per_day) for q in quotas.values()},
        backend=backend, sqlite_path=rate_limit_db, postgres_url=postgres_url,
    )
    memory = memory_for(backend, sqlite_path=memory_path(rate_limit_db), postgres_url=postgres_url)
    remembers = backend != "sqlite" or memory_path(rate_limit_db).exists()
    budgets = []
    try:
        for model in sorted(need):
            quota = quotas.get(model)
            used = buckets.used_today(model) if quota is not None and reachable else None
            spent = memory.recall(SPENT, model) if remembers else None
            until = datetime.fromtimestamp(spent[1], timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if spent else ""
            budgets.append(ModelBudget(model, need[model], quota.per_day if quota else None, used, until))
    except (sqlite3.Error, OSError) as exc:
        raise RuntimeError(f"cannot read the shared bucket at {rate_limit_db} ({type(exc).__name__})") from None
    finally:
        buckets.close()
    return budgets
