"""A bad day through the REAL @google/gemini-cli: a sloppy model and a research prompt that always fails.

The operator's command runs the day (``dagster asset materialize --select '*'``) against a fake
Gemini API that answers like a careless model (``sloppy_model``): loose headings and a section
left out of the report, tags in prose and broken JSON before valid fenced JSON, an empty answer,
refusals, and HTTP 400 for every request of ``developer_tools``. That run fails, honestly.
Dagster's evaluator of automation conditions (what the ``neurohelix_automation`` sensor runs)
then names the held-back assets, and the operator's command materializes exactly those: the
report, tags, dashboard and payload exist, name the missing input and the missing section, and
every re-ask shows in the metadata. The registry is the shipped one, except that the failing
row retries once instead of three times, to keep the test's backoff wait short.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.event_api import PartitionKeyFilter  # the 1.13 storage API takes it; not re-exported

from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.formats.coverage import read_notes
from nh_assets.formats.vocabulary import REPORT_SECTIONS
from nh_assets.operations.alerts import summarize_failure
from nh_assets.prompts.checks import SECTIONS_CHECK
from nh_assets.registry import load_registry
from nh_assets.settings import load_settings
from nh_assets_tests.support.registry_edit import edited_registry, latest_metadata
from nh_assets_tests.support.fakes import ONESHOT_FOR_THE_FAKE_CLI, shared_fake_api
from nh_assets_tests.support.sloppy_model import DROPPED_SECTION, SloppyModel, prompt_id_of

pytestmark = pytest.mark.real_cli

DAGSTER = str(Path(sys.executable).parent / "dagster")
DAY1, DAY2 = "2026-11-21", "2026-11-22"
FAILING, REFUSING = "developer_tools", "prompt_engineering"
HELD_BACK = {
    "concept_synthesizer", "novelty_filter", "cross_domain_insight", "visualization_prompt", "narrative_mode",
    "daily_aggregator", "tag_extractor", "dashboard_renderer", "site_payload_exporter", "morning_brief",
    "continuity_builder", "meta_project_explorer",  # held back in the run: it orders steps by asset key
}
NOON = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)


@pytest.fixture
def short_retry_registry(tmp_path) -> Path:
    """The shipped registry with one retry for the failing row (three would only lengthen the wait)."""

    def one_retry(row: dict[str, str]) -> None:
        if row["prompt_id"] == FAILING:
            row["max_retries"] = "1"

    return edited_registry(tmp_path / "prompts.tsv", one_retry)


@pytest.fixture
def sloppy_api(tmp_path):
    api = SloppyModel(always_fails=FAILING, always_refuses=REFUSING, log_path=tmp_path / "sloppy_requests.jsonl").start()
    try:
        yield api
    finally:
        api.stop()


def _materialize(env: dict[str, str], selection: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", selection, "--partition", DAY2],
        env=env, capture_output=True, text=True, timeout=900, cwd=cwd,
    )


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
def test_a_sloppy_model_and_a_failing_prompt_still_publish_the_day(
    tmp_path, dagster_home, fake_cli, short_retry_registry, gemini_cli_path, sloppy_api, gemini_env_factory
):
    base = {
        "DAGSTER_HOME": str(dagster_home), "NH_DATA_ROOT": str(tmp_path / "data"), "NH_GEMINI_CLI": str(fake_cli),
        "NH_PARTITION_START": "2026-11-01", "NH_TIMEZONE": "UTC", "NH_REGISTRY": str(short_retry_registry),
        # The fast fake CLI's requests go through the rate gate to the shared fake API.
        "NH_GEMINI_API_URL": shared_fake_api().base_url,
    }
    registry = load_registry(short_retry_registry)
    data = Path(base["NH_DATA_ROOT"])
    # Yesterday, and a good note for today that the refusing prompt must not overwrite (fast fake CLI).
    defs = build_definitions(load_settings({**base, **ONESHOT_FOR_THE_FAKE_CLI}), registry)
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        job = defs.resolve_job_def(DAILY_JOB_NAME)
        assert job.execute_in_process(partition_key=DAY1, instance=instance).success
        assert job.execute_in_process(partition_key=DAY2, instance=instance, asset_selection=[dg.AssetKey(REFUSING)]).success
    good_note = (data / f"outputs/daily/{DAY2}/{REFUSING}.md").read_bytes()

    env = gemini_env_factory(sloppy_api.base_url)
    # The real CLI on the default transport: warm CLIs.
    env.update(base, NH_GEMINI_CLI=gemini_cli_path, TMPDIR=tempfile.mkdtemp(prefix="nh-"))
    # As an operator would: the CLI's own GOOGLE_GEMINI_BASE_URL names the endpoint; the gate keeps it.
    del env["NH_GEMINI_API_URL"]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        tick = lambda minutes, previous=None: dg.evaluate_automation_conditions(  # noqa: E731
            defs=defs, instance=instance, evaluation_time=NOON + timedelta(minutes=minutes),
            cursor=previous.cursor if previous else None,
        )
        tick0 = tick(0)
        assert tick0.total_requested == 0

        daily = _materialize(env, "*", tmp_path)
        assert daily.returncode != 0  # two prompts failed: the run says so
        assert "RUN_FAILURE" in daily.stdout + daily.stderr

        tick1 = tick(1, tick0)
        requested = {r.key.to_user_string() for r in tick1.results if r.true_subset.size}
        publishing = {"site", "site_deployment"}  # unpartitioned: the site follows any day's change
        # Whether the site is asked to rebuild on this tick depends on what else is in progress.
        assert requested - publishing == HELD_BACK
        catch_up = _materialize(env, ",".join(sorted(requested - publishing)), tmp_path)
        assert catch_up.returncode == 0, catch_up.stdout[-3000:] + catch_up.stderr[-3000:]
        # Caught up once, not in a loop: no day's asset is requested again (only the site may rebuild).
        assert {r.key.to_user_string() for r in tick(2, tick1).results if r.true_subset.size} <= publishing

        # The day is published: report, tags, dashboard, payload.
        report = (data / f"reports/daily_report_{DAY2}.md").read_text()
        tags = json.loads((data / f"publishing/tags_{DAY2}.json").read_text())
        payload = json.loads((data / f"publishing/{DAY2}.json").read_text())
        assert (data / f"dashboards/dashboard_{DAY2}.html").read_text().startswith("<!doctype html>")

        # The missing input is named, with the cause its failed step recorded.
        coverage = read_notes(report)
        assert [m.prompt_id for m in coverage.missing_inputs] == [FAILING]
        assert coverage.missing_inputs[0].reason.startswith(f"failed for {DAY2} in run ")
        assert payload["missing_inputs"] == [{"prompt_id": FAILING, "reason": coverage.missing_inputs[0].reason}]
        # The loose headings were normalized; the section the model never wrote is noted, and a WARN.
        headings = [line[3:] for line in report.splitlines() if line.startswith("## ")]
        assert headings == [s for s in REPORT_SECTIONS if s != DROPPED_SECTION]
        assert coverage.missing_sections == (DROPPED_SECTION,)
        assert payload["missing_sections"] == [DROPPED_SECTION]
        assert [s["heading"] for s in payload["sections"]] == headings
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("daily_aggregator"), SECTIONS_CHECK)], partition_filter=PartitionKeyFilter(key=DAY2)
        )
        (record,) = check.values()
        evaluation = record.event.dagster_event.asset_check_evaluation_data
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN

        # Every re-ask is in the metadata, with what was wrong.
        report_meta = latest_metadata(instance, "daily_aggregator", DAY2)
        assert report_meta["nh.answers"].value == 3
        assert [a["outcome"] for a in report_meta["nh.answer_log"].value] == ["incomplete"] * 3
        tag_meta = latest_metadata(instance, "tag_extractor", DAY2)
        assert [a["outcome"] for a in tag_meta["nh.answer_log"].value] == ["rejected", "rejected", "accepted"]
        assert "no parseable JSON object" in tag_meta["nh.answer_log"].value[0]["complaints"][0]
        assert tags == {"tags": ["agents", "open weights", "chips", "eu ai act", "evals"], "categories": tags["categories"]}
        assert len(tags["categories"]) == 3
        empty = latest_metadata(instance, "hardware_compute", DAY2)["nh.answer_log"].value
        assert [a["outcome"] for a in empty] == ["rejected", "accepted"] and "empty" in empty[0]["complaints"][0]
        refused = latest_metadata(instance, "ethics_alignment", DAY2)["nh.answer_log"].value
        assert [a["outcome"] for a in refused] == ["rejected", "accepted"] and "refusal" in refused[0]["complaints"][0]
        # The re-ask carried the previous answer and the complaints, through the same CLI call.
        prompts = [r["prompt"] for r in sloppy_api.requests if prompt_id_of(r.get("prompt") or "") == "tag_extractor"]
        assert len(prompts) == 3 and "YOUR PREVIOUS ANSWER WAS REJECTED" in prompts[2] and "PREVIOUS ANSWER" not in prompts[0]

        # A prompt that only refused kept its previous good artifact.
        assert (data / f"outputs/daily/{DAY2}/{REFUSING}.md").read_bytes() == good_note

        # The failed run's alert names both failures.
        runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        (failed,) = [r for r in runs if r.tags.get("dagster/partition") == DAY2]
        step_failures = [
            e.dagster_event for e in instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        ]
        failure_event = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
        summary = summarize_failure(instance, failed, failure_event, step_failures, "http://127.0.0.1:3000")
        assert set(summary.failed_targets) >= {FAILING, REFUSING}
