"""The operational layer of the code location: the deadline check, schedules, sensors, resources.

``build_automation_definitions`` is an ``Extension`` (see ``definitions``): it derives every
part from the core graph and the operator's settings, and adds only the resource it owns
(``alerts``); the failure sensor uses the core's ``layout`` resource. The artifact checks are
not here: the prompt assets declare and evaluate them (see ``checks`` and ``factory``). The
webhook URL and the UI link are read from the environment once, at load, like the rest of the
settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from nh_assets.alerts import alert_resource_from_env
from nh_assets.checks import build_report_deadline_checks
from nh_assets.schedules import build_daily_schedule, build_report_deadline_job, build_report_deadline_schedule
from nh_assets.sensors import build_automation_sensor, build_failure_alert_sensor

if TYPE_CHECKING:  # definitions imports this module to list it in EXTENSIONS
    from nh_assets.definitions import Core


def build_automation_definitions(core: Core) -> dg.Definitions:
    settings = core.settings
    on_time = build_report_deadline_checks(
        core.registry,
        timezone=settings.timezone,
        deadline_hour=settings.report_deadline_hour,
        first_day=settings.partition_start,
    )
    deadline_job = build_report_deadline_job(on_time)
    return dg.Definitions(
        asset_checks=on_time,
        jobs=[deadline_job],
        schedules=[
            build_daily_schedule(settings, core.daily_job),
            build_report_deadline_schedule(settings, deadline_job),
        ],
        sensors=[build_failure_alert_sensor(settings), build_automation_sensor()],
        resources={"alerts": alert_resource_from_env()},
    )
