"""Reading the upstream artifacts a prompt depends on, day offsets and windows included.

Dagster's lineage (``TimeWindowPartitionMapping``) says *which* partitions an asset depends on;
this module finds the matching files in the data layout. Past days may be missing: history
before the first partition or a skipped day never blocks. A same-day input must exist unless the
registry marks it optional (``prompt_id?``): then the prompt runs on the rest and the artifact
names what is missing and why (``why_missing``, read from Dagster's instance by the factory).
A row whose same-day inputs are all optional and all missing has nothing to work from and fails.
"""

from __future__ import annotations

from collections.abc import Callable
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
    missing_reason: str | None = None  # set for a missing optional same-day input

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
            **({"missing_reason": self.missing_reason} if self.missing_reason else {}),
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


def not_materialized(prompt_id: str, day: str) -> str:
    return f"not materialized for {day}"


def collect_upstream(
    spec: PromptSpec,
    registry: Registry,
    *,
    day: date,
    first_day: date,
    data_root: Path,
    why_missing: Callable[[str, str], str] = not_materialized,
) -> list[UpstreamArtifact]:
    optional = {dep.prompt_id for dep in spec.depends_on if dep.optional}
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
        elif same_day and prompt_id in optional:
            reason = why_missing(prompt_id, upstream_day.isoformat())
            artifacts.append(
                UpstreamArtifact(prompt_id, upstream_day.isoformat(), str(relative), None, None, True, reason)
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
    same_day_inputs = [a for a in artifacts if a.same_day]
    if same_day_inputs and not any(a.present for a in same_day_inputs):
        raise MissingSameDayInput(
            f"{spec.prompt_id} has none of its same-day inputs for {day.isoformat()} "
            f"({', '.join(a.prompt_id for a in same_day_inputs)}): nothing to build from — "
            "materialize at least one of them first"
        )
    return artifacts
