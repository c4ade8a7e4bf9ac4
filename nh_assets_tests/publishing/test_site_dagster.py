"""The site in the real graph: two days through the fake CLI, then ``site``; retention; automation.

Two days are materialized with the daily job (the fake ``gemini`` answers), then the ``site``
asset through Dagster. The day pages must exist with the KPIs Dagster recorded; the site must
keep both days after the real retention job removed their raw outputs; and an update to an old
day's partition (a backfill) must request the site, which an ``eager()`` condition would not do.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.publishing.site.day_input import read_day
from nh_assets.operations.retention import JOB_NAME as RETENTION_JOB
from nh_assets.settings import load_settings
from nh_assets_tests.support.fakes import pipeline_env

pytestmark = pytest.mark.dagster

DAY1, DAY2 = "2026-11-19", "2026-11-20"
SITE = dg.AssetKey("site")


@pytest.fixture(scope="module")
def graph(tmp_path_factory, registry):
    base = tmp_path_factory.mktemp("site_graph")
    env = pipeline_env(base)
    settings = load_settings(env)
    defs = build_definitions(settings, registry)
    with dg.instance_for_test(temp_dir=env["DAGSTER_HOME"]) as instance:
        daily = defs.resolve_job_def(DAILY_JOB_NAME)
        for day in (DAY1, DAY2):
            assert daily.execute_in_process(partition_key=day, instance=instance).success
        site_job = defs.resolve_implicit_job_def_def_for_assets([SITE])
        result = site_job.execute_in_process(instance=instance, asset_selection=[SITE])
        assert result.success
        yield {"defs": defs, "instance": instance, "settings": settings, "result": result, "job": site_job}


def _tokens(instance: dg.DagsterInstance, registry, day: str) -> int:
    total = 0
    for spec in registry.prompts:
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(spec.prompt_id), asset_partitions=[day]), limit=1
        ).records
        total += int(record.asset_materialization.metadata.get("gemini.total_tokens", dg.MetadataValue.int(0)).value)
    return total


def test_the_site_asset_builds_a_page_per_materialized_day(graph, registry):
    site = graph["settings"].site_dir
    for day in (DAY1, DAY2):
        page = (site / "reports" / day / "index.html").read_text()
        assert "Executive Summary" in page and "Research notes" in page and "Continuity Builder" in page
        assert (site / "reports" / day / "dashboard" / "index.html").is_file()
    (materialization,) = graph["result"].asset_materializations_for_node("site")
    meta = materialization.metadata
    assert meta["nh.site.days"].value == 2 and meta["nh.site.newest_day"].value == DAY2
    assert meta["nh.site.full_build"].value is True and meta["nh.site.file_count"].value > 10


def test_the_day_copy_holds_kpis_from_the_materializations(graph, registry):
    day = read_day(graph["settings"].data_root / "site_src" / f"{DAY2}.json")
    assert day.kpis.prompts_run == day.kpis.prompts_total == len(registry.prompts)
    assert day.kpis.prompts_failed == 0 and day.kpis.domains == 10
    assert day.kpis.tokens == _tokens(graph["instance"], registry, DAY2) > 0
    assert day.kpis.generation_s is not None and day.kpis.generation_s > 0
    assert [n.prompt_id for n in day.analyses] == ["continuity_builder", "meta_project_explorer"]
    assert day.payload.permalink == f"/reports/{DAY2}/"
    assert "<script" not in (day.dashboard_html or "")


def test_retention_does_not_shrink_the_site(graph, registry):
    instance, settings = graph["instance"], graph["settings"]
    cleanup = (
        graph["defs"]
        .resolve_job_def(RETENTION_JOB)
        .execute_in_process(
            instance=instance,
            run_config={"ops": {"remove_expired_artifacts": {"config": {"keep_days": 1, "dry_run": False}}}},
        )
    )
    assert cleanup.success
    assert not (settings.data_root / f"publishing/{DAY1}.json").exists(), "retention should have removed it"
    rebuilt = graph["job"].execute_in_process(instance=instance, asset_selection=[SITE])
    assert rebuilt.success
    for day in (DAY1, DAY2):
        assert (settings.site_dir / "reports" / day / "index.html").is_file()
        assert (settings.data_root / "site_src" / f"{day}.json").is_file()
    assert json.loads((settings.site_dir / "days.json").read_text()) == [DAY1, DAY2]


def test_an_update_to_an_old_day_requests_the_site(graph):
    defs, instance = graph["defs"], graph["instance"]
    selection = dg.AssetSelection.assets(SITE)
    quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    assert quiet.get_num_requested(SITE) == 0, "nothing changed since the site was built"
    # A backfill re-materializes an old day's payload (not the latest partition).
    instance.report_runless_asset_event(dg.AssetMaterialization("site_payload_exporter", partition=DAY1))
    after = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=quiet.cursor
    )
    assert after.get_num_requested(SITE) == 1
    again = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=after.cursor
    )
    assert again.get_num_requested(SITE) == 0, "requested once per change, not on every tick"


def test_a_new_site_build_requests_a_deployment(graph):
    defs, instance = graph["defs"], graph["instance"]
    selection = dg.AssetSelection.assets("site_deployment")
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    instance.report_runless_asset_event(dg.AssetMaterialization(SITE))
    second = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=first.cursor
    )
    assert second.get_num_requested(dg.AssetKey("site_deployment")) == 1
