"""Views of a registry that only the tests and the benchmark need."""

from __future__ import annotations

from nh_assets.registry import WAVES, PromptSpec, Registry


def ids(registry: Registry) -> tuple[str, ...]:
    return tuple(spec.prompt_id for spec in registry.prompts)


def waves(registry: Registry) -> dict[str, tuple[PromptSpec, ...]]:
    """Prompts grouped by wave; keys are all of WAVES in wave order."""
    return {wave: tuple(spec for spec in registry.prompts if spec.wave == wave) for wave in WAVES}


def topological_order(registry: Registry) -> tuple[PromptSpec, ...]:
    return registry.topological_order()
