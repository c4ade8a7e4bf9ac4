"""Assembles the code location; each part is built in its own package.

The prompt graph comes first (``prompts.definitions``); the operational parts (``operations``)
and publishing (``publishing``) are built from it and merged in, with the resources and the
executor wired from the operator's settings here. ``build_definitions`` takes its inputs
explicitly so tests can build a code location against temporary directories, while
``load_definitions`` reads the operator's environment once, at load time.
"""

from __future__ import annotations

import dagster as dg

from nh_assets.data_layout import DataLayoutResource
from nh_assets.executor import executor_for
from nh_assets.gemini.config import GeminiConfig
from nh_assets.gemini.resource import GeminiCLIResource
from nh_assets.operations.definitions import build_operations_definitions
from nh_assets.prompts.definitions import DAILY_JOB_NAME, PromptGraph, build_prompt_graph
from nh_assets.publishing.definitions import build_publishing_definitions
from nh_assets.registry import Registry, load_registry
from nh_assets.registry.quotas import load_quotas, quotas_path
from nh_assets.settings import Settings, load_settings, registry_path_from_env

__all__ = ["DAILY_JOB_NAME", "build_definitions", "load_definitions"]


def gemini_resource(settings: Settings, **overrides: object) -> GeminiCLIResource:
    """``overrides`` set configuration fields directly (tests and benchmarks shorten backoffs)."""
    return GeminiCLIResource(config=GeminiConfig.from_settings(settings, **overrides))


def _core(graph: PromptGraph, gemini: GeminiCLIResource) -> dg.Definitions:
    return dg.Definitions(
        executor=executor_for(graph.settings),
        resources={"gemini": gemini, "layout": DataLayoutResource(root=str(graph.settings.data_root))},
    )


def build_definitions(settings: Settings, registry: Registry, **gemini_options: object) -> dg.Definitions:
    graph = build_prompt_graph(settings, registry)
    # A bad quotas file stops the code location as a bad registry does: every problem, located.
    quotas = {q.model: [q.per_minute, q.per_day] for q in load_quotas(quotas_path(registry.path)).values()}
    return dg.Definitions.merge(
        graph.definitions(),
        _core(graph, gemini_resource(settings, model_quotas=quotas, **gemini_options)),
        build_operations_definitions(graph),
        build_publishing_definitions(graph),
    )


def load_definitions() -> dg.Definitions:
    return build_definitions(load_settings(), load_registry(registry_path_from_env()))


defs = load_definitions()
