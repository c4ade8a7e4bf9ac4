"""History import (the old migration step): make days the legacy pipeline produced count in Dagster.

The ``import_history`` job scans an existing NeuroHelix data tree with ``parity.scan_tree`` and
records, for every registry artifact of a day inside the partitions, a runless materialization
(``DagsterInstance.report_runless_asset_event``) with its path, sha256 and origin. The UI then
shows past days as materialized and "materialize missing" skips them. The data version is the
file's sha256, as for a materialization by the asset itself, so an imported day and a produced
one compare alike.

Assets read their inputs from the data root, so a legacy tree elsewhere is copied into it first
(atomically, file by file); a file already there with different content is a *conflict*: kept,
listed, not imported. Partitions already materialized are left as they are, so running the import
twice records nothing new. Unknown files, malformed dates and days outside the partitions are
listed in the result, never imported, and never stop the import. A parity report of the legacy
tree against the data root ends the job.
"""

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
from pydantic import Field

from nh_assets.artifacts import sha256_file, write_atomic
from nh_assets.operations.data_tree import Artifact, listing, parse_day, scan_tree
from nh_assets.operations.parity import compare_trees
from nh_assets.registry import Registry
from nh_assets.data_layout import DataLayoutResource

JOB_NAME = "import_history"
# Dagster's event tag for a materialization's data version (not exported by `dagster`).
DATA_VERSION_TAG = "dagster/data_version"


class ImportHistoryConfig(dg.Config):
    legacy_root: str = Field(
        default="", description="Root of the existing NeuroHelix tree; empty for the data root itself."
    )
    start_date: str | None = Field(default=None, description="First day to import, YYYY-MM-DD (default: all).")
    end_date: str | None = Field(default=None, description="Last day to import, YYYY-MM-DD (default: all).")

    def legacy_path(self, data_root: Path) -> Path:
        return Path(self.legacy_root).expanduser() if self.legacy_root.strip() else data_root

    def bounds(self) -> tuple[date | None, date | None]:
        return _day_bound(self.start_date, "start_date"), _day_bound(self.end_date, "end_date")


@dg.config_mapping
def _one_config_for_both_steps(config: ImportHistoryConfig) -> dg.RunConfig:
    # The import and the parity report read the same tree and days: the launchpad asks once.
    return dg.RunConfig(ops={"import_legacy_artifacts": config, "parity_report": config})


@dataclass
class ImportResult:
    imported: list[Artifact] = field(default_factory=list)
    copied: int = 0
    already_materialized: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    outside_partitions: list[str] = field(default_factory=list)
    outside_range: int = 0
    unexpected: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _day_bound(value: str | None, name: str) -> date | None:
    if value is None or not value.strip():
        return None
    day = parse_day(value.strip())
    if day is None:
        raise dg.Failure(description=f"import_history: {name}={value!r} is not a YYYY-MM-DD day — fix the run config")
    return day


def import_history(
    *,
    instance: dg.DagsterInstance,
    registry: Registry,
    partitions_def: dg.DailyPartitionsDefinition,
    legacy_root: Path,
    data_root: Path,
    start: date | None = None,
    end: date | None = None,
    run_id: str | None = None,
) -> ImportResult:
    scan = scan_tree(legacy_root, registry)
    result = ImportResult(unexpected=list(scan.unknown), malformed=list(scan.malformed))
    result.unexpected += [a.relative for a in scan.partials]
    valid = set(partitions_def.get_partition_keys())
    same_tree = legacy_root.resolve() == data_root.resolve()
    materialized = {
        spec.prompt_id: instance.get_materialized_partitions(dg.AssetKey(spec.prompt_id)) for spec in registry.prompts
    }

    for (prompt_id, day), artifact in sorted(scan.artifacts.items(), key=lambda item: (item[0][1], item[0][0])):
        if (start and day < start) or (end and day > end):
            result.outside_range += 1
            continue
        partition = day.isoformat()
        if partition not in valid:
            result.outside_partitions.append(artifact.relative)
            continue
        if partition in materialized[prompt_id]:
            result.already_materialized.append(artifact.relative)
            continue
        try:
            target, copied = _place(artifact, data_root, same_tree)
        except _Conflict as conflict:
            result.conflicts.append(str(conflict))
            continue
        except OSError as exc:
            result.errors.append(f"{artifact.relative}: {exc.strerror or exc}")
            continue
        result.copied += copied
        sha = sha256_file(target)
        metadata = {
            "path": dg.MetadataValue.path(str(target)),
            "nh.relative_path": dg.MetadataValue.text(artifact.relative),
            "sha256": dg.MetadataValue.text(sha),
            "bytes": dg.MetadataValue.int(target.stat().st_size),
            "nh.imported_from": dg.MetadataValue.path(str(artifact.path)),
        }
        if run_id:
            metadata["nh.imported_by_run"] = dg.MetadataValue.text(run_id)
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=prompt_id,
                partition=partition,
                description="Imported from an existing NeuroHelix tree (import_history).",
                metadata=metadata,
                tags={DATA_VERSION_TAG: sha},
            )
        )
        result.imported.append(artifact)
    return result


class _Conflict(Exception):
    pass


def _place(artifact: Artifact, data_root: Path, same_tree: bool) -> tuple[Path, int]:
    """The artifact's path under the data root, copying it there if needed; (path, copies made)."""
    if same_tree:
        return artifact.path, 0
    target = data_root / artifact.relative
    if target.exists():
        if sha256_file(target) != sha256_file(artifact.path):
            raise _Conflict(f"{artifact.relative}: the data root already holds different content (kept)")
        return target, 0
    write_atomic(target, artifact.path.read_bytes())
    return target, 1


def _per_asset_table(imported: list[Artifact]) -> str:
    counts: dict[str, list[date]] = {}
    for artifact in imported:
        counts.setdefault(artifact.prompt_id, []).append(artifact.day)
    lines = ["| asset | days imported | first | last |", "|---|---|---|---|"]
    lines += [f"| {pid} | {len(days)} | {min(days)} | {max(days)} |" for pid, days in sorted(counts.items())]
    if not counts:
        lines.append("| — | 0 | | |")
    return "\n".join(lines)


def build_import_history_job(*, registry: Registry, partitions_def: dg.DailyPartitionsDefinition) -> dg.JobDefinition:
    @dg.op(name="import_legacy_artifacts", out=dg.Out(dg.Nothing))
    def import_legacy_artifacts(
        context: dg.OpExecutionContext, config: ImportHistoryConfig, layout: DataLayoutResource
    ) -> None:
        legacy_root = config.legacy_path(layout.root_path)
        start, end = config.bounds()
        if not legacy_root.is_dir():
            raise dg.Failure(
                description=(
                    f"import_history: legacy_root {legacy_root} is not a directory — set it to the old NeuroHelix "
                    "data tree"
                ),
                allow_retries=False,
            )
        result = import_history(
            instance=context.instance,
            registry=registry,
            partitions_def=partitions_def,
            legacy_root=legacy_root,
            data_root=layout.root_path,
            start=start,
            end=end,
            run_id=context.run_id,
        )
        context.log.info(
            f"imported {len(result.imported)} artifact(s) ({result.copied} copied into the data root); "
            f"{len(result.already_materialized)} already materialized, {len(result.conflicts)} conflict(s), "
            f"{len(result.unexpected)} unexpected file(s), {len(result.malformed)} malformed date(s)"
        )
        if result.unexpected or result.malformed or result.conflicts or result.outside_partitions:
            context.log.warning("some files were not imported: see this step's output metadata")
        context.add_output_metadata(
            {
                "nh.legacy_root": dg.MetadataValue.path(str(legacy_root)),
                "nh.imported": dg.MetadataValue.int(len(result.imported)),
                "nh.copied_into_data_root": dg.MetadataValue.int(result.copied),
                "nh.already_materialized": dg.MetadataValue.int(len(result.already_materialized)),
                "nh.outside_date_range": dg.MetadataValue.int(result.outside_range),
                "nh.outside_partitions": listing(result.outside_partitions),
                "nh.conflicts": listing(result.conflicts),
                "nh.unexpected_files": listing(result.unexpected),
                "nh.malformed_dates": listing(result.malformed),
                "nh.errors": listing(result.errors),
                "imported_per_asset": dg.MetadataValue.md(_per_asset_table(result.imported)),
            }
        )

    @dg.op(name="parity_report", ins={"after_import": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
    def parity_report(context: dg.OpExecutionContext, config: ImportHistoryConfig, layout: DataLayoutResource) -> None:
        legacy_root = config.legacy_path(layout.root_path)
        start, end = config.bounds()
        if legacy_root.resolve() == layout.root_path.resolve():
            context.log.info("legacy_root is the data root: nothing to compare")
            context.add_output_metadata({"parity.ok": dg.MetadataValue.bool(True), "parity.report": "same tree"})
            return
        report = compare_trees(legacy_root, layout.root_path, registry, start=start, end=end)
        (context.log.info if report.ok else context.log.warning)(report.summary())
        context.add_output_metadata(
            {
                "parity.ok": dg.MetadataValue.bool(report.ok),
                "parity.report": dg.MetadataValue.md(report.markdown()),
            }
        )

    @dg.job(
        name=JOB_NAME,
        description=(
            "Records the artifacts of an existing NeuroHelix tree as materializations (copying them into "
            "the data root when the tree is elsewhere), then reports parity between the two trees."
        ),
        config=_one_config_for_both_steps,
        executor_def=dg.in_process_executor,
        tags={"nh/maintenance": "history_import"},
    )
    def import_history_job() -> None:
        parity_report(after_import=import_legacy_artifacts())

    return import_history_job
