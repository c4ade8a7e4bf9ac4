"""The schedule's lower bound on one day's makespan: what the day and warm-CLI benchmarks divide
their wall time by, so a figure says how far from ideal the orchestration runs."""

from __future__ import annotations

import math

from nh_assets.registry import CONCURRENCY_LIMITS, Registry
from nh_assets_tests.support.registry_order import topological_order


def lower_bound_s(registry: Registry, latency: float, max_processes: int, rate_per_minute: int) -> dict[str, float]:
    """A lower bound on one partition's makespan with zero orchestration overhead.

    Every LLM step takes L, builtin steps take 0. Within one run Dagster orders steps by asset
    key, so cross-day edges (continuity_builder after daily_aggregator) order steps too. The bound
    is the largest of: the critical path; for each pool, the earliest any of its steps can start
    plus its work divided by its limit plus the shortest tail after it; the same for the global
    process cap; and the rate limit's minimum time for the day's requests. A step can start no
    earlier than its longest chain of ancestors, nor before every ancestor in a pool (or under the
    process cap) has run, ``limit`` at a time: the six ``low`` research prompts alone take 15 s
    before the ``sequential`` prompts can begin.
    """
    specs = {s.prompt_id: s for s in registry.prompts}
    duration = {pid: (latency if s.uses_llm else 0.0) for pid, s in specs.items()}
    parents = {pid: [d.prompt_id for d in s.depends_on] for pid, s in specs.items()}
    children: dict[str, list[str]] = {pid: [] for pid in specs}
    for pid, ps in parents.items():
        for p in ps:
            children[p].append(pid)
    order = [s.prompt_id for s in topological_order(registry)]
    head: dict[str, float] = {}
    for pid in order:
        head[pid] = max((head[p] + duration[p] for p in parents[pid]), default=0.0)
    tail: dict[str, float] = {}
    for pid in reversed(order):
        tail[pid] = max((duration[c] + tail[c] for c in children[pid]), default=0.0)
    critical = max(head[p] + duration[p] + tail[p] for p in specs)

    llm = [p for p, s in specs.items() if s.uses_llm]
    groups = {
        f"pool gemini_{cls}": ({p for p in llm if specs[p].concurrency_class == cls}, limit)
        for cls, limit in CONCURRENCY_LIMITS.items()
    }
    groups["process cap"] = (set(llm), max_processes)
    ancestors: dict[str, set[str]] = {}
    for pid in order:
        ancestors[pid] = set().union(*({p} | ancestors[p] for p in parents[pid]))
    ready = {
        pid: max(
            [head[pid]]
            + [math.ceil(len(ancestors[pid] & members) / limit) * latency for members, limit in groups.values()]
        )
        for pid in specs
    }

    def group_bound(members: set[str], limit: int) -> float:
        work = sum(duration[m] for m in members)
        rounds = math.ceil(work / latency / limit)
        return min(ready[m] for m in members) + rounds * latency + min(tail[m] for m in members)

    bounds = {"critical_path": critical}
    for name, (members, limit) in groups.items():
        if members:
            bounds[name] = group_bound(members, limit)
    bounds["rate limit"] = max(0.0, (len(llm) - rate_per_minute) / rate_per_minute * 60.0)
    bounds["bound"] = max(bounds.values())
    return bounds
