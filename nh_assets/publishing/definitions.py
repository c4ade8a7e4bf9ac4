"""The publishing part of the code location: the site deployment and its ``wrangler`` resource.

The Cloudflare token is wired as ``dg.EnvVar`` when ``CLOUDFLARE_API_TOKEN`` is set at load
time and as an empty string otherwise (an unset ``EnvVar`` would fail every run that needs the
resource, preflight included): the deployment is then skipped until the variable is exported
and the code location reloaded.
"""

from __future__ import annotations

import dagster as dg

from nh_assets.prompts.definitions import PromptGraph
from nh_assets.publishing.deployment import build_site_deployment_asset, payload_spec
from nh_assets.publishing.wrangler import TOKEN_ENV, WranglerResource


def wrangler_resource(graph: PromptGraph) -> WranglerResource:
    settings = graph.settings
    return WranglerResource(
        cli_path=settings.wrangler_cli,
        project_name=settings.cloudflare_project,
        site_dir=str(settings.site_dir),
        build_command=settings.site_build_command,
        build_cwd=str(settings.data_root),
        # Only the variable's presence is read at load; Dagster resolves its value at execution.
        api_token=dg.EnvVar(TOKEN_ENV) if settings.cloudflare_token_set else "",
    )


def build_publishing_definitions(graph: PromptGraph) -> dg.Definitions:
    assets = []
    if payload_spec(graph.registry) is not None:
        assets.append(
            build_site_deployment_asset(
                registry=graph.registry, partitions_def=graph.partitions_def, data_root=graph.settings.data_root
            )
        )
    # The preflight job checks wrangler too, so the resource is there with or without the asset.
    return dg.Definitions(assets=assets, resources={"wrangler": wrangler_resource(graph)})
