"""Reading the upstream artifacts a prompt depends on, day offsets and windows included.

Dagster's lineage (``TimeWindowPartitionMapping``) says *which* partitions an asset depends on;
this module finds the matching files in the data layout. Same-day inputs must exist (Dagster
orders them before us in a run; a missing one means someone materialized out of order), while
past days may be missing: history before the first partition or a skipped day never blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from nh_assets.artifacts import sha256_bytes, strip_front_matter
from nh_assets.registry import PromptSpec, Registry


@dataclass(frozen=True)
class UpstreamArtifact:
    prompt_id: str
    partition: str
    relative_path: str
    text: str | None  # None when the file does not exist
    sha256: str | None
    same_day: bool

    @property
    def present(self) -> bool:
        return self.text is not None

    def describe(self) -> dict[str, object]:
        return {
            "asset": self.prompt_id,
            "partition": self.partition,
            "path": self.relative_path,
            "present": self.present,
            "sha256": self.sha256,
        }


class MissingSameDayInput(Exception):
    """A same-day upstream output is missing: materialize it first."""


def upstream_partitions(spec: PromptSpec, day: date, first_day: date) -> list[tuple[str, date]]:
    """(upstream prompt id, day) pairs that ``spec`` reads for ``day``, oldest first per dependency."""
    pairs = []
    for dep in spec.depends_on:
        for offset in range(dep.start_offset, dep.end_offset + 1):
            upstream_day = day + timedelta(days=offset)
            if upstream_day >= first_day:
                pairs.append((dep.prompt_id, upstream_day))
    return pairs


def collect_upstream(
    spec: PromptSpec, registry: Registry, *, day: date, first_day: date, data_root: Path
) -> list[UpstreamArtifact]:
    artifacts = []
    for prompt_id, upstream_day in upstream_partitions(spec, day, first_day):
        relative = registry.by_id(prompt_id).output_path(upstream_day.isoformat())
        path = data_root / relative
        same_day = upstream_day == day
        if path.is_file():
            raw = path.read_bytes()
            text = strip_front_matter(raw.decode("utf-8", errors="replace"))
            artifacts.append(
                UpstreamArtifact(prompt_id, upstream_day.isoformat(), str(relative), text, sha256_bytes(raw), same_day)
            )
        elif same_day:
            raise MissingSameDayInput(
                f"{spec.prompt_id} needs {prompt_id} for {upstream_day.isoformat()} but {path} does not exist — "
                f"materialize {prompt_id} for that day first (or select both: `--select '+{spec.prompt_id}'`)"
            )
        else:
            artifacts.append(
                UpstreamArtifact(prompt_id, upstream_day.isoformat(), str(relative), None, None, same_day)
            )
    return artifacts
