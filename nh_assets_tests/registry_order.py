"""Orderings of a registry that only the tests and the benchmark need (production lets Dagster order steps)."""

from __future__ import annotations

import heapq

from nh_assets.registry import WAVES, PromptSpec, Registry


def ids(registry: Registry) -> tuple[str, ...]:
    return tuple(spec.prompt_id for spec in registry.prompts)


def waves(registry: Registry) -> dict[str, tuple[PromptSpec, ...]]:
    """Prompts grouped by wave; keys are all of WAVES in wave order."""
    return {wave: tuple(spec for spec in registry.prompts if spec.wave == wave) for wave in WAVES}


def topological_order(registry: Registry) -> tuple[PromptSpec, ...]:
    """Every prompt after all prompts it depends on (any day offset); ties keep file order.

    A prompt reading its own earlier days is not an edge.
    """
    prompts = registry.prompts
    position = {spec.prompt_id: i for i, spec in enumerate(prompts)}
    pending = {
        spec.prompt_id: {d.prompt_id for d in spec.depends_on if d.prompt_id != spec.prompt_id and d.prompt_id in position}
        for spec in prompts
    }
    dependents: dict[str, list[str]] = {pid: [] for pid in position}
    for pid, deps in pending.items():
        for dep in deps:
            dependents[dep].append(pid)
    ready = [position[pid] for pid, deps in pending.items() if not deps]
    heapq.heapify(ready)
    order: list[PromptSpec] = []
    while ready:
        spec = prompts[heapq.heappop(ready)]
        order.append(spec)
        for child in dependents[spec.prompt_id]:
            pending[child].discard(spec.prompt_id)
            if not pending[child]:
                heapq.heappush(ready, position[child])
    if len(order) != len(prompts):
        raise ValueError(f"registry {registry.path} has a dependency cycle")
    return tuple(order)
