"""Operational parts of the code location: publishing, retention, history import, preflight.

``build_operations_definitions`` is one of the builders merged by ``definitions.EXTENSIONS``.
It adds the ``wrangler`` resource (used by ``site_deployment``, see ``publishing_site``, and by
preflight), the ``retention_cleanup`` job and its stopped daily schedule, and the
``import_history`` and ``preflight`` jobs. Its jobs use the ``layout`` resource of the core
graph, so their data root is the one the prompt assets write to.

The Cloudflare token is wired as ``dg.EnvVar`` when ``CLOUDFLARE_API_TOKEN`` is set at load
time and as an empty string otherwise (an unset ``EnvVar`` would fail every run that needs the
resource, preflight included): the deployment is then skipped until the variable is exported
and the code location reloaded.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import dagster as dg

from nh_assets.history_import import build_import_history_job
from nh_assets.preflight import build_preflight_job
from nh_assets.publishing_site.pages_wrangler import PagesWranglerResource
from nh_assets.resources.wrangler import TOKEN_ENV
from nh_assets.retention import build_retention_job, build_retention_schedule

if TYPE_CHECKING:  # definitions imports this module's builder: no runtime cycle
    from nh_assets.definitions import Core


def build_operations_definitions(core: Core) -> dg.Definitions:
    settings = core.settings
    wrangler = PagesWranglerResource(
        cli_path=settings.wrangler_cli,
        project_name=settings.cloudflare_project,
        site_dir=str(settings.site_dir),
        build_command=settings.site_build_command,
        build_cwd=str(settings.data_root),
        # Only the variable's presence is read here; Dagster resolves its value at execution.
        api_token=dg.EnvVar(TOKEN_ENV) if os.environ.get(TOKEN_ENV, "").strip() else "",
    )
    retention = build_retention_job(
        registry=core.registry, timezone=settings.timezone, default_keep_days=settings.retention_days
    )
    return dg.Definitions(
        jobs=[
            retention,
            build_import_history_job(registry=core.registry, partitions_def=core.partitions_def),
            build_preflight_job(settings),
        ],
        schedules=[build_retention_schedule(retention, timezone=settings.timezone, keep_days=settings.retention_days)],
        resources={"wrangler": wrangler},
    )
