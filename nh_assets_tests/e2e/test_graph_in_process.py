"""The whole graph in process with the fake CLI: two consecutive days and cross-day lineage."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.artifacts import strip_front_matter
from nh_assets.artifacts import sha256_file
from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.formats.vocabulary import REPORT_SECTIONS

pytestmark = pytest.mark.dagster

DAY1, DAY2 = "2026-11-19", "2026-11-20"


def _calls(log: Path) -> dict[tuple[str, str], dict]:
    calls = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        day = next(l.split(":", 1)[1].strip() for l in entry["prompt"].splitlines() if l.startswith("DATE:"))
        calls[(entry["prompt_id"], day)] = entry
    return calls


def _materialization(instance, key: str, day: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[day]), limit=1
    ).records
    assert records, f"{key} has no materialization for {day}"
    return records[0].asset_materialization.metadata


@pytest.fixture(scope="module")
def two_days(tmp_path_factory, registry):
    """Materialize DAY1 then DAY2 with the fake CLI; shared by the tests below (slow-ish)."""
    from nh_assets.settings import load_settings
    from nh_assets_tests.support.fakes import pipeline_env

    base = tmp_path_factory.mktemp("two_days")
    env = pipeline_env(base)
    home = env["DAGSTER_HOME"]
    log = base / "calls.jsonl"
    settings = load_settings(env)
    defs = build_definitions(settings, registry)
    mp = pytest.MonkeyPatch()
    mp.setenv("FAKE_GEMINI_LOG", str(log))
    try:
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            job = defs.resolve_job_def(DAILY_JOB_NAME)
            for day in (DAY1, DAY2):
                assert job.execute_in_process(partition_key=day, instance=instance).success
            yield {"instance": instance, "data": base / "data", "calls": _calls(log), "registry": registry}
    finally:
        mp.undo()


def test_every_prompt_wrote_its_artifact_for_both_days(two_days):
    for spec in two_days["registry"].prompts:
        for day in (DAY1, DAY2):
            assert (two_days["data"] / spec.output_path(day)).is_file(), f"{spec.prompt_id} {day}"
    assert (two_days["data"] / f"outputs/daily/{DAY1}/ai_ecosystem_watch.md").read_text().startswith("---\nprompt_id: ai_ecosystem_watch\n")


def test_yesterdays_ideas_reach_novelty_filter(two_days):
    prompt = two_days["calls"][("novelty_filter", DAY2)]["prompt"]
    yesterday = (two_days["data"] / f"outputs/daily/{DAY1}/concept_synthesizer.md").read_text()
    assert f"concept_synthesizer for {DAY1}" in prompt
    body = strip_front_matter(yesterday).strip()
    assert body.splitlines()[0] in prompt
    # On the first day of history there is nothing from the day before: noted, not fatal.
    first = two_days["calls"][("novelty_filter", DAY1)]["prompt"]
    assert "concept_synthesizer@2026-11-18" in first.split("Not available", 1)[1]


def test_seven_day_window_reads_what_exists(two_days):
    prompt = two_days["calls"][("continuity_builder", DAY2)]["prompt"]
    assert f"daily_aggregator for {DAY1}" in prompt
    missing = prompt.split("Not available", 1)[1]
    for day in ("2026-11-13", "2026-11-18"):
        assert f"daily_aggregator@{day}" in missing
    meta = _materialization(two_days["instance"], "continuity_builder", DAY2)
    upstream = meta["nh.upstream"].value
    assert [u["partition"] for u in upstream] == [f"2026-11-{d}" for d in range(13, 20)]
    present = [u for u in upstream if u["present"]]
    assert [u["partition"] for u in present] == [DAY1]
    assert present[0]["sha256"] == sha256_file(two_days["data"] / f"reports/daily_report_{DAY1}.md")


def test_metadata_records_the_old_manifest_facts(two_days):
    meta = _materialization(two_days["instance"], "daily_aggregator", DAY2)
    path = Path(meta["path"].value)
    assert path == two_days["data"] / f"reports/daily_report_{DAY2}.md"
    assert meta["sha256"].value == sha256_file(path)
    assert meta["bytes"].value == path.stat().st_size
    assert meta["gemini.model"].value == "gemini-2.5-pro"
    assert meta["gemini.total_tokens"].value == meta["gemini.input_tokens"].value + meta["gemini.output_tokens"].value
    assert meta["nh.attempts"].value == 1
    assert meta["preview"].value.startswith("# daily_aggregator")  # front matter stripped: it is metadata already
    assert len(meta["nh.upstream"].value) == 16


def test_structured_artifacts_are_valid(two_days):
    tags = json.loads((two_days["data"] / f"publishing/tags_{DAY2}.json").read_text())
    assert 5 <= len(tags["tags"]) <= 8 and 3 <= len(tags["categories"]) <= 5
    payload = json.loads((two_days["data"] / f"publishing/{DAY2}.json").read_text())
    assert payload["date"] == DAY2 and payload["tags"] == tags["tags"]
    assert [s["heading"] for s in payload["sections"]] == list(REPORT_SECTIONS)
    assert payload["recommendations"] and payload["permalink"] == f"/reports/{DAY2}/"
    dashboard = (two_days["data"] / f"dashboards/dashboard_{DAY2}.html").read_text()
    assert dashboard.startswith("<!doctype html>") and "<script" not in dashboard.lower()
