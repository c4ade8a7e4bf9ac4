"""Where artifacts live: the NeuroHelix data layout under one root (``NH_DATA_ROOT``).

The relative paths (``outputs/daily/DATE/<prompt>.md``, ``reports/daily_report_DATE.md`` …) come
from the registry and stay those of the old pipeline, so the static site and any existing tree
keep working; only the root moves.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field


class DataLayoutResource(dg.ConfigurableResource):
    root: str = Field(description="Absolute root of the NeuroHelix data tree (NH_DATA_ROOT).")

    @property
    def root_path(self) -> Path:
        return Path(self.root)
