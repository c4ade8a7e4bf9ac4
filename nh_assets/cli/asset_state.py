"""Each prompt asset's state for one day, read from the instance: the old manifest, rebuilt.

The old pipeline wrote ``data/manifests/DATE.json`` (path, sha256, tokens, duration, attempts per
prompt). Here every materialization already records that as metadata (``nh_assets.factory``), so
the manifest is the latest materialization of each asset for the day. Its state is:

- ``missing``: never materialized for that day;
- ``stale``: the asset's ``code_version`` (a hash of its registry row, ``dagster/code_version`` on
  the materialization) changed since, or an upstream partition it reads was materialized after it;
- ``materialized``: otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone

import dagster as dg

from nh_assets.cli.project import Project
from nh_assets.prompts.upstream import upstream_partitions

CODE_VERSION_TAG = "dagster/code_version"
MISSING, STALE, MATERIALIZED = "missing", "stale", "materialized"
# Metadata keys the factory writes, under the names `nh status --json` gives them.
_FIELDS = {
    "path": "path",
    "sha256": "sha256",
    "bytes": "bytes",
    "model": "gemini.model",
    "input_tokens": "gemini.input_tokens",
    "output_tokens": "gemini.output_tokens",
    "total_tokens": "gemini.total_tokens",
    "duration_s": "nh.duration_s",
    "attempts": "nh.attempts",
    "demo": "gemini.demo",
}


@dataclass
class AssetState:
    asset: str
    partition: str
    state: str
    reasons: list[str] = field(default_factory=list)
    run_id: str | None = None
    materialized_at: str | None = None
    code_version: str | None = None  # recorded on the materialization
    current_code_version: str | None = None
    path: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    duration_s: float | None = None
    attempts: int | None = None
    demo: bool | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class MaterializationReader:
    """Latest materialization per (asset, day), fetched once each: a day's states and their
    upstream comparisons read the same partitions many times."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._cache: dict[tuple[str, str], dg.EventLogRecord | None] = {}

    def latest(self, asset: str, day: str) -> dg.EventLogRecord | None:
        if (asset, day) not in self._cache:
            records = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day]), limit=1, ascending=False
            ).records
            self._cache[(asset, day)] = records[0] if records else None
        return self._cache[(asset, day)]


def _value(metadata: dict, key: str):
    entry = metadata.get(key)
    value = getattr(entry, "value", entry)
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def asset_state(project: Project, reader: MaterializationReader, asset: str, day: date) -> AssetState:
    partition = day.isoformat()
    current = project.code_versions.get(asset)
    record = reader.latest(asset, partition)
    if record is None:
        return AssetState(asset, partition, MISSING, ["never materialized for this day"], current_code_version=current)
    materialization = record.asset_materialization
    assert materialization is not None
    recorded = (materialization.tags or {}).get(CODE_VERSION_TAG)
    state = AssetState(
        asset,
        partition,
        MATERIALIZED,
        run_id=record.run_id or None,
        materialized_at=datetime.fromtimestamp(record.timestamp, timezone.utc).isoformat(timespec="seconds"),
        code_version=recorded,
        current_code_version=current,
        **{name: _value(materialization.metadata, key) for name, key in _FIELDS.items()},
    )
    if recorded and current and recorded != current:
        state.reasons.append(f"code version {recorded} → {current} (registry row changed)")
    spec = project.registry.by_id(asset)
    for upstream, upstream_day in upstream_partitions(spec, day, project.settings.partition_start):
        parent = reader.latest(upstream, upstream_day.isoformat())
        if parent is not None and parent.timestamp > record.timestamp:
            state.reasons.append(f"{upstream}@{upstream_day.isoformat()} materialized after it")
    if state.reasons:
        state.state = STALE
    return state


def day_states(project: Project, reader: MaterializationReader, assets: Iterable[str], day: date) -> list[AssetState]:
    return [asset_state(project, reader, asset, day) for asset in assets]
