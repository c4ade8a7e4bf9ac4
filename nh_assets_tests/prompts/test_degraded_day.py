"""A prompt that fails for good no longer costs the day: the catch-up condition, in process.

The daily job runs with the fast fake CLI while one research prompt fails at once (an untrusted
folder, no retry; an auth failure would now fail every step, as it should). Dagster abandons everything built on it and the run fails; then Dagster's own evaluator
of automation conditions (what the ``neurohelix_automation`` sensor runs each tick) requests the
held-back assets, and their run builds the report from the other inputs, naming the missing one
with the cause the failed step recorded.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.formats.coverage import read_notes
from nh_assets.prompts.catch_up import catch_up_condition
from nh_assets.prompts.upstream import collect_upstream

pytestmark = pytest.mark.dagster

DAY = "2026-11-20"
FAILING = "developer_tools"
# Everything that reads developer_tools on the same day, directly or through another synthesis,
# and the two rows that read past reports: a run orders steps by asset key, whatever the day.
HELD_BACK = {
    "concept_synthesizer", "novelty_filter", "cross_domain_insight", "visualization_prompt", "narrative_mode",
    "daily_aggregator", "tag_extractor", "dashboard_renderer", "site_payload_exporter", "morning_brief",
    "continuity_builder", "meta_project_explorer",
}
NOON = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)  # DAY is the latest partition then
# Unpartitioned: the site is rebuilt whenever any day's artifacts change, and deployed after it.
PUBLISHING = {"site", "site_deployment"}


def _requested(defs, instance, minutes: int, previous=None) -> tuple[set[str], object]:
    result = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=NOON + timedelta(minutes=minutes),
        cursor=previous.cursor if previous else None,
    )
    keys = {r.key.to_user_string() for r in result.results if r.true_subset.size}
    for key in keys:
        assert result.get_requested_partitions(dg.AssetKey(key)) == ({None} if key in PUBLISHING else {DAY}), key
    return keys, result


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
def test_a_failed_research_prompt_degrades_the_day_instead_of_cancelling_it(
    settings, registry, instance, fake_cli_env, monkeypatch
):
    defs = build_definitions(settings, registry)
    job = defs.resolve_job_def(DAILY_JOB_NAME)
    before, tick0 = _requested(defs, instance, 0)
    assert before == set()

    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", "untrusted")
    monkeypatch.setenv("FAKE_GEMINI_ONLY_FOR", FAILING)
    daily = job.execute_in_process(partition_key=DAY, instance=instance, raise_on_error=False)
    assert not daily.success  # honest: a prompt failed
    materialized = {e.asset_key.to_user_string() for e in daily.get_asset_materialization_events()}
    assert materialized == {s.prompt_id for s in registry.prompts} - HELD_BACK - {FAILING}

    requested, tick1 = _requested(defs, instance, 1, tick0)
    assert requested - PUBLISHING == HELD_BACK  # (the site follows any day's change, as always)
    catch_up = job.execute_in_process(
        partition_key=DAY, instance=instance, asset_selection=[dg.AssetKey(k) for k in sorted(HELD_BACK)]
    )
    assert catch_up.success

    data = settings.data_root
    report = (data / f"reports/daily_report_{DAY}.md").read_text()
    coverage = read_notes(report)
    assert [m.prompt_id for m in coverage.missing_inputs] == [FAILING]
    reason = coverage.missing_inputs[0].reason
    assert reason.startswith(f"failed for {DAY} in run {daily.run_id[:8]}: {FAILING}: Gemini untrusted_folder: exit 55")
    assert "fix:" not in reason  # the cause, not the operator's instructions
    payload = json.loads((data / f"publishing/{DAY}.json").read_text())
    assert payload["missing_inputs"] == [{"prompt_id": FAILING, "reason": reason}]
    assert payload["missing_sections"] == []
    assert (data / f"publishing/tags_{DAY}.json").is_file() and (data / f"dashboards/dashboard_{DAY}.html").is_file()
    # The syntheses that read the failed note say so too.
    assert f"`{FAILING}`" in (data / f"outputs/daily/{DAY}/concept_synthesizer.md").read_text()

    # The failure stays visible: the prompt has no materialization for DAY and its run failed.
    assert not (data / f"outputs/daily/{DAY}/{FAILING}.md").exists()
    assert instance.get_run_by_id(daily.run_id).status == dg.DagsterRunStatus.FAILURE

    # Once caught up, no day's asset is requested again: the trigger fires once per failure (the
    # site, which follows every change, is asked to rebuild once more for the catch-up's artifacts).
    again, tick2 = _requested(defs, instance, 2, tick1)
    assert again <= PUBLISHING
    later, _ = _requested(defs, instance, 3, tick2)
    assert later == set()


def test_every_row_that_reads_something_catches_up_and_no_other(registry):
    with_condition = {s.prompt_id for s in registry.prompts if catch_up_condition(s, "UTC") is not None}
    assert with_condition == HELD_BACK | {"market_implication"}  # research notes read nothing


def test_optional_inputs_may_be_missing_but_not_all_of_them(registry, tmp_path):
    from datetime import date

    from nh_assets.prompts.upstream import MissingSameDayInput

    spec = registry.by_id("visualization_prompt")
    reasons = []

    def why(prompt_id, day):
        reasons.append((prompt_id, day))
        return f"why {prompt_id}"

    note = tmp_path / f"outputs/daily/{DAY}/model_comparison.md"
    note.parent.mkdir(parents=True)
    note.write_text("---\nprompt_id: model_comparison\n---\n\n# Models\n")
    found = collect_upstream(spec, registry, day=date(2026, 11, 20), first_day=date(2026, 11, 1), data_root=tmp_path, why_missing=why)
    assert [(a.prompt_id, a.present, a.missing_reason) for a in found] == [
        ("cross_domain_insight", False, "why cross_domain_insight"),
        ("market_implication", False, "why market_implication"),
        ("model_comparison", True, None),
    ]
    note.unlink()
    with pytest.raises(MissingSameDayInput, match="has none of its same-day inputs"):
        collect_upstream(spec, registry, day=date(2026, 11, 20), first_day=date(2026, 11, 1), data_root=tmp_path, why_missing=why)
