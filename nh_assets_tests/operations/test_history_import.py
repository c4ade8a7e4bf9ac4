"""import_history through Dagster, and the parity report: legacy days become materialized partitions."""

import os

import dagster as dg
import pytest

from nh_assets import definitions
from nh_assets.artifacts import sha256_file
from nh_assets.operations.parity import main as parity_main
from nh_assets.settings import load_settings

pytestmark = pytest.mark.dagster

START = "2026-11-01"
D1, D2, BEFORE_START = "2026-11-05", "2026-11-06", "2026-10-30"
PROMPTS = ("ai_ecosystem_watch", "daily_aggregator", "tag_extractor", "site_payload_exporter", "dashboard_renderer")


@pytest.fixture
def setup(settings_env, registry, monkeypatch):
    settings = load_settings({**settings_env, "NH_PARTITION_START": START})
    return settings, definitions.build_definitions(settings, registry)


def _write_tree(root, registry, days, prompts=PROMPTS, text="legacy"):
    for day in days:
        for prompt_id in prompts:
            path = root / registry.by_id(prompt_id).output_path(day)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{text} {prompt_id} {day}\n")


@pytest.fixture
def legacy(tmp_path, registry):
    root = tmp_path / "legacy"
    _write_tree(root, registry, [D1, D2, BEFORE_START])
    (root / f"outputs/daily/{D1}/notes.txt").write_text("operator notes")
    (root / "reports/README.md").write_text("about reports")
    (root / "publishing/manifest.json").write_text("{}")
    (root / "outputs/daily/2026-02-30").mkdir(parents=True)
    (root / "outputs/daily/2026-02-30/ai_ecosystem_watch.md").write_text("no such day")
    os.symlink("/etc/hostname", root / "reports/daily_report_2026-11-07.md")
    return root


def _import(defs, instance, **config):
    return defs.resolve_job_def("import_history").execute_in_process(
        instance=instance, run_config=config or None, raise_on_error=False
    )


def _step_metadata(result, step):
    (event,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT and e.step_key == step]
    return {k: v.value for k, v in event.step_output_data.metadata.items()}


def test_imports_a_legacy_tree_and_lists_what_it_did_not(setup, registry, instance, legacy):
    settings, defs = setup
    result = _import(defs, instance, legacy_root=str(legacy))
    assert result.success
    meta = _step_metadata(result, "import_legacy_artifacts")
    assert meta["nh.imported"] == 2 * len(PROMPTS) and meta["nh.copied_into_data_root"] == 2 * len(PROMPTS)
    assert sorted(meta["nh.unexpected_files"]) == [
        f"outputs/daily/{D1}/notes.txt",
        "publishing/manifest.json",
        "reports/README.md",
        "reports/daily_report_2026-11-07.md",  # a symlink: never followed, never imported
    ]
    assert meta["nh.malformed_dates"] == ["outputs/daily/2026-02-30"]
    assert len(meta["nh.outside_partitions"]) == len(PROMPTS)

    for prompt_id in PROMPTS:
        assert instance.get_materialized_partitions(dg.AssetKey(prompt_id)) == {D1, D2}
    # What the UI (and "materialize missing") sees: imported days materialized, the next one missing.
    partitions_def = defs.resolve_assets_def("ai_ecosystem_watch").partitions_def
    status = instance.get_status_by_partition(dg.AssetKey("ai_ecosystem_watch"), [D1, D2, "2026-11-07"], partitions_def)
    materialized = dg.AssetPartitionStatus.MATERIALIZED
    assert status == {D1: materialized, D2: materialized, "2026-11-07": None}
    event = instance.get_latest_materialization_event(dg.AssetKey("daily_aggregator"))
    materialization = event.asset_materialization
    copied = settings.data_root / f"reports/daily_report_{D2}.md"
    assert event.run_id == ""  # runless: reported by the import, produced by no run
    assert materialization.metadata["nh.imported_by_run"].value == result.run_id
    assert materialization.metadata["path"].value == str(copied)
    assert materialization.metadata["sha256"].value == sha256_file(copied)
    assert materialization.metadata["nh.imported_from"].value == str(legacy / f"reports/daily_report_{D2}.md")
    assert materialization.tags["dagster/data_version"] == sha256_file(copied)
    assert not (settings.data_root / f"outputs/daily/{D1}/notes.txt").exists()  # unexpected: not copied

    parity = _step_metadata(result, "parity_report")
    assert parity["parity.ok"] is False  # the days before the partitions were not imported
    assert f"missing in new | {BEFORE_START}" in parity["parity.report"]

    again = _import(defs, instance, legacy_root=str(legacy))
    again_meta = _step_metadata(again, "import_legacy_artifacts")
    assert again_meta["nh.imported"] == 0 and again_meta["nh.already_materialized"] == 2 * len(PROMPTS)


def test_conflicts_and_date_range(setup, registry, instance, legacy):
    settings, defs = setup
    _write_tree(settings.data_root, registry, [D2], ["ai_ecosystem_watch"], text="regenerated")
    result = _import(defs, instance, legacy_root=str(legacy), start_date=D2, end_date=D2)
    assert result.success
    meta = _step_metadata(result, "import_legacy_artifacts")
    assert meta["nh.imported"] == len(PROMPTS) - 1
    assert meta["nh.conflicts"] == [
        f"outputs/daily/{D2}/ai_ecosystem_watch.md: the data root already holds different content (kept)"
    ]
    assert meta["nh.outside_date_range"] == 2 * len(PROMPTS)
    assert (settings.data_root / f"outputs/daily/{D2}/ai_ecosystem_watch.md").read_text().startswith("regenerated")
    assert instance.get_materialized_partitions(dg.AssetKey("ai_ecosystem_watch")) == set()
    assert instance.get_materialized_partitions(dg.AssetKey("daily_aggregator")) == {D2}


def test_imports_the_data_root_in_place_by_default(setup, registry, instance):
    settings, defs = setup
    _write_tree(settings.data_root, registry, [D1])
    result = _import(defs, instance)
    assert result.success
    meta = _step_metadata(result, "import_legacy_artifacts")
    assert meta["nh.imported"] == len(PROMPTS) and meta["nh.copied_into_data_root"] == 0
    assert _step_metadata(result, "parity_report")["parity.ok"] is True


def test_a_missing_legacy_root_fails_clearly(setup, instance, tmp_path):
    _, defs = setup
    result = _import(defs, instance, legacy_root=str(tmp_path / "nope"))
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "is not a directory" in failure.step_failure_data.user_failure_data.description


def test_parity_cli(tmp_path, registry, capsys):
    legacy, new = tmp_path / "legacy", tmp_path / "new"
    _write_tree(legacy, registry, [D1])
    _write_tree(new, registry, [D1, D2])
    assert parity_main([str(legacy), str(new)]) == 0
    assert "0 differs, 0 missing in new" in capsys.readouterr().out

    (new / f"reports/daily_report_{D1}.md").write_text("changed")
    (new / f"publishing/{D1}.json").unlink()
    assert parity_main([str(legacy), str(new), "--date", D1]) == 1
    out = capsys.readouterr().out
    assert f"differs         {D1}  daily_aggregator" in out
    assert f"missing in new  {D1}  site_payload_exporter" in out
    assert parity_main([str(legacy), str(new), "--date", D1, "--presence-only"]) == 1  # still one missing
    assert parity_main([str(legacy), str(tmp_path / "absent")]) == 2
