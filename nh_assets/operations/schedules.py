"""When the pipeline runs by itself: the daily run (the deadline check has its own, ``report_deadline``).

The daily schedule asks for *today's* partition — the day that started at midnight in
``NH_TIMEZONE``, which exists from midnight on because the partitions use ``end_offset=1`` — and
uses the day as run key, so the schedule never launches a day twice. It is a plain schedule
rather than ``build_schedule_from_partitioned_job``, whose evaluation calls the deprecated
``run_request_for_partition`` on every tick in 1.13. Both schedules start STOPPED unless
``NH_SCHEDULE_ENABLED`` is set: nothing spends Gemini quota, or says a report is late, until the
operator turns scheduling on.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from nh_assets.settings import Settings

DAILY_SCHEDULE_NAME = "neurohelix_daily_schedule"


def schedule_status(settings: Settings) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if settings.schedule_enabled else dg.DefaultScheduleStatus.STOPPED


def build_daily_schedule(settings: Settings, daily_job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    zone = ZoneInfo(settings.timezone)

    @dg.schedule(
        name=DAILY_SCHEDULE_NAME,
        # By name: the job object belongs to the core definitions; a second reference to an
        # equal but distinct object would be a duplicate definition.
        job_name=daily_job.name,
        cron_schedule=f"{settings.schedule_minute} {settings.schedule_hour} * * *",
        execution_timezone=settings.timezone,
        default_status=schedule_status(settings),
        description=(
            f"Today's NeuroHelix run at {settings.schedule_hour:02d}:{settings.schedule_minute:02d} "
            f"{settings.timezone} (NH_SCHEDULE_HOUR / NH_SCHEDULE_MINUTE / NH_SCHEDULE_ENABLED)."
        ),
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        tick = context.scheduled_execution_time or datetime.now(zone)
        today = tick.astimezone(zone).date()
        if today < settings.partition_start:
            return dg.SkipReason(f"{today} is before the first partition {settings.partition_start}")
        return dg.RunRequest(run_key=today.isoformat(), partition_key=today.isoformat())

    return _daily
