"""Asset checks: the judges on crafted texts, then the checks inside the asset steps with the fake CLI.

The judges are pure functions, tried on good texts and on every way an artifact has gone bad.
Through Dagster, one good day is materialized by the daily job (each asset judges its own
artifact in its own step); the fake CLI then answers a report without its sections (published
with the gap noted, a WARN) and answers with CLI error text (refused before anything is
written), and the verdicts are read back per partition from the instance.
"""

import json
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.event_api import PartitionKeyFilter  # the 1.13 storage API takes it; not re-exported
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationTargetMaterializationData

import nh_assets.operations.report_deadline as deadline_module
from nh_assets.artifacts import with_front_matter
from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.formats import FORMATS, Verdict
from nh_assets.formats.brief import BRIEF_CHECK
from nh_assets.formats.cleanliness import CLEAN_CHECK
from nh_assets.formats.markdown import judge_sections
from nh_assets.formats.site_payload import PAYLOAD_CHECK, build_site_payload, judge_payload
from nh_assets.formats.tags_json import TAGS_CHECK, TagsDocument, judge_tags
from nh_assets.formats.vocabulary import REPORT_SECTIONS
from nh_assets.operations.alerts import summarize_failure
from nh_assets.operations.report_deadline import DEADLINE_JOB_NAME, ON_TIME_CHECK, report_lateness
from nh_assets.partitions import daily_partitions
from nh_assets.prompts.checks import MODEL_CHECK, SECTIONS_CHECK, check_specs_for, evaluate_checks
from nh_assets.prompts.sources import GROUNDED_CHECK
from nh_assets.settings import load_settings
from nh_assets_tests.support.fakes import pipeline_env

DAY = "2026-11-20"
UTC = timezone.utc
PUBLISHING_TAIL = ("tag_extractor", "dashboard_renderer", "site_payload_exporter")
# What site_deployment should use (see nh_assets.prompts.checks): tried here on a stand-in asset.
RECOMMENDED_DEPLOY_CONDITION = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


def judge_clean(text: str, output_format: str) -> Verdict:
    """The format's own clean rule, as the asset's step applies it."""
    rule = next(rule for rule in FORMATS[output_format].rules() if rule.name == CLEAN_CHECK)
    return rule.judge(text, DAY)


def _clock(at: datetime):
    return lambda zone: at.astimezone(zone)


def _key(asset: str, check: str) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(dg.AssetKey(asset), check)


def _artifact_check_keys(defs: dg.Definitions) -> set[dg.AssetCheckKey]:
    """The checks the prompt assets declare themselves (the deadline check is defined apart)."""
    graph = defs.resolve_asset_graph()
    return {key for key in graph.asset_check_keys if key.name != ON_TIME_CHECK}


def _latest_for(instance: dg.DagsterInstance, keys, partition: str):
    return instance.event_log_storage.get_latest_asset_check_execution_by_key(
        list(keys), partition_filter=PartitionKeyFilter(key=partition)
    )


@pytest.fixture(scope="module")
def day(tmp_path_factory, registry):
    """DAY materialized by the daily job in a temporary instance."""
    base = tmp_path_factory.mktemp("checks_day")
    env = pipeline_env(base, NH_REPORT_DEADLINE_HOUR="9")
    home = Path(env["DAGSTER_HOME"])
    settings = load_settings(env)
    defs = build_definitions(settings, registry)
    mp = pytest.MonkeyPatch()
    mp.delenv("FAKE_GEMINI_SCENARIO", raising=False)
    mp.delenv("FAKE_GEMINI_ONLY_FOR", raising=False)
    mp.setenv("FAKE_GEMINI_STATE", str(base / "fake_state"))
    mp.setenv("FAKE_GEMINI_SEARCH", "1")  # research rows search, through the gate, as the real CLI does
    mp.setattr(deadline_module, "_now", _clock(datetime(2026, 11, 20, 12, tzinfo=UTC)))
    try:
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            result = defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(partition_key=DAY, instance=instance)
            assert result.success
            yield SimpleNamespace(
                defs=defs, instance=instance, data=settings.data_root, result=result, settings=settings, registry=registry
            )
    finally:
        mp.undo()


# -- the judges, on crafted texts -------------------------------------------------------------------


def _report(sections=REPORT_SECTIONS, extra: str = "") -> str:
    body = "# NeuroHelix Daily Report\n\n" + "".join(f"## {s}\n\n- a finding about {s.lower()}\n\n" for s in sections)
    return with_front_matter(body + extra, {"prompt_id": "daily_aggregator", "date": DAY, "model": "gemini-2.5-pro"})


GOOD_TAGS = {"tags": ["agents", "chips", "open-weights", "eu-ai-act", "evals"], "categories": ["Models", "Research", "Hardware"]}


def _payload(**changes) -> str:
    tags = TagsDocument.model_validate(GOOD_TAGS)
    doc = build_site_payload(date=DAY, report_markdown=_report(), tags=tags, demo=False).model_dump()
    doc.update(changes)
    return json.dumps(doc)


HTML = "<!doctype html><html><body><header><h1>Dashboard</h1></header><main>{}</main></body></html>"


@pytest.mark.fast
def test_required_sections_come_from_the_registry_column(registry):
    assert registry.by_id("daily_aggregator").required_sections == REPORT_SECTIONS
    assert registry.by_id("ai_ecosystem_watch").required_sections == ()


@pytest.mark.fast
@pytest.mark.parametrize(
    ("text", "output_format"),
    [(_report(), "markdown"), (HTML.format("<section><p>Three signals today.</p></section>"), "html")],
    ids=["markdown", "html"],
)
def test_judge_clean_passes_a_good_artifact(text, output_format):
    assert judge_clean(text, output_format).passed


@pytest.mark.fast
def test_good_sections_tags_and_payload_pass():
    assert judge_sections(_report(), REPORT_SECTIONS).passed
    assert judge_tags(json.dumps(GOOD_TAGS)).passed
    verdict = judge_payload(_payload(), DAY)
    assert verdict.passed and verdict.metadata["nh.sections"] == len(REPORT_SECTIONS)


BAD = {
    "missing sections": (
        lambda: judge_sections(_report([s for s in REPORT_SECTIONS if s not in ("Market Dynamics", "Hardware Landscape")]), REPORT_SECTIONS),
        "missing required ## section(s): Market Dynamics, Hardware Landscape",
    ),
    "cli error text": (
        lambda: judge_clean(_report(extra="\n[API Error: got status: 429 Too Many Requests]\n"), "markdown"),
        "holds Gemini CLI error text 'API Error', 'status: 429'",
    ),
    "cli error text in html": (
        lambda: judge_clean(HTML.format("<p>Error executing tool google_web_search</p>"), "html"),
        "holds Gemini CLI error text 'Error executing'",
    ),
    "empty note": (
        lambda: judge_clean(with_front_matter("", {"prompt_id": "startup_radar", "date": DAY}), "markdown"),
        "no content beyond its front matter",
    ),
    "empty dashboard": (lambda: judge_clean(HTML.format("<section> </section>"), "html"), "no content beyond"),
    "tags not json": (lambda: judge_tags(json.dumps(GOOD_TAGS)[:40]), "tags file is not valid JSON"),
    "tags not an object": (lambda: judge_tags(json.dumps(GOOD_TAGS["tags"])), "holds a JSON list, not an object"),
    "too few tags": (
        lambda: judge_tags(json.dumps({**GOOD_TAGS, "tags": ["agents", "chips"]})),
        "tags JSON invalid at tags: List should have at least 5 items",
    ),
    "unknown category": (
        lambda: judge_tags(json.dumps({**GOOD_TAGS, "categories": ["Models", "Research", "Cooking"]})),
        "category 'Cooking' is not one of",
    ),
    "payload extra key": (
        lambda: judge_payload(_payload(surprise=1), DAY),
        "does not match the schema at surprise: Extra inputs are not permitted",
    ),
    "payload not json": (lambda: judge_payload(_payload()[:60], DAY), "site payload does not match the schema"),
    "payload wrong day": (
        lambda: judge_payload(_payload(date="2026-11-19"), DAY),
        "site payload is dated 2026-11-19, not 2026-11-20",
    ),
}


@pytest.mark.fast
@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_artifact_fails_its_judge_with_a_clear_description(case):
    judge, words = BAD[case]
    verdict = judge()
    assert not verdict.passed
    assert words in verdict.description


@pytest.mark.fast
def test_evaluate_checks_answers_every_declared_check_in_one_line(registry):
    spec = registry.by_id("daily_aggregator")
    partitions_def = daily_partitions(date(2026, 11, 1), "UTC")
    specs = check_specs_for(spec, partitions_def=partitions_def)
    assert [(s.name, s.blocking, s.partitions_def) for s in specs] == [
        (CLEAN_CHECK, True, partitions_def),
        (SECTIONS_CHECK, True, partitions_def),
    ]
    bad = _report(REPORT_SECTIONS[1:], extra="\nAPI Error: quota\n")
    results = evaluate_checks(spec, bad, DAY)
    # A missing section is published with the gap noted: a warning, not a stop (issue #12).
    assert [(r.check_name, r.passed, r.severity) for r in results] == [
        (CLEAN_CHECK, False, dg.AssetCheckSeverity.ERROR),
        (SECTIONS_CHECK, False, dg.AssetCheckSeverity.WARN),
    ]
    for result in results:
        assert result.asset_key == dg.AssetKey("daily_aggregator")
        assert result.description.startswith(f"daily_aggregator {DAY}: ") and "\n" not in result.description
    assert results[1].description.endswith("missing required ## section(s): Executive Summary")


@pytest.mark.fast
@pytest.mark.parametrize(
    ("now_hour", "materialized_hour", "passed", "words"),
    [
        (8, None, True, "is not due until 09:00"),
        (9, None, False, "is late: not materialized by 09:00"),
        (11, 7, True, "arrived by 09:00"),
        (11, 10, True, "arrived 60 min after the 09:00 CET deadline"),
    ],
)
def test_report_lateness(now_hour, materialized_hour, passed, words):
    zone = ZoneInfo("Europe/Paris")
    at = lambda hour: datetime(2026, 11, 20, hour, tzinfo=zone)  # noqa: E731
    verdict = report_lateness(
        now=at(now_hour),
        deadline_hour=9,
        first_day=date(2026, 11, 1),
        materialized_at=at(materialized_hour) if materialized_hour is not None else None,
    )
    assert verdict.passed is passed
    assert words in verdict.description and "2026-11-20" in verdict.description


# -- through Dagster ----------------------------------------------------------------------------


@pytest.mark.dagster
def test_a_good_day_records_every_check_for_its_partition(day):
    keys = _artifact_check_keys(day.defs)
    expected = {_key(spec.prompt_id, CLEAN_CHECK) for spec in day.registry.prompts if spec.output_format in ("markdown", "html")}
    expected |= {_key(spec.prompt_id, GROUNDED_CHECK) for spec in day.registry.prompts if "google_web_search" in spec.tools}
    expected |= {
        _key("daily_aggregator", SECTIONS_CHECK),
        _key("tag_extractor", TAGS_CHECK),
        _key("site_payload_exporter", PAYLOAD_CHECK),
        _key("morning_brief", BRIEF_CHECK),
    }
    # Every model row also says which model wrote its answer (a WARN check).
    expected |= {_key(spec.prompt_id, MODEL_CHECK) for spec in day.registry.prompts if spec.uses_llm}
    assert keys == expected
    evaluations = {e.asset_check_key: e for e in day.result.get_asset_check_evaluations() if e.asset_check_key in keys}
    assert set(evaluations) == keys
    assert {key: e.description for key, e in evaluations.items() if not e.passed} == {}
    # Each check judged the materialization its own step had just recorded, for DAY.
    for key, evaluation in evaluations.items():
        assert evaluation.partition == DAY
        assert evaluation.target_materialization_data.run_id == day.result.run_id

    stored = _latest_for(day.instance, keys, DAY)
    assert set(stored) == keys
    assert {(r.status, r.partition, r.run_id) for r in stored.values()} == {
        (AssetCheckExecutionRecordStatus.SUCCEEDED, DAY, day.result.run_id)
    }
    assert _latest_for(day.instance, keys, "2026-11-19") == {}  # verdicts belong to their day


@pytest.mark.dagster
def test_checks_guarding_publishing_are_blocking(day):
    graph = day.defs.resolve_asset_graph()
    blocking = {
        (key.asset_key.to_user_string(), key.name)
        for key in _artifact_check_keys(day.defs)
        if graph.get_check_spec(key).blocking
    }
    assert blocking == {
        ("daily_aggregator", CLEAN_CHECK),
        ("daily_aggregator", SECTIONS_CHECK),
        ("tag_extractor", TAGS_CHECK),
        ("site_payload_exporter", PAYLOAD_CHECK),
    }


@pytest.mark.dagster
def test_the_daily_job_runs_one_step_per_prompt_and_not_the_deadline_check(day):
    steps = {event.step_key for event in day.result.get_step_success_events()}
    assert steps == {spec.prompt_id for spec in day.registry.prompts}
    assert ON_TIME_CHECK not in {e.check_name for e in day.result.get_asset_check_evaluations()}


def _publishing_tail_run(day, settings_env, instance, tmp_path, monkeypatch, scenario: str):
    """The report and its publishing tail for DAY, on a copy of the day's notes, with the fake CLI's ``scenario``."""
    settings = load_settings({**settings_env, "NH_DATA_ROOT": str(tmp_path / "data")})
    shutil.copytree(day.data / "outputs", settings.data_root / "outputs")
    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", scenario)
    monkeypatch.setenv("FAKE_GEMINI_ONLY_FOR", "daily_aggregator")
    selection = [dg.AssetKey(k) for k in ("daily_aggregator", *PUBLISHING_TAIL)]
    result = build_definitions(settings, day.registry).resolve_job_def(DAILY_JOB_NAME).execute_in_process(
        partition_key=DAY, instance=instance, asset_selection=selection, raise_on_error=False
    )
    return settings, result


@pytest.mark.dagster
def test_a_report_still_missing_sections_after_the_reasks_is_published_with_the_gap_noted(
    day, settings_env, instance, fake_cli_env, tmp_path, monkeypatch
):
    settings, result = _publishing_tail_run(day, settings_env, instance, tmp_path, monkeypatch, "drop_sections")
    assert result.success  # the day is published; the gap is a warning

    # The model was asked again twice with the complaints, then its last answer was kept.
    calls = [json.loads(line) for line in fake_cli_env["log"].read_text().splitlines()]
    report_calls = [c for c in calls if c["prompt_id"] == "daily_aggregator"]
    assert len(report_calls) == 3
    assert "YOUR PREVIOUS ANSWER WAS REJECTED" in report_calls[1]["prompt"]
    assert "the required section 'Market Dynamics' is missing" in report_calls[1]["prompt"]

    report = (settings.data_root / f"reports/daily_report_{DAY}.md").read_text()
    assert "> **Missing section:** Market Dynamics — the model did not write this section" in report
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"daily_aggregator", *PUBLISHING_TAIL}
    (meta,) = [e.materialization.metadata for e in result.get_asset_materialization_events() if e.asset_key.path == ["daily_aggregator"]]
    assert meta["nh.answers"].value == 3 and meta["nh.reasks"].value == 2
    assert [a["outcome"] for a in meta["nh.answer_log"].value] == ["incomplete"] * 3

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path == ["daily_aggregator"]}
    assert evaluations[CLEAN_CHECK].passed
    sections = evaluations[SECTIONS_CHECK]
    assert not sections.passed and sections.partition == DAY and sections.severity == dg.AssetCheckSeverity.WARN
    assert sections.description == f"daily_aggregator {DAY}: missing required ## section(s): {', '.join(REPORT_SECTIONS)}"
    stored = _latest_for(instance, [_key("daily_aggregator", SECTIONS_CHECK)], DAY)
    assert stored[_key("daily_aggregator", SECTIONS_CHECK)].status == AssetCheckExecutionRecordStatus.FAILED

    payload = json.loads((settings.data_root / f"publishing/{DAY}.json").read_text())
    assert payload["missing_sections"] == list(REPORT_SECTIONS)
    assert (settings.data_root / f"publishing/tags_{DAY}.json").is_file()


@pytest.mark.dagster
def test_cli_error_text_in_an_answer_is_never_written(day, settings_env, instance, fake_cli_env, tmp_path, monkeypatch):
    settings, result = _publishing_tail_run(day, settings_env, instance, tmp_path, monkeypatch, "cli_error_text")
    assert not result.success
    assert not (settings.data_root / f"reports/daily_report_{DAY}.md").exists()
    assert result.get_asset_materialization_events() == []
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    user = failure.step_failure_data.user_failure_data
    assert user.description.startswith("daily_aggregator: no usable answer in 3 answer(s) (re-asked 2 time(s)")
    assert "tool or API error text ('API Error', 'status: 429')" in user.description
    assert user.metadata["nh.failure_kind"].value == "bad_output"
    log = user.metadata["nh.answer_log"].value
    assert [a["outcome"] for a in log] == ["rejected"] * 3
    # The alert names the cause, as it did for a failed check.
    summary = summarize_failure(
        instance, result.dagster_run, result.get_run_failure_event(), [failure], "http://127.0.0.1:3000"
    )
    assert summary.kind == "bad_output" and "no usable answer" in summary.cause


@pytest.mark.dagster
def test_a_rejected_answer_keeps_the_previous_good_artifact(
    day, settings_env, instance, fake_cli_env, tmp_path, monkeypatch
):
    settings = load_settings({**settings_env, "NH_DATA_ROOT": str(tmp_path / "data")})
    selection = [dg.AssetKey("ai_ecosystem_watch")]
    job = build_definitions(settings, day.registry).resolve_job_def(DAILY_JOB_NAME)
    assert job.execute_in_process(partition_key=DAY, instance=instance, asset_selection=selection).success
    note = settings.data_root / f"outputs/daily/{DAY}/ai_ecosystem_watch.md"
    good = note.read_bytes()
    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", "cli_error_text")
    monkeypatch.setenv("FAKE_GEMINI_ONLY_FOR", "ai_ecosystem_watch")
    result = job.execute_in_process(partition_key=DAY, instance=instance, asset_selection=selection, raise_on_error=False)
    assert not result.success  # a note with error text is refused, not flagged after the fact
    assert note.read_bytes() == good
    assert result.get_asset_materialization_events() == []
    assert [p.name for p in note.parent.iterdir()] == ["ai_ecosystem_watch.md"]


@pytest.mark.dagster
@pytest.mark.parametrize(
    ("now", "passed", "words"),
    [
        (datetime(2026, 11, 20, 10, tzinfo=UTC), True, "today's report (2026-11-20) arrived"),
        (datetime(2026, 11, 21, 8, 59, tzinfo=UTC), True, "today's report (2026-11-21) is not due until 09:00"),
        (
            datetime(2026, 11, 21, 9, 30, tzinfo=UTC), False,
            "today's report (2026-11-21) is late: not materialized by 09:00 UTC (30 min overdue)",
        ),
    ],
)
def test_the_deadline_job_says_when_todays_report_is_late(day, monkeypatch, now, passed, words):
    monkeypatch.setattr(deadline_module, "_now", _clock(now))
    result = day.defs.resolve_job_def(DEADLINE_JOB_NAME).execute_in_process(instance=day.instance)
    assert result.success  # lateness is a failed check, never a failed run
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed) == (ON_TIME_CHECK, passed)
    assert words in evaluation.description


# Dagster's own condition tester passes a beta parameter; not something this project calls.
@pytest.mark.dagster
@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
def test_the_recommended_deploy_condition_waits_for_blocking_checks(day, monkeypatch):
    # A stand-in downstream of the report: the report is the asset a fake-CLI scenario can spoil.
    @dg.asset(
        key="deploy_probe",
        partitions_def=daily_partitions(day.settings.partition_start, day.settings.timezone),
        deps=["daily_aggregator"],
        automation_condition=RECOMMENDED_DEPLOY_CONDITION,
    )
    def deploy_probe() -> None: ...

    defs = dg.Definitions.merge(day.defs, dg.Definitions(assets=[deploy_probe]))
    key = dg.AssetKey("deploy_probe")
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)  # DAY is the latest partition then

    def tick(minutes: int, previous=None):
        return dg.evaluate_automation_conditions(
            defs=defs, instance=day.instance, evaluation_time=at + timedelta(minutes=minutes),
            cursor=previous.cursor if previous else None,
        )

    def report():
        return day.defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(
            partition_key=DAY, instance=day.instance, asset_selection=[dg.AssetKey("daily_aggregator")],
        )

    def spoiled_report():
        """A new report whose blocking check failed. The output contract refuses such answers before
        they are written, so the failed verdict is recorded directly, as an external check would."""
        report_key = dg.AssetKey("daily_aggregator")
        day.instance.report_runless_asset_event(dg.AssetMaterialization(report_key, partition=DAY))
        record = day.instance.fetch_materializations(report_key, limit=1).records[0]
        day.instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=report_key, check_name=CLEAN_CHECK, passed=False, partition=DAY,
                target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                    storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
                ),
            )
        )

    first = tick(0)  # what was there before the condition was applied is not a reason to deploy
    assert first.get_requested_partitions(key) == set()
    spoiled_report()
    held = tick(1, first)
    assert held.get_requested_partitions(key) == set()  # a new report, but its blocking check failed
    assert report().success
    released = tick(2, held)
    assert released.get_requested_partitions(key) == {DAY}
