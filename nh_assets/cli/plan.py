"""``nh plan``: the dry run. What ``nh run`` / ``nh backfill`` would do for a day or a range,
and what it would cost, without calling a model or submitting anything.

For every selected prompt and day it gives the asset's state in the instance (missing, stale,
materialized: ``asset_state``), how many API requests its call makes (none for ``builtin``, one
for a plain answer, three for a row with ``google_web_search``: the call, the search, the answer
with its results — what the rate gate counts), and
an estimate of the input tokens: the prompt rendered exactly as the asset would render it from
the upstream artifacts on disk (≈ 4 characters a token), or, while a same-day input does not exist
yet, the row's context budget, which caps what the renderer may send. The least time is what the
shared rate limit allows: requests / NH_RATE_PER_MINUTE minutes, and a day more for each
NH_RATE_PER_DAY requests beyond the first. Retries are not counted: they cost requests only on
failure.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from datetime import date

from nh_assets.cli.asset_state import MATERIALIZED, MISSING, STALE, MaterializationReader, asset_state
from nh_assets.cli.output import print_json, table
from nh_assets.cli.project import Project
from nh_assets.gemini.day_budget import SEARCH_TOOL, ModelBudget, day_budget, requests_by_model
from nh_assets.registry.quotas import load_quotas, quotas_path
from nh_assets.registry import PromptSpec
from nh_assets.prompts.rendering import CHARS_PER_TOKEN, context_budget_chars, render_prompt
from nh_assets.prompts.upstream import MissingSameDayInput, collect_upstream

RENDERED, BUDGET, NO_MODEL = "rendered", "budget", "builtin"



def expected_requests(spec: PromptSpec) -> int:
    """API requests one call of the row makes when the model does what the row allows."""
    if not spec.uses_llm:
        return 0
    return 3 if SEARCH_TOOL in spec.allowed_tools else 1


@dataclass
class PlannedAsset:
    asset: str
    partition: str
    state: str
    reasons: list[str]
    gemini_requests: int
    model: str
    estimated_input_tokens: int
    estimate_from: str  # rendered | budget | builtin


@dataclass
class Plan:
    days: list[str]
    assets: list[PlannedAsset]
    rate_per_minute: int
    rate_per_day: int
    totals: dict = field(default_factory=dict)
    models: list[ModelBudget] = field(default_factory=list)  # each model's requests against what is left

    def summarize(self) -> None:
        requests = sum(a.gemini_requests for a in self.assets)
        extra_days = max(0, math.ceil(requests / self.rate_per_day) - 1) if requests else 0
        self.totals = {
            "assets": len(self.assets),
            MISSING: sum(a.state == MISSING for a in self.assets),
            STALE: sum(a.state == STALE for a in self.assets),
            MATERIALIZED: sum(a.state == MATERIALIZED for a in self.assets),
            "gemini_requests": requests,
            "estimated_input_tokens": sum(a.estimated_input_tokens for a in self.assets),
            "least_time_s": round(requests / self.rate_per_minute * 60 + extra_days * 86400, 1),
            "day_cap_exceeded": requests > self.rate_per_day,
        }

    def as_dict(self) -> dict:
        return {
            "days": self.days,
            "calls_model": False,
            "rate_per_minute": self.rate_per_minute,
            "rate_per_day": self.rate_per_day,
            "totals": self.totals,
            "models": [{**asdict(m), "left": m.left, "fits": m.fits} for m in self.models],
            "assets": [asdict(a) for a in self.assets],
        }


def estimate_tokens(project: Project, prompt_id: str, day: date) -> tuple[int, str]:
    spec = project.registry.by_id(prompt_id)
    if not spec.uses_llm:
        return 0, NO_MODEL
    try:
        settings = project.settings
        upstream = collect_upstream(
            spec, project.registry, day=day, first_day=settings.partition_start, data_root=settings.data_root
        )
    except MissingSameDayInput:
        # Its inputs come from this same run: the renderer will cap them at the budget.
        return context_budget_chars(spec) // CHARS_PER_TOKEN, BUDGET
    rendered = render_prompt(spec, day.isoformat(), upstream)
    return math.ceil(len(rendered.text.encode()) / CHARS_PER_TOKEN), RENDERED


def build_plan(project: Project, reader: MaterializationReader, assets: list[str], days: list[date]) -> Plan:
    planned = []
    for day in days:
        for prompt_id in assets:
            spec = project.registry.by_id(prompt_id)
            state = asset_state(project, reader, prompt_id, day)
            tokens, source = estimate_tokens(project, prompt_id, day)
            planned.append(
                PlannedAsset(
                    prompt_id, day.isoformat(), state.state, state.reasons, expected_requests(spec), spec.model, tokens,
                    source,
                )
            )
    plan = Plan([d.isoformat() for d in days], planned, project.settings.rate_per_minute, project.settings.rate_per_day)
    plan.summarize()
    settings = project.settings
    plan.models = day_budget(
        requests_by_model(project.registry.by_id(a) for _day in days for a in assets),
        load_quotas(quotas_path(project.registry.path)),
        backend=settings.rate_limit_backend, rate_limit_db=settings.rate_limit_db,
        postgres_url=os.environ.get(settings.rate_limit_url_env, "") if settings.rate_limit_url_env else "",
    )
    return plan


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def print_plan(plan: Plan, as_json: bool) -> None:
    if as_json:
        print_json(plan.as_dict())
        return
    rows = [
        (
            a.partition,
            a.asset,
            a.state,
            a.model if a.gemini_requests else "builtin (no request)",
            f"{a.estimated_input_tokens:,}" if a.gemini_requests else "-",
            a.estimate_from,
            "; ".join(a.reasons) if a.state == STALE else "",
        )
        for a in plan.assets
    ]
    print(table(["day", "asset", "state", "model", "est. input tokens", "from", "why stale"], rows))
    t = plan.totals
    print()
    print(
        f"would run {t['assets']} asset partition(s): {t[MISSING]} missing, {t[STALE]} stale, "
        f"{t[MATERIALIZED]} already materialized (rerun rewrites them)"
    )
    print(
        f"Gemini requests: {t['gemini_requests']} (retries not counted) · estimated input tokens: "
        f"{t['estimated_input_tokens']:,} · least time the rate limit allows: {_duration(t['least_time_s'])} "
        f"({plan.rate_per_minute}/min)"
    )
    for budget in plan.models:
        print(("does not fit: " if not budget.fits else "") + budget.describe())
    if t["day_cap_exceeded"]:
        print(f"more requests than the day cap NH_RATE_PER_DAY={plan.rate_per_day}: the rest waits for the next day")
    print("no model was called; nothing was submitted")
