"""What reacts to events: failed runs and declarative automation.

``neurohelix_failure_alerts`` watches every job of the code location. For each failed run it
logs a one-line headline, writes the full summary to
``NH_DATA_ROOT/logs/failures/<DATE>_<run_id>.md`` and, when ``NH_ALERT_WEBHOOK`` is set, posts it
to the chat webhook (see ``alerts``); both, and the log line, are redacted (``nh_assets.redaction``). It starts RUNNING: alerting spends nothing, and a failure
nobody hears about is the costliest kind.

``neurohelix_automation`` evaluates the assets' ``AutomationCondition``s (publishing reacts to
new payloads through them, never by polling files). It is declared here, RUNNING, because the
sensor Dagster would add by default starts stopped.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from nh_assets.operations.alerts import FailureAlertResource, already_announced, summarize_failure
from nh_assets.artifacts import ArtifactWriteError, write_atomic
from nh_assets.data_layout import DataLayoutResource
from nh_assets.redaction import redact
from nh_assets.settings import Settings

FAILURE_SENSOR_NAME = "neurohelix_failure_alerts"
AUTOMATION_SENSOR_NAME = "neurohelix_automation"
FAILURES_DIR = "logs/failures"


def _run_day(instance: dg.DagsterInstance, run: dg.DagsterRun, zone: ZoneInfo) -> str:
    record = instance.get_run_record_by_id(run.run_id)
    created = datetime.fromtimestamp(record.create_timestamp.timestamp(), zone) if record else datetime.now(zone)
    return created.date().isoformat()


def build_failure_alert_sensor(settings: Settings) -> dg.SensorDefinition:
    zone = ZoneInfo(settings.timezone)

    @dg.run_failure_sensor(
        name=FAILURE_SENSOR_NAME,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Summarises each failed run into NH_DATA_ROOT/logs/failures and posts it to "
        "NH_ALERT_WEBHOOK when set.",
    )
    def _failure_alerts(
        context: dg.RunFailureSensorContext, alerts: FailureAlertResource, layout: DataLayoutResource
    ) -> None:
        run = context.dagster_run
        summary = summarize_failure(
            context.instance, run, context.failure_event, context.get_step_failure_events(), alerts.ui_url
        )
        # Step failures quote whatever the code raised; everything that leaves here is redacted.
        context.log.info(redact(summary.headline()))
        day = summary.partition or _run_day(context.instance, run, zone)
        path = layout.root_path / FAILURES_DIR / f"{day}_{run.run_id}.md"
        write_error: Exception | None = None
        try:
            write_atomic(path, redact(summary.markdown()).encode())
            context.log.info(f"failure summary written to {path}")
        except (OSError, ArtifactWriteError) as exc:
            # Still try the webhook: a full disk is exactly when the operator must hear of it.
            write_error = exc
        if already_announced(summary):
            context.log.info("not posted: every failure repeats a spent quota or a refused login already announced")
        elif problem := alerts.post(redact(summary.chat_text())):
            context.log.warning(f"failure alert not delivered to the webhook: {problem}")
        if write_error is not None:
            raise write_error

    return _failure_alerts


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR_NAME,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Evaluates every AutomationCondition of the code location (e.g. publishing a new payload).",
    )
