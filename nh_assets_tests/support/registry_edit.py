"""The shipped registry with some rows changed, for tests that need a day shaped otherwise.

Tests edit a copy under ``tmp_path`` through the registry's own header, so a column moved or added
in ``registry/prompts.tsv`` moves with them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from nh_assets.settings import REPO_ROOT

Row = dict[str, str]


def edited_registry(path: Path, edit: Callable[[Row], None], *, new_columns: tuple[str, ...] = ()) -> Path:
    """Write the shipped registry to ``path`` with ``edit`` applied to each row (a dict by column,
    ``new_columns`` added empty first); comments and blank lines are kept as they are."""
    lines = (REPO_ROOT / "registry" / "prompts.tsv").read_text().split("\n")
    header = next(line.split("\t") for line in lines if line and not line.startswith("#"))
    columns = [*header, *new_columns]
    out = []
    for line in lines:
        cells = line.split("\t")
        if not line or line.startswith("#"):
            out.append(line)
        elif cells == header:
            out.append("\t".join(columns))
        else:
            row = dict(zip(columns, [*cells, *([""] * len(new_columns))]))
            edit(row)
            out.append("\t".join(row[column] for column in columns))
    path.write_text("\n".join(out))
    return path


def latest_metadata(instance: dg.DagsterInstance, key: str, day: str) -> dict:
    """The metadata of ``key``'s latest materialization of ``day``."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[day]), limit=1
    ).records
    assert records, f"{key} has no materialization for {day}"
    return records[0].asset_materialization.metadata


SPENT_MODEL, FALLBACK_MODEL = "gemini-2.5-flash", "gemini-2.5-flash-lite"
# Research rows left without a fallback: their failure is the honest one, named and not retried.
NO_FALLBACK = frozenset({"developer_tools", "prompt_engineering", "startup_radar"})


def registry_with_fallbacks(path: Path) -> Path:
    """The shipped registry with a fallback_model column: ``FALLBACK_MODEL`` for every
    ``SPENT_MODEL`` row but ``NO_FALLBACK``, as an operator on the free tier would set it."""

    def fall_back(row: Row) -> None:
        if row["model"] == SPENT_MODEL and row["prompt_id"] not in NO_FALLBACK:
            row["fallback_model"] = FALLBACK_MODEL

    return edited_registry(path, fall_back, new_columns=("fallback_model",))
