"""The ``site`` asset: every day's outputs in, the static site out, rebuilt when any day changes.

``site`` is unpartitioned and depends on every prompt asset with Dagster's default mapping from a
daily-partitioned parent to an unpartitioned child, which is *all* partitions. Its automation
condition is therefore not ``eager()``: eager keeps only the latest time window (meaningless
here), and its ``~any_deps_missing()`` reads every parent partition, so the one day that was
never run would block the site forever. Instead the site is requested once any partition of any
parent is newly updated since the site was last requested (``any_deps_updated().since_last_handled()``),
whether by today's run, a re-run or a backfill of an old day, and waits while any parent
partition is in progress, so a day's run or a backfill leads to one rebuild when it finishes
rather than one per step. Which days changed is read from Dagster's records (``collect``), and
only their pages are re-rendered (``site_build``).
"""

from pathlib import Path

import dagster as dg

from nh_assets.data_layout import DataLayoutResource

from .collect import SiteRoles, collect_days
from .pages import SITE_VERSION
from .search_index import SearchIndexError
from .site_build import SiteBuildError, SitePaths, build_site

SITE_ASSET = "site"
SITE_SRC = "site_src"
LISTED = 30


def site_automation_condition() -> dg.AutomationCondition:
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("any_day_updated")


def _listing(days: list[str]) -> dg.MetadataValue:
    shown = days[-LISTED:]
    return dg.MetadataValue.json(shown if len(days) <= LISTED else [f"… {len(days) - LISTED} earlier", *shown])


def build_site_asset(*, roles: SiteRoles, site_dir: Path, site_url: str, pagefind_cli: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=SITE_ASSET,
        group_name="publish",
        description=(
            "The NeuroHelix static site: a page per day (report, KPIs, notes, analyses, dashboard), "
            "listings, tag and category pages, an Atom feed and a Pagefind search index. Keeps its own copy of "
            f"each day in `NH_DATA_ROOT/{SITE_SRC}/` so retention never shrinks it; re-renders only what changed."
        ),
        kinds={"python", "html"},
        deps=[dg.AssetDep(spec.prompt_id) for spec in roles.prompts],
        automation_condition=site_automation_condition(),
        code_version=SITE_VERSION,
        tags={"nh/wave": "publish"},
    )
    def site(context: dg.AssetExecutionContext, layout: DataLayoutResource) -> dg.MaterializeResult:
        paths = SitePaths(site_dir=site_dir, src_dir=layout.root_path / SITE_SRC)
        collected = collect_days(
            instance=context.instance, roles=roles, data_root=layout.root_path, src_dir=paths.src_dir
        )
        for problem in collected.problems:
            context.log.warning(problem)
        try:
            report = build_site(paths, site_url=site_url, pagefind_cli=pagefind_cli)
        except (SiteBuildError, SearchIndexError) as exc:
            raise dg.Failure(description=f"site: {exc}", allow_retries=False) from None
        for problem in report.skipped_days:
            context.log.warning(problem)
        context.log.info(
            f"site: {report.days} day(s), {len(report.changed_days)} changed, "
            f"{report.pages_rendered} page(s) rendered, "
            f"{report.pages_kept} kept, in {report.duration_s:.1f}s ({'full' if report.full else 'incremental'})"
        )
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(site_dir)),
                "nh.site.build_dir": dg.MetadataValue.path(str(report.build_dir)),
                "nh.site.days": dg.MetadataValue.int(report.days),
                "nh.site.newest_day": dg.MetadataValue.text(report.newest_day or "none"),
                "nh.site.collected_days": _listing(collected.updated),
                "nh.site.changed_days": _listing(report.changed_days),
                "nh.site.removed_days": _listing(report.removed_days),
                "nh.site.problems": dg.MetadataValue.json([*collected.problems, *report.skipped_days][:LISTED]),
                "nh.site.full_build": dg.MetadataValue.bool(report.full),
                "nh.site.pages_rendered": dg.MetadataValue.int(report.pages_rendered),
                "nh.site.pages_kept": dg.MetadataValue.int(report.pages_kept),
                "nh.site.file_count": dg.MetadataValue.int(report.file_count),
                "nh.site.bytes": dg.MetadataValue.int(report.total_bytes),
                "nh.site.build_duration_s": dg.MetadataValue.float(round(report.duration_s, 3)),
                "nh.site.search_duration_s": dg.MetadataValue.float(
                    round(report.search.duration_s, 3) if report.search else 0.0
                ),
            }
        )

    return site
