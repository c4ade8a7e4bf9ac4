"""Assembles the code location: settings + registry → assets, resources, executor and jobs.

This module only wires; each concept lives in its own module. The prompt graph (``core``) is
built first; operational parts (checks, schedules, sensors, publishing, maintenance jobs) are
built from it by the builders in ``EXTENSIONS`` and merged in. ``build_definitions`` takes its
inputs explicitly so tests can build a code location against temporary directories, while the
module-level ``defs`` reads the operator's environment once at load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import dagster as dg

from nh_assets.automation import build_automation_definitions
from nh_assets.executor import executor_for
from nh_assets.factory import build_prompt_assets
from nh_assets.operations import build_operations_definitions
from nh_assets.partitions import daily_partitions
from nh_assets.publishing_site.definitions import build_site_definitions
from nh_assets.registry import Registry, load_registry, registry_path_from_env
from nh_assets.resources.data_layout import DataLayoutResource
from nh_assets.resources.gemini import GeminiCLIResource
from nh_assets.settings import Settings, load_settings

DAILY_JOB_NAME = "neurohelix_daily"


@dataclass(frozen=True)
class Core:
    """What the operational builders need to know about the prompt graph."""

    settings: Settings
    registry: Registry
    partitions_def: dg.DailyPartitionsDefinition
    prompt_assets: list[dg.AssetsDefinition]
    daily_job: dg.UnresolvedAssetJobDefinition


Extension = Callable[[Core], dg.Definitions]
# Operational parts of the code location, each built from the core graph (see their modules).
EXTENSIONS: list[Extension] = [build_automation_definitions, build_operations_definitions, build_site_definitions]


def build_core(settings: Settings, registry: Registry) -> Core:
    partitions_def = daily_partitions(settings.partition_start, settings.timezone)
    assets = build_prompt_assets(registry, partitions_def, settings.partition_start)
    daily_job = dg.define_asset_job(
        DAILY_JOB_NAME,
        # The prompts with the checks they evaluate in their own steps; not the separate
        # report-deadline check, which has its own schedule.
        selection=dg.AssetSelection.assets(*assets).without_checks() | dg.AssetSelection.checks(*assets),
        description="Every NeuroHelix prompt for one day, in dependency order.",
    )
    return Core(settings, registry, partitions_def, assets, daily_job)


def build_definitions(settings: Settings, registry: Registry, **gemini_options: object) -> dg.Definitions:
    """``gemini_options`` override resource fields (tests and benchmarks shorten backoffs)."""
    core = build_core(settings, registry)
    gemini = GeminiCLIResource(
        **{
            "cli_path": settings.gemini_cli,
            "demo": settings.demo,
            "rate_per_minute": settings.rate_per_minute,
            "rate_per_day": settings.rate_per_day,
            "rate_limit_db": str(settings.rate_limit_db),
            "rate_limit_backend": settings.rate_limit_backend,
            # Resolved in each step process from its own environment: the URL carries a password.
            **(
                {"rate_limit_postgres_url": dg.EnvVar(settings.rate_limit_url_env)}
                if settings.rate_limit_url_env
                else {}
            ),
            # Slot files live beside the shared rate-limit bucket (the resource's default).
            "max_processes": settings.max_gemini_processes,
            "workdir_root": str(settings.workdir_root),
            **gemini_options,
        }
    )
    prompt_graph = dg.Definitions(
        assets=core.prompt_assets,
        jobs=[core.daily_job],
        executor=executor_for(settings),
        resources={"gemini": gemini, "layout": DataLayoutResource(root=str(settings.data_root))},
    )
    return dg.Definitions.merge(prompt_graph, *(extension(core) for extension in EXTENSIONS))


def load_definitions() -> dg.Definitions:
    return build_definitions(load_settings(), load_registry(registry_path_from_env()))


defs = load_definitions()
