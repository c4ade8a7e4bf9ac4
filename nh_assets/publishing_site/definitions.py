"""The site's part of the code location: the ``site`` and ``site_deployment`` assets.

An ``Extension`` like the others merged by ``nh_assets.definitions``. It needs three resources
the other parts provide: ``layout`` (the core graph), ``wrangler`` (a ``PagesWranglerResource``,
wired in ``operations``) and ``alerts`` (``automation``). Without a ``site_payload`` row in the
registry there is nothing to publish and it adds nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from .collect import site_roles
from .deployment import build_site_deployment_asset
from .site_asset import build_site_asset

if TYPE_CHECKING:
    from nh_assets.definitions import Core


def build_site_definitions(core: Core) -> dg.Definitions:
    roles = site_roles(core.registry)
    if roles is None:
        return dg.Definitions()
    settings = core.settings
    return dg.Definitions(
        assets=[
            build_site_asset(
                roles=roles, site_dir=settings.site_dir, site_url=settings.site_url, pagefind_cli=settings.pagefind_cli
            ),
            build_site_deployment_asset(site_dir=settings.site_dir, site_url=settings.site_url),
        ]
    )
