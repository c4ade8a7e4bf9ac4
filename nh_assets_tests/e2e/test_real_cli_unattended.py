"""An unattended day through the REAL @google/gemini-cli against a fake API that answers as Google does.

- gemini-2.5-flash's daily quota is 12 (Google's 429 body, per model, other models free): the
  first per-day 429 marks the model spent for every step, later calls fail at once as
  ``quota_spent`` naming the model, the limit and the reset, rows with a ``fallback_model``
  publish through it, and the day's report exists;
- an expired login (401 to every request): the first Gemini step fails as ``auth``, every
  other fails at once without reaching the API, one failed run;
- an expired Google login the CLI cannot refresh, on both transports: the same, within seconds,
  with the login named, nothing sent to the API and no person waited for;
- a SAFETY finish is classified ``blocked``;
- an answer whose ``modelVersion`` names another model shows in the metadata and fails a WARN check.
"""

from __future__ import annotations

import contextlib
import json
import socketserver
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from dagster._core.event_api import PartitionKeyFilter  # the 1.13 storage API takes it; not re-exported

from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.prompts.checks import MODEL_CHECK
from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.demo.quota import QuotaCounter
from nh_assets.data_layout import DataLayoutResource
from nh_assets.operations.alerts import FailureAlertResource, summarize_failure
from nh_assets.operations.sensors import FAILURE_SENSOR_NAME, FAILURES_DIR
from nh_assets.operations.service_alerts import SERVICE_SENSOR_NAME
from nh_assets.registry import load_registry
from nh_assets.settings import load_settings
from nh_assets_tests.support.registry_edit import (
    FALLBACK_MODEL, NO_FALLBACK, SPENT_MODEL, latest_metadata, registry_with_fallbacks,
)
from nh_assets_tests.support.fakes import shared_fake_api
from nh_assets_tests.support.sloppy_model import prompt_id_of
from nh_assets_tests.support.loopback import serving
from nh_assets_tests.support.webhook import webhook_receiver

pytestmark = pytest.mark.real_cli

DAGSTER = str(Path(sys.executable).parent / "dagster")
DAY1, DAY2 = "2026-11-21", "2026-11-22"
SPENT, FALLBACK = SPENT_MODEL, FALLBACK_MODEL
NOON = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)


def _day_one(tmp_path: Path, dagster_home: Path, fake_cli: Path, registry_path: Path) -> dict[str, str]:
    """Yesterday, with the fast fake CLI, so that the day's windows have something to carry."""
    base = {
        "DAGSTER_HOME": str(dagster_home), "NH_DATA_ROOT": str(tmp_path / "data"), "NH_GEMINI_CLI": str(fake_cli),
        "NH_PARTITION_START": "2026-11-01", "NH_TIMEZONE": "UTC", "NH_REGISTRY": str(registry_path),
        "NH_GEMINI_API_URL": shared_fake_api().base_url, "NH_GEMINI_TRANSPORT": "oneshot",
    }
    defs = build_definitions(load_settings(base), load_registry(registry_path))
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        assert defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(partition_key=DAY1, instance=instance).success
    return base


def _materialize(env: dict[str, str], selection: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", selection, "--partition", DAY2],
        env=env, capture_output=True, text=True, timeout=900, cwd=cwd,
    )


def _real_cli_env(base: dict[str, str], api: FakeGeminiAPI, gemini_env_factory, gemini_cli_path: str) -> dict[str, str]:
    env = gemini_env_factory(api.base_url)
    env.update(base, NH_GEMINI_CLI=gemini_cli_path, TMPDIR=tempfile.mkdtemp(prefix="nh-"))
    del env["NH_GEMINI_API_URL"]  # the CLI's own GOOGLE_GEMINI_BASE_URL names the endpoint; the gate keeps it
    del env["NH_GEMINI_TRANSPORT"]  # the default transport, as an operator runs it
    return env


def _failed_runs(instance) -> list[dg.DagsterRun]:
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    return [r for r in runs if r.tags.get("dagster/partition") == DAY2]


def _summary(instance, run):
    steps = [e.dagster_event for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)]
    failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
    return summarize_failure(instance, run, failure, steps, "http://127.0.0.1:3000")


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
def test_a_spent_daily_quota_stops_the_asking_and_the_day_publishes_through_fallbacks(
    tmp_path, dagster_home, fake_cli, gemini_cli_path, gemini_env_factory
):
    registry_path = registry_with_fallbacks(tmp_path / "prompts.tsv")
    registry = load_registry(registry_path)
    base = _day_one(tmp_path, dagster_home, fake_cli, registry_path)
    data = Path(base["NH_DATA_ROOT"])
    api = FakeGeminiAPI(quotas=QuotaCounter(per_day={SPENT: 12}), log_path=tmp_path / "api.jsonl").start()
    try:
        env = _real_cli_env(base, api, gemini_env_factory, gemini_cli_path)
        defs = build_definitions(load_settings(env), registry)
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            daily = _materialize(env, "*", tmp_path)
            output = daily.stdout + daily.stderr
            assert daily.returncode != 0  # the rows without a fallback failed: the run says so
            # The spent model's failures are final: no step retry for them.
            assert "quota_spent" in output and "STEP_UP_FOR_RETRY" not in output
            tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=NOON)
            held_back = sorted(r.key.to_user_string() for r in tick.results if r.true_subset.size)
            held_back = [key for key in held_back if key not in ("site", "site_deployment")]
            if held_back:  # what the failed rows held back is built from what exists (the catch-up)
                catch_up = _materialize(env, ",".join(held_back), tmp_path)
                assert catch_up.returncode == 0, catch_up.stdout[-3000:] + catch_up.stderr[-3000:]
            requests = api.requests

            # At the API: after the first per-day 429, at most a few requests reached the spent model.
            on_spent = [r for r in requests if r["model"] == SPENT and r["kind"] != "countTokens"]
            first_429 = next(i for i, r in enumerate(on_spent) if r["status"] == 429)
            assert sum(r["status"] == 200 for r in on_spent) == 12
            assert len(on_spent) - first_429 <= 4, [(prompt_id_of(r["prompt"]), r["status"]) for r in on_spent]

            # The rows without a fallback failed, naming the model, the quota and the reset.
            (failed,) = _failed_runs(instance)  # one failed run: one alert for the day
            summary = _summary(instance, failed)
            quota_failures = [f for f in summary.failures if f.kind == "quota_spent"]
            assert {f.step_key for f in quota_failures} <= NO_FALLBACK
            assert quota_failures, summary.markdown()
            cause = quota_failures[0].cause
            assert SPENT in cause and "GenerateRequestsPerDayPerProjectPerModel-FreeTier" in cause
            assert "limit 12" in cause and "America/Los_Angeles" in cause
            assert {f.kind for f in summary.failures} == {"quota_spent"}, summary.markdown()

            # The rows with a fallback published through it, and say so.
            fell_back = [
                s.prompt_id for s in registry.prompts
                if s.fallback_model and (data / s.output_path(DAY2)).is_file()
                and latest_metadata(instance, s.prompt_id, DAY2).get("gemini.fallback_from") is not None
            ]
            assert fell_back, "no row published through its fallback"
            for prompt_id in fell_back:
                meta = latest_metadata(instance, prompt_id, DAY2)
                assert meta["gemini.fallback_from"].value == SPENT
                assert meta["gemini.model"].value == FALLBACK
                assert SPENT in meta["gemini.fallback_reason"].value
            research_fell_back = [p for p in fell_back if registry.by_id(p).output_format == "markdown"]
            note = (data / registry.by_id(research_fell_back[0]).output_path(DAY2)).read_text()
            assert f"Written by {FALLBACK} because {SPENT}'s daily quota was spent." in note
            assert f"fallback_from: {SPENT}" in note.split("---\n", 2)[1]
            # The day's report exists.
            assert (data / f"reports/daily_report_{DAY2}.md").is_file()

            # The operator hears of it once: the spent quota, not each prompt or run that met it.
            with webhook_receiver() as (url, posts):
                alerts = FailureAlertResource(webhook_url=url)
                resources = {"alerts": alerts, "layout": DataLayoutResource(root=str(data))}
                service = defs.resolve_sensor_def(SERVICE_SENSOR_NAME)
                context = dg.build_sensor_context(instance=instance, resources=resources)
                service(context)
                service(dg.build_sensor_context(instance=instance, resources=resources, cursor=context.cursor))
                failure = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
                defs.resolve_sensor_def(FAILURE_SENSOR_NAME)(dg.build_run_status_sensor_context(
                    sensor_name=FAILURE_SENSOR_NAME, dagster_event=failure, dagster_instance=instance,
                    dagster_run=failed, resources=resources,
                ))
            (post,) = posts
            assert SPENT in post["text"] and "limit 12" in post["text"] and "fallback_model" in post["text"]
            assert list((data / FAILURES_DIR).glob(f"*_{failed.run_id}.md"))  # the run is still on file
    finally:
        api.stop()


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
def test_an_expired_login_fails_the_first_step_and_the_rest_at_once(
    tmp_path, dagster_home, fake_cli, gemini_cli_path, gemini_env_factory
):
    registry_path = registry_with_fallbacks(tmp_path / "prompts.tsv")
    base = _day_one(tmp_path, dagster_home, fake_cli, registry_path)
    api = FakeGeminiAPI(auth_status=401, log_path=tmp_path / "api.jsonl").start()
    try:
        env = _real_cli_env(base, api, gemini_env_factory, gemini_cli_path)
        research = [s.prompt_id for s in load_registry(registry_path).prompts if "google_web_search" in s.allowed_tools]
        result = _materialize(env, ",".join(research), tmp_path)
        assert result.returncode != 0
        generations = [r for r in api.requests if r["kind"] != "countTokens"]
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            (failed,) = _failed_runs(instance)  # one run, one alert
            summary = _summary(instance, failed)
    finally:
        api.stop()
    assert {f.kind for f in summary.failures} == {"auth"}, summary.markdown()
    assert {f.step_key for f in summary.failures} == set(research), [f.step_key for f in summary.failures]
    assert "STEP_UP_FOR_RETRY" not in result.stdout + result.stderr
    # Only the steps already in flight when the first 401 came reached the API; the others failed at once.
    asked = {prompt_id_of(r["prompt"]) for r in generations}
    assert len(asked) < len(research), asked
    remembered = [f.step_key for f in summary.failures if "remembered from an earlier step" in f.cause]
    assert len(remembered) >= len(research) - len(asked)
    # The first step reports what the service said, not a memory of itself.
    assert any("remembered" not in f.cause and "401" in f.cause for f in summary.failures), summary.markdown()


def _day_two_env(api, transport, tmp_path, dagster_home, gemini_cli_path, gemini_env_factory, **home) -> dict[str, str]:
    """A DAY2 run's environment through the real CLI against ``api``; ``home`` shapes the CLI home
    (``gemini_env_factory``'s keywords)."""
    env = gemini_env_factory(api.base_url, **home)
    env.update(
        DAGSTER_HOME=str(dagster_home), NH_DATA_ROOT=str(tmp_path / "data"), NH_GEMINI_CLI=gemini_cli_path,
        NH_PARTITION_START="2026-11-01", NH_TIMEZONE="UTC", NH_GEMINI_TRANSPORT=transport,
        TMPDIR=tempfile.mkdtemp(prefix="nh-"),
    )
    return env


def _one_asset(api, transport, tmp_path, dagster_home, gemini_cli_path, gemini_env_factory):
    """``hardware_compute`` for DAY2 through the real CLI against ``api``, started and stopped here."""
    api.start()
    try:
        env = _day_two_env(api, transport, tmp_path, dagster_home, gemini_cli_path, gemini_env_factory)
        return _materialize(env, "hardware_compute", tmp_path)
    finally:
        api.stop()


# An expired Google login as the CLI caches it: the access token's expiry is long past, so the CLI
# must refresh it. Obviously fake values: the refresh never reaches Google (see ``closed_proxy``).
FAKE_REFRESH_TOKEN = "1//nh-fake-refresh-token-not-a-secret"
EXPIRED_LOGIN = {
    "access_token": "ya29.nh-fake-expired-access-token", "refresh_token": FAKE_REFRESH_TOKEN,
    "scope": "https://www.googleapis.com/auth/cloud-platform", "token_type": "Bearer", "expiry_date": 1_000_000_000_000,
}
GOOGLE_LOGIN = {"security": {"auth": {"selectedType": "oauth-personal"}}}


@contextlib.contextmanager
def closed_proxy():
    """An HTTPS proxy on 127.0.0.1 that notes each request line and hangs up: the CLI's refresh at
    Google's token endpoint fails at once, and nothing leaves the machine whatever its DNS does."""
    seen: list[str] = []

    class Hangup(socketserver.StreamRequestHandler):
        def handle(self):
            seen.append(self.rfile.readline().decode("latin-1").strip())

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Hangup)
    server.daemon_threads = True
    with serving(server) as port:
        yield f"http://127.0.0.1:{port}", seen


@pytest.mark.parametrize("transport", ["acp", "oneshot"])
def test_an_expired_google_login_fails_the_first_step_and_the_rest_at_once(
    transport, tmp_path, dagster_home, gemini_cli_path, gemini_env_factory
):
    rows = ["hardware_compute", "ethics_alignment", "emergent_open_source"]
    api = FakeGeminiAPI(log_path=tmp_path / "api.jsonl").start()
    try:
        with closed_proxy() as (proxy, connects):
            # The operator's home after `gemini` was run once and logged in with Google: no key anywhere.
            env = _day_two_env(
                api, transport, tmp_path, dagster_home, gemini_cli_path, gemini_env_factory,
                api_key=None, settings=GOOGLE_LOGIN,
            )
            (Path(env["HOME"]) / ".gemini" / "oauth_creds.json").write_text(json.dumps(EXPIRED_LOGIN))
            # A Google login talks to Code Assist: the fake API stands there too, and logs whatever reaches it.
            env.update(CODE_ASSIST_ENDPOINT=api.base_url, HTTPS_PROXY=proxy, https_proxy=proxy)
            result = _materialize(env, ",".join(rows), tmp_path)
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            (failed,) = _failed_runs(instance)  # one run, one alert
            summary = _summary(instance, failed)
            events = [repr(e) for e in instance.all_logs(failed.run_id)]
            descriptions = [
                e.dagster_event.step_failure_data.user_failure_data.description
                for e in instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            ]
    finally:
        api.stop()
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert {f.kind for f in summary.failures} == {"auth"}, summary.markdown()
    assert {f.step_key for f in summary.failures} == set(rows), summary.markdown()
    assert "STEP_UP_FOR_RETRY" not in output
    # The CLI tried to refresh the login at Google's token endpoint, and never got past it.
    assert connects and all("oauth2.googleapis.com:443" in line for line in connects), connects
    assert api.requests == [], api.requests
    # The first failure names the login and what to do, in one line; the others are remembered.
    first = [f for f in summary.failures if "remembered" not in f.cause]
    assert first and len(first) < len(rows), summary.markdown()
    assert len(descriptions) == len(rows)
    for description in descriptions:  # a cause and a fix, not the CLI's stack trace
        assert "\n" not in description.strip() and "initOauthClient" not in description, description
        assert "Google login" in description and "— fix:" in description and "log in" in description, description
    if transport == "acp":  # the warm CLI itself answered, at once: no wait for its init timeout, no fallback
        assert any("the warm CLI asked for a new login" in f.cause for f in first), summary.markdown()
        assert "Gemini transport oneshot" not in output
    # The fake refresh token is nowhere: not in the run's events, its output, or the failure summary.
    warm_logs = "".join(p.read_text() for p in dagster_home.rglob("*.log"))
    for text in (output, summary.markdown(), "".join(events), warm_logs):
        assert FAKE_REFRESH_TOKEN not in text


class _SafetyModel(FakeGeminiAPI):
    def finish_reason(self, model: str, prompt: str) -> str:
        return "SAFETY"

    def answer(self, model: str, prompt: str) -> str:
        return ""


@pytest.mark.parametrize("transport", ["oneshot", "acp"])
def test_a_safety_finish_is_classified_blocked(transport, tmp_path, dagster_home, gemini_cli_path, gemini_env_factory):
    api = _SafetyModel(log_path=tmp_path / "api.jsonl")
    result = _one_asset(api, transport, tmp_path, dagster_home, gemini_cli_path, gemini_env_factory)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Gemini blocked: the API ended the answer with finishReason SAFETY" in output, output[-3000:]
    assert "STEP_UP_FOR_RETRY" not in output
    assert not (tmp_path / f"data/outputs/daily/{DAY2}/hardware_compute.md").exists()


class _RoutedModel(FakeGeminiAPI):
    """Answers every request on gemini-2.5-flash from gemini-2.5-flash-lite, as routing would."""

    def model_version(self, model: str) -> str:
        return FALLBACK if model == SPENT else model


@pytest.mark.parametrize("transport", ["oneshot", "acp"])
def test_an_answer_from_another_model_shows_and_fails_a_warn_check(
    transport, tmp_path, dagster_home, gemini_cli_path, gemini_env_factory
):
    api = _RoutedModel(log_path=tmp_path / "api.jsonl")
    result = _one_asset(api, transport, tmp_path, dagster_home, gemini_cli_path, gemini_env_factory)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert latest_metadata(instance, "hardware_compute", DAY2)["gemini.answered_by"].value == FALLBACK
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("hardware_compute"), MODEL_CHECK)], partition_filter=PartitionKeyFilter(key=DAY2)
        )
    (record,) = check.values()
    evaluation = record.event.dagster_event.asset_check_evaluation_data
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert f"answered by {FALLBACK}, not by {SPENT}" in evaluation.description


def test_a_per_minute_429_waits_as_its_retry_info_says_and_the_step_succeeds(
    tmp_path, dagster_home, gemini_cli_path, gemini_env_factory
):
    """One request a minute on the row's model at the API: the research call's second request on it
    is refused with Google's per-minute body, whose RetryInfo says when the window frees. The next
    request comes when it said (not at once, not after a blind backoff), and the step succeeds with
    no step retry and nothing marked spent."""
    api = FakeGeminiAPI(quotas=QuotaCounter(per_minute={SPENT: 1}), log_path=tmp_path / "api.jsonl")
    result = _one_asset(api, "acp", tmp_path, dagster_home, gemini_cli_path, gemini_env_factory)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "STEP_UP_FOR_RETRY" not in output and "quota_spent" not in output
    on_model = [r for r in api.requests if r["model"] == SPENT and r["kind"] != "countTokens"]
    refused = [i for i, r in enumerate(on_model) if r["status"] == 429]
    timeline = [(r["status"], round(r["time"] - on_model[0]["time"], 1)) for r in on_model]
    assert 1 <= len(refused) <= 2, timeline
    first, refusal, retried = on_model[0], on_model[refused[0]], on_model[refused[0] + 1]
    frees = 60 - (refusal["time"] - first["time"])  # until the minute's window frees
    # RetryInfo says whole seconds, as Google's does ("34s" beside the message's 34.7s); the CLI
    # waits that plus 0-20 % jitter. A retry inside the dropped fraction is refused once more.
    said = int(frees)
    waited = retried["time"] - refusal["time"]
    assert said - 1 <= waited <= said * 1.2 + 15, (said, waited, timeline)
    if len(refused) == 2:
        assert waited < frees and refused[1] == refused[0] + 1, timeline
    assert on_model[-1]["status"] == 200, timeline
    assert (tmp_path / f"data/outputs/daily/{DAY2}/hardware_compute.md").is_file()
