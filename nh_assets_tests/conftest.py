"""Shared fixtures: temporary Dagster homes, data roots and the fake ``gemini`` executable.

Everything a test writes lives under ``tmp_path``; nothing touches the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.child_env import PASSTHROUGH_ENV
from nh_assets.registry import load_registry
from nh_assets.settings import REPO_ROOT, load_settings
from nh_assets_tests.support.fakes import FAKES_PASSTHROUGH, ONESHOT_FOR_THE_FAKE_CLI, install_fake, shared_fake_api

# Nothing in the tests may head for Google: an endpoint a test forgot to set points at a closed
# loopback port instead, so the test fails at once and no request leaves the machine.
os.environ.setdefault("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")
os.environ.setdefault("CODE_ASSIST_ENDPOINT", "http://127.0.0.1:9")


# The fakes read their scenario from FAKE_* variables, and a child sees only allow-listed ones
# (nh_assets.child_env): the tests name theirs the way an operator names a site's own variables.
os.environ.setdefault(PASSTHROUGH_ENV, FAKES_PASSTHROUGH)

pytest_plugins = [
    "nh_assets_tests.support.gemini_api_fixtures",
    "nh_assets_tests.support.browser",
    "nh_assets_tests.support.postgres_fixtures",
]

# The slowest tiers first: pytest-xdist hands test files to its workers in collection order
# (scripts/test.sh), so the minute-long runs start at once and the second-long ones fill the gaps,
# and the workers finish together instead of one worker starting a whole-day run when the others
# are done.
SLOWEST_FIRST = ("real_cli", "browser", "services", "dagster", "fast")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files by their slowest tier; a file's own tests keep their order."""

    def rank(item: pytest.Item) -> int:
        return next((i for i, tier in enumerate(SLOWEST_FIRST) if item.get_closest_marker(tier)), len(SLOWEST_FIRST))

    file_rank: dict[Path, int] = {}
    for item in items:
        file_rank[item.path] = min(file_rank.get(item.path, len(SLOWEST_FIRST)), rank(item))
    items.sort(key=lambda item: file_rank[item.path])


@pytest.fixture
def fake_cli(tmp_path: Path) -> Path:
    """An executable named ``gemini`` that runs the fake CLI with this interpreter."""
    return install_fake(tmp_path / "bin" / "gemini")


@pytest.fixture
def fake_cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Points the fake CLI's log and state at tmp_path; returns those paths."""
    paths = {"log": tmp_path / "fake_cli.jsonl", "state": tmp_path / "fake_cli_state"}
    monkeypatch.setenv("FAKE_GEMINI_LOG", str(paths["log"]))
    monkeypatch.setenv("FAKE_GEMINI_STATE", str(paths["state"]))
    return paths


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster_home" / "dagster.yaml").read_text())
    return home


@pytest.fixture
def instance(dagster_home: Path):
    with dg.instance_for_test(temp_dir=str(dagster_home)) as inst:
        yield inst


@pytest.fixture
def settings_env(tmp_path: Path, dagster_home: Path, fake_cli: Path) -> dict[str, str]:
    """Environment for a code location that uses the fake CLI and temporary directories."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "NH_DATA_ROOT": str(tmp_path / "data"),
        "NH_GEMINI_CLI": str(fake_cli),
        "NH_PARTITION_START": "2026-11-01",
        "NH_TIMEZONE": "UTC",
        "NH_DEMO": "0",
        "NH_GEMINI_API_URL": shared_fake_api().base_url,
        **ONESHOT_FOR_THE_FAKE_CLI,
    }


@pytest.fixture
def settings(settings_env):
    return load_settings(settings_env)


@pytest.fixture(scope="session")
def registry():
    return load_registry(REPO_ROOT / "registry" / "prompts.tsv")
