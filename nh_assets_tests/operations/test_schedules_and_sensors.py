"""The daily and deadline schedules, the run-failure alert sensor and the automation sensor.

Schedules are evaluated for a given tick time; the failure sensor is driven by a real failed run
(the fake CLI refuses to authenticate) and posts to a real HTTP server on 127.0.0.1.
"""

import http.server
import json
import socket
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from nh_assets.operations.alerts import WEBHOOK_ENV_VAR, FailureAlertResource, alert_resource
from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.registry import load_registry
from nh_assets.data_layout import DataLayoutResource
from nh_assets.operations.report_deadline import DEADLINE_JOB_NAME, DEADLINE_SCHEDULE_NAME
from nh_assets.operations.schedules import DAILY_SCHEDULE_NAME
from nh_assets.operations.sensors import AUTOMATION_SENSOR_NAME, FAILURE_SENSOR_NAME
from nh_assets.settings import REPO_ROOT, load_settings
from nh_assets_tests.support.fakes import pipeline_env

pytestmark = pytest.mark.dagster

DAY = "2026-11-20"
SECRET_PATH = "/hooks/T000-secret-token"


def _defs(env: dict[str, str], **overrides: str) -> dg.Definitions:
    settings = load_settings({**env, **overrides})
    registry = load_registry(REPO_ROOT / "registry" / "prompts.tsv")
    return build_definitions(settings, registry)


# -- schedules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "hour", "minute", "tick", "partition"),
    [
        ("UTC", "6", "0", "2026-11-20T06:00", DAY),
        # 06:00 in Auckland is still the 19th in UTC: the day is the operator's, not UTC's.
        ("Pacific/Auckland", "6", "0", "2026-11-20T06:00", DAY),
        # 23:30 in Los Angeles is already the 21st in UTC.
        ("America/Los_Angeles", "23", "30", "2026-11-20T23:30", DAY),
    ],
)
def test_daily_schedule_runs_todays_partition_in_the_operators_zone(settings_env, zone, hour, minute, tick, partition):
    defs = _defs(settings_env, NH_TIMEZONE=zone, NH_SCHEDULE_HOUR=hour, NH_SCHEDULE_MINUTE=minute)
    schedule = defs.resolve_schedule_def(DAILY_SCHEDULE_NAME)
    assert schedule.cron_schedule == f"{minute} {hour} * * *"
    assert schedule.execution_timezone == zone
    assert schedule.job_name == DAILY_JOB_NAME
    at = datetime.fromisoformat(tick).replace(tzinfo=ZoneInfo(zone))
    if zone != "UTC":  # the case only proves something if UTC would name another day
        assert at.astimezone(ZoneInfo("UTC")).date().isoformat() != partition
    with dg.build_schedule_context(scheduled_execution_time=at, repository_def=defs.get_repository_def()) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == partition
    assert request.run_key == partition  # a day is launched once by the schedule


def test_daily_schedule_skips_days_before_the_first_partition(settings_env):
    defs = _defs(settings_env)
    schedule = defs.resolve_schedule_def(DAILY_SCHEDULE_NAME)
    at = datetime(2026, 10, 31, 6, tzinfo=ZoneInfo("UTC"))
    with dg.build_schedule_context(scheduled_execution_time=at, repository_def=defs.get_repository_def()) as context:
        data = schedule.evaluate_tick(context)
    assert data.run_requests == [] and "before the first partition 2026-11-01" in data.skip_message


@pytest.mark.parametrize(
    ("enabled", "status"), [("0", dg.DefaultScheduleStatus.STOPPED), ("1", dg.DefaultScheduleStatus.RUNNING)]
)
def test_schedules_start_only_when_enabled(settings_env, enabled, status):
    defs = _defs(settings_env, NH_SCHEDULE_ENABLED=enabled)
    assert defs.resolve_schedule_def(DAILY_SCHEDULE_NAME).default_status == status
    assert defs.resolve_schedule_def(DEADLINE_SCHEDULE_NAME).default_status == status


def test_deadline_schedule_checks_the_report_at_the_deadline(settings_env):
    defs = _defs(settings_env, NH_TIMEZONE="Europe/Paris", NH_REPORT_DEADLINE_HOUR="10")
    schedule = defs.resolve_schedule_def(DEADLINE_SCHEDULE_NAME)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 10 * * *", "Europe/Paris")
    at = datetime(2026, 11, 20, 10, tzinfo=ZoneInfo("Europe/Paris"))
    with dg.build_schedule_context(scheduled_execution_time=at) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert schedule.job_name == DEADLINE_JOB_NAME and request.partition_key is None


# -- automation ---------------------------------------------------------------------------------


def test_automation_conditions_are_evaluated_by_a_running_sensor(settings_env):
    defs = _defs(settings_env)
    sensor = defs.resolve_sensor_def(AUTOMATION_SENSOR_NAME)
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    names = {s.name for s in defs.get_repository_def().sensor_defs}
    assert "default_automation_condition_sensor" not in names  # ours covers every asset


# -- the failure sensor -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """A real neurohelix_daily run for DAY that fails: the fake CLI refuses to authenticate."""
    base = tmp_path_factory.mktemp("failed_run")
    env = pipeline_env(base)
    home = Path(env["DAGSTER_HOME"])
    settings = load_settings(env)
    registry = load_registry(REPO_ROOT / "registry" / "prompts.tsv")
    defs = build_definitions(settings, registry)
    mp = pytest.MonkeyPatch()
    mp.setenv("FAKE_GEMINI_SCENARIO", "auth")
    mp.setenv("FAKE_GEMINI_STATE", str(base / "fake_state"))
    try:
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            result = defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(
                partition_key=DAY, instance=instance, raise_on_error=False
            )
            assert not result.success
            yield {"defs": defs, "instance": instance, "result": result, "data": settings.data_root}
    finally:
        mp.undo()


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}", _Hook.received
    finally:
        server.shutdown()
        server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}"


def _evaluate_failure_sensor(failed_run, alerts: FailureAlertResource) -> None:
    result = failed_run["result"]
    sensor = failed_run["defs"].resolve_sensor_def(FAILURE_SENSOR_NAME)
    context = dg.build_run_status_sensor_context(
        sensor_name=FAILURE_SENSOR_NAME,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=failed_run["instance"],
        dagster_run=result.dagster_run,
        resources={"alerts": alerts, "layout": DataLayoutResource(root=str(failed_run["data"]))},
    )
    sensor(context)


def _summary_file(failed_run):
    return failed_run["data"] / "logs" / "failures" / f"{DAY}_{failed_run['result'].run_id}.md"


def test_failure_is_summarised_and_posted_to_the_webhook(failed_run, webhook, capfd):
    url, received = webhook
    run_id = failed_run["result"].run_id
    _evaluate_failure_sensor(failed_run, FailureAlertResource(webhook_url=url, ui_url="http://127.0.0.1:3999/"))

    ((path, body),) = received
    assert path == SECRET_PATH
    assert body["text"] == body["content"]
    text = body["text"]
    assert text.startswith(f"NeuroHelix run failed: {DAILY_JOB_NAME} for {DAY} — auth: ")
    assert "Please set an Auth method" in text and "export GEMINI_API_KEY" in text
    assert f"http://127.0.0.1:3999/runs/{run_id}" in text
    assert "ai_ecosystem_watch" in text and len(text) <= 2000

    summary = _summary_file(failed_run).read_text()
    assert f"- run: [{run_id}](http://127.0.0.1:3999/runs/{run_id})" in summary
    assert f"- job: `{DAILY_JOB_NAME}`" in summary and f"- partition: `{DAY}`" in summary
    # Every prompt without upstream failed on auth; everything downstream never ran.
    # The step also planned the checks the asset declares; the line names the asset first.
    (line,) = [l for l in summary.splitlines() if l.startswith("- `ai_ecosystem_watch`")]
    assert "(auth): ai_ecosystem_watch: Gemini auth: exit 41" in line
    assert "- `daily_aggregator`" in summary.split("## Planned but not materialized", 1)[1]
    logged = capfd.readouterr()
    assert "NeuroHelix run failed" in logged.err + logged.out
    assert SECRET_PATH not in logged.err + logged.out


def test_a_webhook_that_is_down_costs_one_warning_not_the_summary(failed_run, capfd):
    _summary_file(failed_run).unlink(missing_ok=True)
    _evaluate_failure_sensor(failed_run, FailureAlertResource(webhook_url=_closed_port_url(), timeout_s=2))
    assert "(auth)" in _summary_file(failed_run).read_text()
    logged = capfd.readouterr()
    output = logged.err + logged.out
    warnings = [line for line in output.splitlines() if "failure alert not delivered to the webhook" in line]
    assert len(warnings) == 1 and "refused" in warnings[0].lower()
    assert SECRET_PATH not in output


def test_without_a_webhook_only_the_summary_is_written(failed_run):
    _summary_file(failed_run).unlink(missing_ok=True)
    _evaluate_failure_sensor(failed_run, FailureAlertResource())
    assert _summary_file(failed_run).is_file()


def test_the_webhook_url_is_wired_as_a_secret(tmp_path):
    env = pipeline_env(tmp_path)
    env.pop(WEBHOOK_ENV_VAR, None)
    assert alert_resource(load_settings(env)).webhook_url == ""
    env[WEBHOOK_ENV_VAR] = "http://127.0.0.1:9" + SECRET_PATH
    settings = load_settings(env)
    resource = alert_resource(settings)
    assert isinstance(resource.webhook_url, dg.EnvVar) and resource.webhook_url.env_var_name == WEBHOOK_ENV_VAR
    assert SECRET_PATH not in repr(resource) and SECRET_PATH not in repr(settings)
    env["NH_DAGSTER_UI_URL"] = "http://127.0.0.1:3001"
    assert alert_resource(load_settings(env)).ui_url == "http://127.0.0.1:3001"
