"""The prompt graph: one asset per registry row, and the job that runs a whole day.

``PromptGraph`` is what the operational and publishing parts of the code location are built
from (the registry, the partitions, the assets, the daily job). It lives here, beside the
factory, so those parts depend on the prompt graph and never on the module that assembles the
code location.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from nh_assets.partitions import daily_partitions
from nh_assets.prompts.factory import build_prompt_assets
from nh_assets.registry import Registry
from nh_assets.settings import Settings

DAILY_JOB_NAME = "neurohelix_daily"


@dataclass(frozen=True)
class PromptGraph:
    settings: Settings
    registry: Registry
    partitions_def: dg.DailyPartitionsDefinition
    assets: list[dg.AssetsDefinition]
    daily_job: dg.UnresolvedAssetJobDefinition

    def definitions(self) -> dg.Definitions:
        return dg.Definitions(assets=self.assets, jobs=[self.daily_job])


def build_prompt_graph(settings: Settings, registry: Registry) -> PromptGraph:
    partitions_def = daily_partitions(settings.partition_start, settings.timezone)
    system_prompt = settings.system_prompt.read_text(encoding="utf-8")
    assets = build_prompt_assets(registry, partitions_def, settings.partition_start, system_prompt=system_prompt)
    daily_job = dg.define_asset_job(
        DAILY_JOB_NAME,
        # The prompts with the checks they evaluate in their own steps; not the separate
        # report-deadline check, which has its own schedule.
        selection=dg.AssetSelection.assets(*assets).without_checks() | dg.AssetSelection.checks(*assets),
        description="Every NeuroHelix prompt for one day, in dependency order.",
    )
    return PromptGraph(settings, registry, partitions_def, assets, daily_job)
