"""A pytest plugin for the tier check: after collection, writes each test's tier markers as JSON.

Loaded with ``-p nh_assets_tests.support.tier_report`` by ``project/test_tiers.py`` in a separate
``pytest --collect-only``, so the check sees every collected test whatever ``-m`` the suite ran with.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from nh_assets.settings import REPO_ROOT

REPORT_ENV = "NH_TEST_TIER_REPORT"


def tiers() -> list[str]:
    """The tier names, as pyproject.toml registers them (``name: description``)."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [entry.split(":", 1)[0].strip() for entry in config["tool"]["pytest"]["ini_options"]["markers"]]


def pytest_collection_finish(session) -> None:
    names = set(tiers())
    found = {item.nodeid: sorted({m.name for m in item.iter_markers()} & names) for item in session.items}
    Path(os.environ[REPORT_ENV]).write_text(json.dumps(found), encoding="utf-8")
