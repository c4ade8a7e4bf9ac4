"""The publishing part of the code location: the ``site`` and ``site_deployment`` assets.

The site is built from every day's report, tags, payload and dashboard (``site``), then deployed
and verified with wrangler (``site_deployment``); both are built from the prompt graph. The
``wrangler`` resource is wired here whether or not the registry has a published row, because the
preflight job checks it too. The Cloudflare token is wired as ``dg.EnvVar`` when
``CLOUDFLARE_API_TOKEN`` is set at load time and as an empty string otherwise (an unset ``EnvVar``
would fail every run that needs the resource, preflight included): the deployment is then skipped,
visibly, until the variable is exported and the code location reloaded.
"""

from __future__ import annotations

import dagster as dg

from nh_assets.prompts.definitions import PromptGraph
from nh_assets.publishing.deployment import build_site_deployment_asset
from nh_assets.publishing.pages_wrangler import PagesWranglerResource
from nh_assets.publishing.site.collect import site_roles
from nh_assets.publishing.site.site_asset import build_site_asset
from nh_assets.publishing.wrangler import TOKEN_ENV


def wrangler_resource(graph: PromptGraph) -> PagesWranglerResource:
    settings = graph.settings
    return PagesWranglerResource(
        cli_path=settings.wrangler_cli,
        project_name=settings.cloudflare_project,
        site_dir=str(settings.site_dir),
        build_command=settings.site_build_command,
        build_cwd=str(settings.data_root),
        # Only the variable's presence is read at load; Dagster resolves its value at execution.
        api_token=dg.EnvVar(TOKEN_ENV) if settings.cloudflare_token_set else "",
    )


def build_publishing_definitions(graph: PromptGraph) -> dg.Definitions:
    resources = {"wrangler": wrangler_resource(graph)}
    roles = site_roles(graph.registry)
    if roles is None:  # no published row: nothing to build a site from
        return dg.Definitions(resources=resources)
    settings = graph.settings
    return dg.Definitions(
        assets=[
            build_site_asset(
                roles=roles, site_dir=settings.site_dir, site_url=settings.site_url, pagefind_cli=settings.pagefind_cli
            ),
            build_site_deployment_asset(site_dir=settings.site_dir, site_url=settings.site_url),
        ],
        resources=resources,
    )
