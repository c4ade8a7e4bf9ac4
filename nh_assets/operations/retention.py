"""Retention (the old ``nh cleanup --keep-days``): remove artifacts of expired days, tell Dagster.

A day is *expired* when it is more than ``keep_days`` days before today (in the partitions'
time zone): with ``keep_days=7`` on 2026-11-20, 2026-11-13 is kept and 2026-11-12 removed. Only
what ``parity.scan_tree`` attributes to an expired day is removed: registry artifacts, their
leftover ``.partial`` temp files, and then the day's ``outputs/daily/DATE/`` directory if that
left it empty. Unknown files, malformed date folders (``2025-13-45``) and future days are never
touched, only reported. A run started by hand defaults to ``dry_run``: it reports what it would
remove; the daily schedule (stopped until an operator starts it) removes for real.

Removing a day's files never touches Dagster's history: every materialization and every asset
check result of every day stays, expired or kept. (Dagster 1.13's ``wipe_asset_partitions``
raises ``NotImplementedError`` on SQL storages, and wiping a whole asset to forget some days
would delete the materializations and check results of the days kept.) Instead, each
partition whose artifact was removed gets an ``AssetObservation`` from the retention run, with
``nh.files_removed`` (the paths) and a description: the UI lists it in the asset's events and in
the partition's detail, next to the materialization it follows. The partition stays
*materialized*, which is true — it was — so "materialize missing" never pays Gemini again for a
day retention removed on purpose; rematerializing such a day is an explicit choice.

Crash-safe by construction: files are removed first, observations recorded after, and which
partitions still need one is derived from the tree and the event log (materialized before the
cutoff, file absent, no removal observation since its latest materialization), never from
memory. A run killed at any point leaves files removed but not yet reported, and the next run
reports them.
"""

import errno
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import Field

from nh_assets.operations.data_tree import LIST_LIMIT, Artifact, TreeScan, listing, parse_day, scan_tree
from nh_assets.registry import Registry
from nh_assets.data_layout import DataLayoutResource

JOB_NAME = "retention_cleanup"
SCHEDULE_NAME = "retention_cleanup_daily"
# The metadata key of the observation that says a partition's artifact was removed.
FILES_REMOVED_KEY = "nh.files_removed"


class RetentionConfig(dg.Config):
    keep_days: int = Field(ge=1, description="Keep today and this many days before it; older days are removed.")
    dry_run: bool = Field(
        default=True, description="Only report what would be removed (the default for runs started by hand)."
    )


def today_in(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


@dataclass
class CleanupPlan:
    cutoff: date  # first day kept
    today: date
    expired: list[Artifact] = field(default_factory=list)
    expired_partials: list[Artifact] = field(default_factory=list)
    expired_dirs: list[Path] = field(default_factory=list)
    kept: int = 0
    future: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def plan_cleanup(scan: TreeScan, *, today: date, keep_days: int) -> CleanupPlan:
    plan = CleanupPlan(cutoff=today - timedelta(days=keep_days), today=today)
    for artifact in sorted(scan.artifacts.values(), key=lambda a: (a.day, a.relative)):
        if artifact.day > today:
            plan.future.append(artifact.relative)
        elif artifact.day < plan.cutoff:
            plan.expired.append(artifact)
        else:
            plan.kept += 1
    plan.expired_partials = [a for a in scan.partials if a.day < plan.cutoff]
    for day, dirs in sorted(scan.day_dirs.items()):
        if day < plan.cutoff:
            plan.expired_dirs.extend(dirs)
        elif day > today:
            plan.future.extend(str(d.relative_to(scan.root).as_posix()) + "/" for d in dirs)
    plan.malformed = list(scan.malformed)
    plan.unknown = list(scan.unknown)
    return plan


@dataclass
class CleanupResult:
    removed_files: list[str] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)
    kept_dirs: list[str] = field(default_factory=list)  # expired but still holding unknown files
    errors: list[str] = field(default_factory=list)


def apply_cleanup(plan: CleanupPlan, root: Path, *, dry_run: bool) -> CleanupResult:
    result = CleanupResult()
    for artifact in [*plan.expired, *plan.expired_partials]:
        if not dry_run:
            try:
                artifact.path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                result.errors.append(f"{artifact.relative}: {exc.strerror or exc}")
                continue
        result.removed_files.append(artifact.relative)
    removed = {a.path for a in [*plan.expired, *plan.expired_partials]}
    for directory in plan.expired_dirs:
        rel = directory.relative_to(root).as_posix() + "/"
        if dry_run:
            # It would be removed only if nothing but expired artifacts is inside.
            rest = [p for p in directory.rglob("*") if p.is_file() or p.is_symlink()]
            (result.removed_dirs if all(p in removed for p in rest) else result.kept_dirs).append(rel)
            continue
        try:
            _remove_empty_tree(directory)
            result.removed_dirs.append(rel)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                result.kept_dirs.append(rel)
            else:
                result.errors.append(f"{rel}: {exc.strerror or exc}")
    return result


def _remove_empty_tree(directory: Path) -> None:
    """rmdir the directory and its empty subdirectories; raises ENOTEMPTY if a file remains."""
    for child in sorted(directory.iterdir()):
        if child.is_dir() and not child.is_symlink():
            _remove_empty_tree(child)
    directory.rmdir()


def _removal_observed(instance: dg.DagsterInstance, asset_key: dg.AssetKey, storage_ids: list[int]) -> set[str]:
    """Partitions among these observation records that report a removal."""
    if not storage_ids:
        return set()
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=storage_ids), limit=len(storage_ids)
    ).records
    return {
        r.partition_key for r in records if r.partition_key and FILES_REMOVED_KEY in r.asset_observation.metadata
    }


def partitions_to_report(
    instance: dg.DagsterInstance, registry: Registry, root: Path, cutoff: date, *, removed: set[Path]
) -> dict[str, list[tuple[str, str]]]:
    """Per prompt asset: (partition, relative path) of partitions materialized before ``cutoff``
    whose artifact is gone and whose removal no observation since their latest materialization
    reports. ``removed`` counts as gone too, so a dry run reports what a real run would."""
    pending: dict[str, list[tuple[str, str]]] = {}
    for spec in registry.prompts:
        key = dg.AssetKey(spec.prompt_id)
        gone: dict[str, int] = {}
        for partition, storage_id in instance.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_MATERIALIZATION
        ).items():
            day = parse_day(partition)
            path = root / spec.output_path(partition)
            if day is not None and day < cutoff and (path in removed or not path.exists()):
                gone[partition] = storage_id
        if not gone:
            continue
        latest_observation = instance.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_OBSERVATION, partitions=set(gone)
        )
        newer = [sid for p, sid in latest_observation.items() if sid > gone[p]]
        reported = _removal_observed(instance, key, newer)
        todo = sorted(p for p in gone if p not in reported)
        if todo:
            pending[spec.prompt_id] = [(p, spec.output_path(p)) for p in todo]
    return pending


def removal_observation(prompt_id: str, partition: str, relative: str, *, keep_days: int, today: date):
    return dg.AssetObservation(
        asset_key=dg.AssetKey(prompt_id),
        partition=partition,
        description=(
            f"artifact file removed by retention on {today} (older than {keep_days} days); this partition's "
            "materializations and check results are kept — materialize it again to bring the file back"
        ),
        metadata={
            FILES_REMOVED_KEY: dg.MetadataValue.json([str(relative)]),
            "nh.removed_on": dg.MetadataValue.text(today.isoformat()),
            "nh.keep_days": dg.MetadataValue.int(keep_days),
        },
    )


def _summary_table(plan: CleanupPlan, dry_run: bool) -> str:
    per_day: dict[date, int] = {}
    for artifact in plan.expired:
        per_day[artifact.day] = per_day.get(artifact.day, 0) + 1
    verb = "would remove" if dry_run else "removed"
    lines = [f"| day | artifacts {verb} |", "|---|---|"]
    lines += [f"| {day} | {count} |" for day, count in sorted(per_day.items())[:LIST_LIMIT]]
    if not per_day:
        lines.append(f"| — | nothing before {plan.cutoff} |")
    return "\n".join(lines)


def build_retention_job(*, registry: Registry, timezone: str, default_keep_days: int) -> dg.JobDefinition:
    @dg.op(name="remove_expired_artifacts", out=dg.Out(dg.Nothing))
    def remove_expired_artifacts(
        context: dg.OpExecutionContext, config: RetentionConfig, layout: DataLayoutResource
    ) -> None:
        root = layout.root_path
        plan = plan_cleanup(scan_tree(root, registry), today=today_in(timezone), keep_days=config.keep_days)
        result = apply_cleanup(plan, root, dry_run=config.dry_run)
        verb = "would remove" if config.dry_run else "removed"
        context.log.info(
            f"{verb} {len(result.removed_files)} file(s) and {len(result.removed_dirs)} day folder(s) before "
            f"{plan.cutoff}; kept {plan.kept} artifact(s)"
        )
        for item in plan.future:
            context.log.warning(f"future day left alone: {item}")
        for item in plan.malformed:
            context.log.warning(f"malformed date left alone: {item}")

        # Derived after the removal, from the tree and the event log: a run killed before this
        # point left files removed but unreported, and is made whole here.
        planned = {a.path for a in plan.expired} if config.dry_run else set()
        pending = partitions_to_report(context.instance, registry, root, plan.cutoff, removed=planned)
        reported = sum(len(p) for p in pending.values())
        if not config.dry_run:
            for prompt_id, partitions in pending.items():
                for partition, relative in partitions:
                    context.log_event(
                        removal_observation(
                            prompt_id, partition, str(relative), keep_days=config.keep_days, today=plan.today
                        )
                    )
        if reported:
            recorded = "would record" if config.dry_run else "recorded"
            context.log.info(f"{recorded} {reported} removal observation(s) ({FILES_REMOVED_KEY}); history kept")

        metadata = {
            "nh.dry_run": dg.MetadataValue.bool(config.dry_run),
            "nh.keep_days": dg.MetadataValue.int(config.keep_days),
            "nh.first_kept_day": dg.MetadataValue.text(plan.cutoff.isoformat()),
            "nh.removed_files": dg.MetadataValue.int(len(result.removed_files)),
            "nh.removed_day_folders": dg.MetadataValue.int(len(result.removed_dirs)),
            "nh.kept_artifacts": dg.MetadataValue.int(plan.kept),
            "nh.partitions_reported_removed": dg.MetadataValue.int(reported),
            "nh.future_left_alone": listing(plan.future),
            "nh.malformed_left_alone": listing(plan.malformed),
            "nh.unknown_left_alone": listing(plan.unknown),
            "nh.expired_folders_kept": listing(result.kept_dirs),
            "nh.removed": listing(result.removed_files),
            "nh.errors": listing(result.errors),
            "summary": dg.MetadataValue.md(_summary_table(plan, config.dry_run)),
        }
        if result.errors:
            raise dg.Failure(
                description=(
                    f"retention: {len(result.errors)} item(s) could not be removed (first: {result.errors[0]}) — "
                    "fix their permissions and run again"
                ),
                metadata=metadata,
                allow_retries=False,
            )
        context.add_output_metadata(metadata)

    @dg.job(
        name=JOB_NAME,
        description=(
            "Removes artifacts of days older than keep_days (old `nh cleanup --keep-days`) and records an "
            f"observation ({FILES_REMOVED_KEY}) on each partition whose file it removed; Dagster's history is "
            "kept. Started by hand it is a dry run unless dry_run is set to false."
        ),
        config=dg.RunConfig(ops={"remove_expired_artifacts": RetentionConfig(keep_days=default_keep_days)}),
        executor_def=dg.in_process_executor,
        tags={"nh/maintenance": "retention"},
    )
    def retention_cleanup() -> None:
        remove_expired_artifacts()

    return retention_cleanup


def build_retention_schedule(job: dg.JobDefinition, *, timezone: str, keep_days: int) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=SCHEDULE_NAME,
        job=job,
        cron_schedule="30 3 * * *",
        execution_timezone=timezone,
        # Starting the schedule is the operator's decision to delete: its runs are not dry runs.
        run_config=dg.RunConfig(
            ops={"remove_expired_artifacts": RetentionConfig(keep_days=keep_days, dry_run=False)}
        ),
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=(
            f"Daily at 03:30: remove artifacts older than {keep_days} days (deletes for real; review a dry run first)."
        ),
    )
