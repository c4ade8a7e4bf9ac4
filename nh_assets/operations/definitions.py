"""The operational parts of the code location, built from the prompt graph.

Schedules (the daily run, the report deadline), sensors (failure alerts, declarative
automation), retention, history import and preflight. Each lives in its own module; this one
only wires them to the prompt graph and the operator's settings. Its jobs use the prompt graph's
``layout`` resource, so their data root is the one the prompt assets write to.
"""

from __future__ import annotations

import dagster as dg

from nh_assets.operations.alerts import alert_resource
from nh_assets.operations.history_import import build_import_history_job
from nh_assets.operations.preflight import build_preflight_job
from nh_assets.operations.report_deadline import (
    build_report_deadline_checks,
    build_report_deadline_job,
    build_report_deadline_schedule,
)
from nh_assets.operations.retention import build_retention_job, build_retention_schedule
from nh_assets.operations.schedules import build_daily_schedule
from nh_assets.operations.service_alerts import build_service_alert_sensor
from nh_assets.operations.sensors import build_automation_sensor, build_failure_alert_sensor
from nh_assets.prompts.definitions import PromptGraph


def build_operations_definitions(graph: PromptGraph) -> dg.Definitions:
    settings = graph.settings
    on_time = build_report_deadline_checks(
        graph.registry,
        timezone=settings.timezone,
        deadline_hour=settings.report_deadline_hour,
        first_day=settings.partition_start,
    )
    deadline_job = build_report_deadline_job(on_time)
    retention = build_retention_job(
        registry=graph.registry, timezone=settings.timezone, default_keep_days=settings.retention_days
    )
    return dg.Definitions(
        asset_checks=on_time,
        jobs=[
            deadline_job,
            retention,
            build_import_history_job(registry=graph.registry, partitions_def=graph.partitions_def),
            build_preflight_job(settings),
        ],
        schedules=[
            build_daily_schedule(settings, graph.daily_job),
            build_report_deadline_schedule(settings, deadline_job),
            build_retention_schedule(retention, timezone=settings.timezone, keep_days=settings.retention_days),
        ],
        sensors=[build_failure_alert_sensor(settings), build_service_alert_sensor(settings), build_automation_sensor()],
        resources={"alerts": alert_resource(settings)},
    )
