"""Assembles the code location: settings + registry → assets, resources and the daily job.

This module only wires; each concept lives in its own module. ``build_definitions`` takes its
inputs explicitly so tests can build a code location against temporary directories, while the
module-level ``defs`` reads the operator's environment once at load time.
"""

from __future__ import annotations

import dagster as dg

from nh_assets.factory import build_prompt_assets
from nh_assets.partitions import daily_partitions
from nh_assets.registry import Registry, load_registry, registry_path_from_env
from nh_assets.resources.data_layout import DataLayoutResource
from nh_assets.resources.gemini import GeminiCLIResource
from nh_assets.settings import Settings, load_settings

DAILY_JOB_NAME = "neurohelix_daily"


def build_definitions(settings: Settings, registry: Registry, **gemini_options: object) -> dg.Definitions:
    """``gemini_options`` override resource fields (tests and benchmarks shorten backoffs)."""
    partitions_def = daily_partitions(settings.partition_start, settings.timezone)
    assets = build_prompt_assets(registry, partitions_def, settings.partition_start)
    daily_job = dg.define_asset_job(
        DAILY_JOB_NAME,
        selection=dg.AssetSelection.assets(*assets),
        description="Every NeuroHelix prompt for one day, in dependency order.",
    )
    return dg.Definitions(
        assets=assets,
        jobs=[daily_job],
        resources={
            "gemini": GeminiCLIResource(
                **{
                    "cli_path": settings.gemini_cli,
                    "demo": settings.demo,
                    "rate_per_minute": settings.rate_per_minute,
                    "rate_per_day": settings.rate_per_day,
                    "rate_limit_db": str(settings.rate_limit_db),
                    "workdir_root": str(settings.workdir_root),
                    **gemini_options,
                }
            ),
            "layout": DataLayoutResource(root=str(settings.data_root)),
        },
    )


def load_definitions() -> dg.Definitions:
    return build_definitions(load_settings(), load_registry(registry_path_from_env()))


defs = load_definitions()
