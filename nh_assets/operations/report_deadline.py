"""Is today's report there by the deadline? A check, its job and the schedule that runs it.

Freshness is a custom, unpartitioned ``report_on_time`` check rather than a ``FreshnessPolicy``:
a policy would have to be attached to the asset in the factory, is evaluated by a freshness
daemon that is off unless ``dagster.yaml`` enables it, and judges the latest materialization of
*any* partition, so a backfill of an old day would make a missing report look fresh; the
``build_*_freshness_checks`` factories are superseded in 1.13. The check asks the question the
operator has — "is today's partition (in ``NH_TIMEZONE``) materialized, and is it past
``NH_REPORT_DEADLINE_HOUR``?" — and runs from the deadline schedule's job, not in daily runs.

The report rows are the same-day markdown inputs of the rows whose format is published (the
site payload): lineage from the registry, not a name in code.
"""


from collections.abc import Sequence
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import dagster as dg

from nh_assets.formats import FORMATS, Verdict
from nh_assets.operations.schedules import schedule_status
from nh_assets.registry import PromptSpec, Registry
from nh_assets.settings import Settings

ON_TIME_CHECK = "report_on_time"
DEADLINE_JOB_NAME = "neurohelix_report_deadline"
DEADLINE_SCHEDULE_NAME = "neurohelix_report_deadline_schedule"


def report_specs(registry: Registry) -> list[PromptSpec]:
    """Markdown rows that a published row reads on the same day: the daily report."""
    published = [spec for spec in registry.prompts if FORMATS[spec.output_format].published]
    inputs = {dep.prompt_id for spec in published for dep in spec.depends_on if dep.is_same_day}
    return [spec for spec in registry.prompts if spec.prompt_id in inputs and FORMATS[spec.output_format].has_sections]


def report_lateness(
    *, now: datetime, deadline_hour: int, first_day: date, materialized_at: datetime | None
) -> Verdict:
    """Judge today's report at ``now`` (aware, in the operator's zone)."""
    today = now.date()
    deadline = datetime.combine(today, time(deadline_hour), tzinfo=now.tzinfo)
    due = f"{deadline:%H:%M} {now.tzname()}"
    metadata: dict[str, object] = {"nh.partition": today.isoformat(), "nh.deadline": deadline.isoformat()}
    if today < first_day:
        return Verdict(True, f"no report is due before the first partition {first_day}", metadata)
    if materialized_at is not None:
        metadata["nh.materialized_at"] = materialized_at.isoformat()
        late = (materialized_at - deadline).total_seconds() / 60
        if late > 0:
            metadata["nh.minutes_late"] = round(late)
            message = f"today's report ({today}) arrived {round(late)} min after the {due} deadline"
            return Verdict(True, message, metadata)
        return Verdict(True, f"today's report ({today}) arrived by {due}", metadata)
    if now < deadline:
        return Verdict(True, f"today's report ({today}) is not due until {due}", metadata)
    overdue = round((now - deadline).total_seconds() / 60)
    metadata["nh.minutes_overdue"] = overdue
    return Verdict(
        False,
        f"today's report ({today}) is late: not materialized by {due} ({overdue} min overdue) — "
        "look for a failed or missing neurohelix_daily run",
        metadata,
    )


def _now(zone: ZoneInfo) -> datetime:
    return datetime.now(zone)


def build_report_deadline_checks(
    registry: Registry, *, timezone: str, deadline_hour: int, first_day: date
) -> list[dg.AssetChecksDefinition]:
    """One unpartitioned ``report_on_time`` check per report row (see ``report_specs``)."""
    zone = ZoneInfo(timezone)
    reports = report_specs(registry)

    def build(spec: PromptSpec) -> dg.AssetChecksDefinition:
        key = dg.AssetKey(spec.prompt_id)

        @dg.asset_check(
            asset=key,
            name=ON_TIME_CHECK,
            description=f"Today's partition (in {timezone}) is materialized by {deadline_hour:02d}:00.",
        )
        def _on_time(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
            now = _now(zone)
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[now.date().isoformat()]), limit=1
            ).records
            materialized_at = datetime.fromtimestamp(records[0].timestamp, zone) if records else None
            verdict = report_lateness(
                now=now, deadline_hour=deadline_hour, first_day=first_day, materialized_at=materialized_at
            )
            return dg.AssetCheckResult(
                passed=verdict.passed, description=verdict.description, metadata=verdict.metadata
            )

        return _on_time

    return [build(spec) for spec in reports]


def build_report_deadline_job(on_time_checks: Sequence[dg.AssetChecksDefinition]) -> "dg.UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        DEADLINE_JOB_NAME,
        selection=dg.AssetSelection.checks(*on_time_checks),
        description="Says whether today's report is late; runs no prompt and calls no model.",
    )


def build_report_deadline_schedule(settings: Settings, job: "dg.UnresolvedAssetJobDefinition") -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=DEADLINE_SCHEDULE_NAME,
        job=job,
        cron_schedule=f"0 {settings.report_deadline_hour} * * *",
        execution_timezone=settings.timezone,
        default_status=schedule_status(settings),
        description=f"At the report deadline ({settings.report_deadline_hour:02d}:00 {settings.timezone}, "
        "NH_REPORT_DEADLINE_HOUR), check that today's report exists.",
    )
