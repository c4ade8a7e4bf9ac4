"""retention_cleanup through Dagster: what it removes, what it leaves, and that Dagster forgets nothing."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from dagster._core.event_api import PartitionKeyFilter

from nh_assets import definitions
from nh_assets.operations import retention
from nh_assets.operations.retention import FILES_REMOVED_KEY
from nh_assets.settings import load_settings

pytestmark = pytest.mark.dagster

TODAY = datetime.now(timezone.utc).date()  # NH_TIMEZONE=UTC in these tests
KEEP = 7
EXPIRED, BOUNDARY, FUTURE = TODAY - timedelta(days=KEEP + 2), TODAY - timedelta(days=KEEP), TODAY + timedelta(days=3)
CHECKS = ("output_is_clean",)
PROMPTS = ("ai_ecosystem_watch", "daily_aggregator", "tag_extractor", "site_payload_exporter")


@pytest.fixture
def setup(settings_env, registry, monkeypatch):
    # The job's clock is the test's: days are laid out around TODAY, fixed at import, so a suite
    # that crosses midnight UTC still asks the job about the same days.
    monkeypatch.setattr(retention, "today_in", lambda timezone_name: TODAY)
    env = {**settings_env, "NH_PARTITION_START": (TODAY - timedelta(days=30)).isoformat(), "NH_RETENTION_DAYS": "30"}
    settings = load_settings(env)
    return settings, definitions.build_definitions(settings, registry)


def _write_day(root, registry, day, prompts=PROMPTS):
    paths = []
    for prompt_id in prompts:
        path = root / registry.by_id(prompt_id).output_path(day.isoformat())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{prompt_id} {day}\n")
        paths.append(path)
    return paths


def _run(defs, instance, **config):
    return defs.resolve_job_def("retention_cleanup").execute_in_process(
        instance=instance,
        run_config={"ops": {"remove_expired_artifacts": {"config": {"keep_days": KEEP, **config}}}},
        raise_on_error=False,
    )


def _metadata(result):
    (event,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    return {k: v.value for k, v in event.step_output_data.metadata.items()}


def test_removes_expired_days_only_and_leaves_the_unexpected_alone(setup, registry, instance):
    settings, defs = setup
    root = settings.data_root
    expired = _write_day(root, registry, EXPIRED)
    kept = _write_day(root, registry, BOUNDARY) + _write_day(root, registry, TODAY)
    future = _write_day(root, registry, FUTURE, ["ai_ecosystem_watch"])
    malformed = root / "outputs/daily/2026-13-45/ai_ecosystem_watch.md"
    malformed.parent.mkdir(parents=True)
    malformed.write_text("month 13")
    unknown_old_dir = _write_day(root, registry, EXPIRED - timedelta(days=1), ["ai_ecosystem_watch"])[0].parent
    (unknown_old_dir / "operator_notes.txt").write_text("mine")
    leftover = expired[0].parent / f".{expired[0].name}.abc123.partial"
    leftover.write_text("half")
    stray = root / "publishing/index.html"
    stray.write_text("<html>")

    dry = _run(defs, instance)
    assert dry.success
    dry_meta = _metadata(dry)
    assert dry_meta["nh.dry_run"] is True
    assert dry_meta["nh.removed_files"] == len(expired) + 2  # + the leftover temp file, + the older day's artifact
    assert all(p.exists() for p in expired)

    result = _run(defs, instance, dry_run=False)
    assert result.success
    meta = _metadata(result)
    assert not any(p.exists() for p in expired) and not leftover.exists()
    assert not expired[0].parent.exists()  # outputs/daily/EXPIRED/ was emptied, so removed
    assert all(p.exists() for p in kept + future) and malformed.exists() and stray.exists()
    assert (unknown_old_dir / "operator_notes.txt").exists()
    assert meta["nh.first_kept_day"] == BOUNDARY.isoformat()
    assert meta["nh.future_left_alone"] == [f"outputs/daily/{FUTURE}/ai_ecosystem_watch.md", f"outputs/daily/{FUTURE}/"]
    assert meta["nh.malformed_left_alone"] == ["outputs/daily/2026-13-45"]
    assert f"outputs/daily/{EXPIRED - timedelta(days=1)}/operator_notes.txt" in meta["nh.unknown_left_alone"]
    assert "publishing/index.html" in meta["nh.unknown_left_alone"]
    assert meta["nh.expired_folders_kept"] == [f"outputs/daily/{EXPIRED - timedelta(days=1)}/"]


def _materializations(instance, asset, partition):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[partition]), limit=100
    ).records
    return [r.run_id for r in records]


def _check_results(instance, asset, partition):
    history = []
    for check in CHECKS:
        records = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(asset, check), limit=100, partition_filter=PartitionKeyFilter(key=partition)
        )
        history += [(check, r.run_id) for r in records]
    return sorted(history)


def _removals(instance, asset):
    records = instance.fetch_observations(asset, limit=100).records
    return {r.partition_key: r.asset_observation.metadata[FILES_REMOVED_KEY].value for r in records
            if FILES_REMOVED_KEY in r.asset_observation.metadata}


def test_removed_days_keep_their_history_and_say_their_files_were_removed(setup, registry, instance, fake_cli_env):
    settings, defs = setup
    asset = dg.AssetKey("ai_ecosystem_watch")
    job = defs.resolve_implicit_global_asset_job_def()
    for day in (EXPIRED, TODAY, TODAY):  # the kept day materialized twice
        run = job.execute_in_process(partition_key=day.isoformat(), instance=instance, asset_selection=[asset])
        assert run.success
    # A partition of another asset, recorded without a run (as the history import does).
    _write_day(settings.data_root, registry, EXPIRED, ["daily_aggregator"])
    instance.report_runless_asset_event(dg.AssetMaterialization("daily_aggregator", partition=EXPIRED.isoformat()))
    days = [EXPIRED.isoformat(), TODAY.isoformat()]
    before = {day: (_materializations(instance, asset, day), _check_results(instance, asset, day)) for day in days}
    assert len(before[TODAY.isoformat()][0]) == 2 and len(before[TODAY.isoformat()][1]) == 2 * len(CHECKS)

    dry = _run(defs, instance)
    assert _metadata(dry)["nh.partitions_reported_removed"] == 2
    assert _removals(instance, asset) == {}

    result = _run(defs, instance, dry_run=False)
    assert result.success
    assert _metadata(result)["nh.partitions_reported_removed"] == 2
    expired_file = registry.by_id("ai_ecosystem_watch").output_path(EXPIRED.isoformat())
    assert not (settings.data_root / expired_file).exists()
    # Nothing of Dagster's history is gone: every materialization and check result of both days.
    assert {day: (_materializations(instance, asset, day), _check_results(instance, asset, day)) for day in days} == before
    # The removal is told on the partition; the day stays materialized, so "materialize missing" skips it.
    assert _removals(instance, asset) == {EXPIRED.isoformat(): [str(expired_file)]}
    assert _removals(instance, dg.AssetKey("daily_aggregator")).keys() == {EXPIRED.isoformat()}
    partitions_def = defs.resolve_assets_def(asset).partitions_def
    materialized = dg.AssetPartitionStatus.MATERIALIZED
    assert instance.get_status_by_partition(asset, days, partitions_def) == dict.fromkeys(days, materialized)
    # Idempotent: a second run has nothing new to remove or to report.
    again = _run(defs, instance, dry_run=False)
    assert _metadata(again)["nh.partitions_reported_removed"] == 0
    assert len(instance.fetch_observations(asset, limit=100).records) == 1


def test_a_day_materialized_again_after_its_removal_is_reported_again_only_when_removed_again(
    setup, registry, instance, fake_cli_env
):
    settings, defs = setup
    asset = dg.AssetKey("ai_ecosystem_watch")
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(partition_key=EXPIRED.isoformat(), instance=instance, asset_selection=[asset]).success
    assert _metadata(_run(defs, instance, dry_run=False))["nh.partitions_reported_removed"] == 1
    # The operator brings the day back on purpose: the file exists again, nothing to report.
    assert job.execute_in_process(partition_key=EXPIRED.isoformat(), instance=instance, asset_selection=[asset]).success
    assert _metadata(_run(defs, instance))["nh.partitions_reported_removed"] == 1  # dry run: would remove it again
    assert _metadata(_run(defs, instance, dry_run=False))["nh.partitions_reported_removed"] == 1
    assert len(_materializations(instance, asset, EXPIRED.isoformat())) == 2


def test_schedule_is_stopped_and_deletes_for_real(setup):
    settings, defs = setup
    schedule = defs.resolve_schedule_def("retention_cleanup_daily")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    config = schedule.evaluate_tick(dg.build_schedule_context()).run_requests[0].run_config
    assert config["ops"]["remove_expired_artifacts"]["config"] == {
        "keep_days": settings.retention_days, "dry_run": False
    }
