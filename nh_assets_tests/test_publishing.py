"""site_deployment through Dagster with a fake wrangler: deploy, failures, skip without a token."""

import hashlib
import json
import os
import stat
import sys
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationTargetMaterializationData
import pytest

from nh_assets import definitions
from nh_assets.formats.site_payload import PAYLOAD_CHECK
from nh_assets.publishing.wrangler import classify_deploy_error, parse_deploy_output
from nh_assets.settings import REPO_ROOT, load_settings

DAY = "2026-11-20"
TOKEN = "cf-test-token-never-logged-4242"


@pytest.fixture
def fake_wrangler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    script = tmp_path / "bin" / "wrangler"
    script.parent.mkdir(exist_ok=True)
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from nh_assets_tests.fakes.fake_wrangler import main\nsys.exit(main())\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "fake_wrangler.jsonl"
    monkeypatch.setenv("FAKE_WRANGLER_LOG", str(log))
    return {"cli": script, "log": log}


def _defs(settings_env, registry, fake_wrangler, monkeypatch, **env):
    # Settings read the environment at load: the token a test exported counts, as for an operator.
    settings = load_settings({**os.environ, **settings_env, "NH_WRANGLER_CLI": str(fake_wrangler["cli"]), **env})
    return settings, definitions.build_definitions(settings, registry)


def _deploy(defs, instance):
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        partition_key=DAY, instance=instance, asset_selection=[dg.AssetKey("site_deployment")], raise_on_error=False
    )


def _write_payload(settings) -> Path:
    payload = settings.data_root / f"publishing/{DAY}.json"
    payload.parent.mkdir(parents=True, exist_ok=True)
    payload.write_text(json.dumps({"date": DAY, "title": "t"}))
    return payload


def _calls(fake_wrangler) -> list[dict]:
    log = fake_wrangler["log"]
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_deploys_the_site_and_records_where(settings_env, registry, instance, fake_wrangler, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    settings, defs = _defs(
        settings_env, registry, fake_wrangler, monkeypatch, NH_SITE_BUILD_COMMAND="echo built > build_marker.txt"
    )
    _write_payload(settings)
    result = _deploy(defs, instance)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("site_deployment")
    metadata = materialization.metadata
    assert metadata["cloudflare.deployment_url"].value == "https://3f2a9c1e.neurohelix.pages.dev"
    assert metadata["cloudflare.deployment_id"].value == "3f2a9c1e"
    assert metadata["cloudflare.status"].value == "deployed"
    assert metadata["cloudflare.files_uploaded"].value == 2
    assert metadata["cloudflare.duration_s"].value >= 0
    assert (settings.data_root / "build_marker.txt").read_text().strip() == "built"

    (call,) = _calls(fake_wrangler)
    assert call["argv"] == [
        "pages", "deploy", str(settings.site_dir), "--project-name", "neurohelix", "--branch", "production"
    ]
    assert call["token_sha256"] == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert call["send_metrics"] == "false"
    assert TOKEN not in fake_wrangler["log"].read_text()
    logged = "\n".join(str(entry) for entry in instance.all_logs(result.run_id))
    assert TOKEN not in logged and TOKEN not in json.dumps({k: str(v) for k, v in metadata.items()})


@pytest.mark.parametrize(
    ("scenario", "cause", "fix"),
    [
        ("project_not_found", "Project not found", "wrangler pages project create neurohelix"),
        ("auth", "Authentication error", "Cloudflare Pages › Edit"),
    ],
)
def test_a_failed_deploy_fails_with_one_line_cause_and_fix(
    settings_env, registry, instance, fake_wrangler, monkeypatch, scenario, cause, fix
):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("FAKE_WRANGLER_SCENARIO", scenario)
    settings, defs = _defs(settings_env, registry, fake_wrangler, monkeypatch)
    _write_payload(settings)
    result = _deploy(defs, instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.user_failure_data.description
    assert "\n" not in message
    assert "wrangler pages deploy failed (exit 1)" in message and cause in message and fix in message
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert result.asset_materializations_for_node("site_deployment") == []
    assert TOKEN not in "\n".join(str(entry) for entry in instance.all_logs(result.run_id))


def test_without_a_token_the_deploy_is_skipped_not_failed(settings_env, registry, instance, fake_wrangler, monkeypatch):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    settings, defs = _defs(settings_env, registry, fake_wrangler, monkeypatch)
    _write_payload(settings)
    result = _deploy(defs, instance)
    assert result.success
    assert result.asset_materializations_for_node("site_deployment") == []
    assert instance.get_materialized_partitions(dg.AssetKey("site_deployment")) == set()
    (observation,) = result.asset_observations_for_node("site_deployment")
    assert observation.partition == DAY
    assert observation.metadata["cloudflare.status"].value == "skipped"
    assert "CLOUDFLARE_API_TOKEN" in observation.description
    assert _calls(fake_wrangler) == []


def test_a_missing_payload_fails_before_calling_wrangler(settings_env, registry, instance, fake_wrangler, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    _, defs = _defs(settings_env, registry, fake_wrangler, monkeypatch)
    result = _deploy(defs, instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "materialize site_payload_exporter" in failure.step_failure_data.user_failure_data.description
    assert _calls(fake_wrangler) == []


def test_a_new_payload_requests_a_deployment(settings_env, registry, instance, fake_wrangler, monkeypatch):
    _, defs = _defs(settings_env, registry, fake_wrangler, monkeypatch)
    today = datetime.now(timezone.utc).date().isoformat()  # the latest partition (end_offset=1, UTC)
    selection = dg.AssetSelection.assets("site_deployment")
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    assert first.get_num_requested(dg.AssetKey("site_deployment")) == 0  # no payload yet
    instance.report_runless_asset_event(dg.AssetMaterialization("site_payload_exporter", partition=today))
    # The payload's blocking schema check passed on that materialization (the deploy waits for it).
    record = instance.fetch_materializations(dg.AssetKey("site_payload_exporter"), limit=1).records[0]
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("site_payload_exporter"),
            check_name=PAYLOAD_CHECK,
            passed=True,
            partition=today,
            target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            ),
        )
    )
    second = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=first.cursor
    )
    assert second.get_requested_partitions(dg.AssetKey("site_deployment")) == {today}


def test_wrangler_output_parsing():
    output = (
        "✨ Success! Uploaded 5 files (0.9 sec)\n"
        "✨ Deployment complete! Take a peek over at https://0b1901b2.neurohelix-1dq.pages.dev\n"
        "✨ Deployment alias URL: https://preview.neurohelix-1dq.pages.dev\n"
    )
    assert parse_deploy_output(output) == (
        "https://0b1901b2.neurohelix-1dq.pages.dev",
        "0b1901b2",
        "https://preview.neurohelix-1dq.pages.dev",
        5,
    )
    assert parse_deploy_output("✨ Deployment complete!")[:2] == (None, None)
    network = classify_deploy_error(1, "✘ [ERROR] fetch failed", project="neurohelix")
    assert network.retryable and "fetch failed" in network.cause
