"""Retention (the old ``nh cleanup --keep-days``): remove artifacts of expired days, tell Dagster.

A day is *expired* when it is more than ``keep_days`` days before today (in the partitions'
time zone): with ``keep_days=7`` on 2026-11-20, 2026-11-13 is kept and 2026-11-12 removed. Only
what ``parity.scan_tree`` attributes to an expired day is removed: registry artifacts, their
leftover ``.partial`` temp files, and then the day's ``outputs/daily/DATE/`` directory if that
left it empty. Unknown files, malformed date folders (``2025-13-45``) and future days are never
touched, only reported. A run started by hand defaults to ``dry_run``: it reports what it would
remove; the daily schedule (stopped until an operator starts it) removes for real.

Removed partitions must show as *missing* in the UI, not as materialized files that no longer
exist. Dagster 1.13 has ``DagsterInstance.wipe_asset_partitions`` for that, but its SQL event
log storages (SQLite, Postgres, MySQL) raise ``NotImplementedError``. On such storages the
asset's history is wiped (``wipe_assets``) and the latest materialization of every partition
still kept is re-reported as a runless event copying its tags (data and code versions) and
small metadata, plus the run it came from. The costs, accepted for an honest UI: one event per
kept partition per cleanup that forgets something; the asset's check history is cleared by the
wipe; and a materialization landing between the read and the wipe (milliseconds) is not
restored — the schedule runs at 03:30, away from the daily run.
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
_RESTORE_BATCH = 200


class RetentionConfig(dg.Config):
    keep_days: int = Field(ge=1, description="Keep today and this many days before it; older days are removed.")
    dry_run: bool = Field(
        default=True, description="Only report what would be removed (the default for runs started by hand)."
    )
    forget_in_dagster: bool = Field(
        default=True, description="Also mark removed partitions as missing in Dagster (see the module docstring)."
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


def partitions_to_forget(
    instance: dg.DagsterInstance, registry: Registry, root: Path, cutoff: date, *, removed: set[Path]
) -> dict[str, list[str]]:
    """Per prompt asset: materialized partitions before ``cutoff`` whose artifact is gone.

    ``removed`` counts as gone too, so a dry run reports what a real run would mark missing.
    """
    forget: dict[str, list[str]] = {}
    for spec in registry.prompts:
        stale = []
        for partition in instance.get_materialized_partitions(dg.AssetKey(spec.prompt_id)):
            day = parse_day(partition)
            if day is None or day >= cutoff:
                continue
            path = root / spec.output_path(partition)
            if path in removed or not path.exists():
                stale.append(partition)
        if stale:
            forget[spec.prompt_id] = sorted(stale)
    return forget


def _is_small(value: dg.MetadataValue) -> bool:
    # Previews and upstream listings stay on the original run's event; the rest is copied.
    return not isinstance(value, (dg.MarkdownMetadataValue, dg.JsonMetadataValue))


def forget_partitions(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitions: list[str]) -> str:
    """Make ``partitions`` of ``asset_key`` count as never materialized; returns the mechanism."""
    try:
        instance.wipe_asset_partitions(asset_key, partitions)
        return "wipe_asset_partitions"
    except NotImplementedError:
        pass
    doomed = set(partitions)
    latest = instance.get_latest_storage_id_by_partition(asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION)
    keep_ids = sorted(storage_id for partition, storage_id in latest.items() if partition not in doomed)
    records = []
    for start in range(0, len(keep_ids), _RESTORE_BATCH):
        batch = keep_ids[start : start + _RESTORE_BATCH]
        records += instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=batch), limit=len(batch)
        ).records
    instance.wipe_assets([asset_key])
    for record in sorted(records, key=lambda r: r.storage_id):
        original = record.asset_materialization
        assert original is not None
        metadata = {k: v for k, v in original.metadata.items() if _is_small(v)}
        if record.run_id:  # a runless original (an import, an earlier restore) keeps its own provenance
            metadata["nh.restored_from_run_id"] = dg.MetadataValue.text(record.run_id)
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=asset_key,
                partition=original.partition,
                description=original.description,
                metadata=metadata,
                tags=original.tags,
            )
        )
    return "wipe_assets + restore of kept partitions"


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

        forgotten = 0
        mechanisms: set[str] = set()
        if config.forget_in_dagster:
            planned = {a.path for a in plan.expired} if config.dry_run else set()
            stale = partitions_to_forget(context.instance, registry, root, plan.cutoff, removed=planned)
            forgotten = sum(len(p) for p in stale.values())
            if not config.dry_run:
                for prompt_id, partitions in stale.items():
                    mechanisms.add(forget_partitions(context.instance, dg.AssetKey(prompt_id), partitions))
            if forgotten:
                marked = "would mark" if config.dry_run else "marked"
                context.log.info(f"{marked} {forgotten} partition(s) missing in Dagster")

        metadata = {
            "nh.dry_run": dg.MetadataValue.bool(config.dry_run),
            "nh.keep_days": dg.MetadataValue.int(config.keep_days),
            "nh.first_kept_day": dg.MetadataValue.text(plan.cutoff.isoformat()),
            "nh.removed_files": dg.MetadataValue.int(len(result.removed_files)),
            "nh.removed_day_folders": dg.MetadataValue.int(len(result.removed_dirs)),
            "nh.kept_artifacts": dg.MetadataValue.int(plan.kept),
            "nh.partitions_marked_missing": dg.MetadataValue.int(forgotten),
            "nh.forget_mechanism": dg.MetadataValue.text(", ".join(sorted(mechanisms)) or "none"),
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
            "Removes artifacts of days older than keep_days (old `nh cleanup --keep-days`) and marks them "
            "missing in Dagster. Started by hand it is a dry run unless dry_run is set to false."
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
