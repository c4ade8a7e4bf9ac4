"""One alert when the Gemini service says a model's day is spent, however many steps learn it.

The gate records a spent daily quota once, in the shared memory beside the rate-limit bucket
(``gemini.service_memory``); every later step of the day fails at once or asks its row's
fallback, and a day that fell back publishes without any failed run. So the run-failure sensor
cannot be the one to tell: ``neurohelix_service_alerts`` reads the memory's entries recorded
since its cursor and, for each, writes ``NH_DATA_ROOT/logs/failures/<DATE>_quota_<model>.md`` and
posts one line to ``NH_ALERT_WEBHOOK``. Runs that failed only for a quota it announced (or a
refused login an earlier run announced) are then written to their file without a second post
(``sensors``). It only reads the store, and never creates it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from nh_assets.artifacts import write_atomic
from nh_assets.data_layout import DataLayoutResource
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.gemini.service_memory import SPENT, memory_for, memory_path
from nh_assets.operations.alerts import FailureAlertResource
from nh_assets.operations.sensors import FAILURES_DIR
from nh_assets.redaction import redact
from nh_assets.settings import Settings

SERVICE_SENSOR_NAME = "neurohelix_service_alerts"


def spent_alert(model: str, cause: str) -> str:
    fix = GeminiFailure(FailureKind.QUOTA_SPENT, cause).fix
    return f"NeuroHelix: Gemini quota_spent — {cause}. Rows with a fallback_model use it; the others fail at once. Fix: {fix}"


def build_service_alert_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name=SERVICE_SENSOR_NAME,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Posts one alert per model whose daily Gemini quota the service said is spent.",
    )
    def _service_alerts(
        context: dg.SensorEvaluationContext, alerts: FailureAlertResource, layout: DataLayoutResource
    ) -> dg.SkipReason:
        if settings.rate_limit_backend == "sqlite" and not memory_path(settings.rate_limit_db).exists():
            return dg.SkipReason("the service memory does not exist yet: no spent quota recorded")
        url = dg.EnvVar(settings.rate_limit_url_env).get_value() or "" if settings.rate_limit_url_env else ""
        memory = memory_for(settings.rate_limit_backend, sqlite_path=memory_path(settings.rate_limit_db), postgres_url=url)
        after = float(context.cursor or 0)
        entries = memory.recorded_since(SPENT, after)
        for model, cause, _until, since in entries:
            day = datetime.fromtimestamp(since, timezone.utc).date().isoformat()
            text = redact(spent_alert(model, cause))
            path = Path(layout.root_path) / FAILURES_DIR / f"{day}_quota_{model}.md"
            write_atomic(path, f"# NeuroHelix: {model}'s daily quota is spent\n\n{text}\n".encode())
            problem = alerts.post(text)
            if problem:
                context.log.warning(f"quota alert not delivered to the webhook: {problem}")
            context.update_cursor(str(since))
        return dg.SkipReason(f"{len(entries)} spent quota(s) announced" if entries else "no new spent quota")

    return _service_alerts
