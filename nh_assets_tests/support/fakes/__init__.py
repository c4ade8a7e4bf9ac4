"""Hand-written fakes of the external programs, and the one recipe that puts them on disk.

A fake is a Python module with ``main()``; ``install_fake`` writes an executable that runs it with
this interpreter, so the code under test starts it exactly as it starts the real program.
"""

from __future__ import annotations

import stat
import sys
import threading
from pathlib import Path

from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.gemini.config import GeminiConfig
from nh_assets.settings import REPO_ROOT, load_settings

FAKE_GEMINI = "nh_assets_tests.support.fakes.fake_gemini_cli"
FAKE_WRANGLER = "nh_assets_tests.support.fakes.fake_wrangler"
# What a child must see of the fakes' own variables (NH_CHILD_ENV_PASSTHROUGH, see nh_assets.child_env).
FAKES_PASSTHROUGH = "FAKE_GEMINI_*,FAKE_WRANGLER_*"
# The Python fake ``gemini`` speaks the headless contract only, not ACP: every environment that runs
# it names the one-shot transport through this, and the default transport runs the real CLI.
ONESHOT_FOR_THE_FAKE_CLI = {"NH_GEMINI_TRANSPORT": "oneshot"}


def install_fake(path: Path, module: str = FAKE_GEMINI, *, root: Path = REPO_ROOT) -> Path:
    """The executable loads the fake's file alone, not through this package, whose harness imports
    (Dagster, the settings) would cost every fake call a second of start-up the real CLI does not
    have, and which benchmarks would count as the pipeline's own overhead. ``root`` is the source
    tree the fake comes from (another checkout's, for a benchmark that runs an earlier version of
    the code beside this one)."""
    source = root.joinpath(*module.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!{sys.executable}\n"
        "import importlib.util, sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        f"spec = importlib.util.spec_from_file_location({module!r}, {str(source)!r})\n"
        "fake = sys.modules[spec.name] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(fake)\n"
        "sys.exit(fake.main())\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


_shared_api: FakeGeminiAPI | None = None
_shared_lock = threading.Lock()


def shared_fake_api() -> FakeGeminiAPI:
    """One fake Gemini API per test process: the upstream of the rate gate for the fake CLI's
    requests, so no test ever sends a request towards Google. Tests that read the API's request
    log start their own instead."""
    global _shared_api
    with _shared_lock:
        if _shared_api is None:
            _shared_api = FakeGeminiAPI().start()
        return _shared_api


INSTANCE_YAML = {
    "sqlite": REPO_ROOT / "dagster_home" / "dagster.yaml",
    "postgres": REPO_ROOT / "dagster_home" / "postgres" / "dagster.yaml",  # needs NH_POSTGRES_URL
}


def pipeline_env(base: Path, instance: str = "sqlite", **extra: str) -> dict[str, str]:
    """Settings for a code location under ``base``: a DAGSTER_HOME holding one of the repo's
    dagster.yaml files, a data root, and the fake ``gemini``; ``extra`` adds or overrides variables."""
    home = base / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML[instance].read_text())
    return {
        "DAGSTER_HOME": str(home),
        "NH_DATA_ROOT": str(base / "data"),
        "NH_GEMINI_CLI": str(install_fake(base / "bin" / "gemini")),
        "NH_PARTITION_START": "2026-11-01",
        "NH_TIMEZONE": "UTC",
        "NH_DEMO": "0",
        "NH_GEMINI_API_URL": shared_fake_api().base_url,
        "NH_CHILD_ENV_PASSTHROUGH": FAKES_PASSTHROUGH,
        **ONESHOT_FOR_THE_FAKE_CLI,
        **extra,
    }


def gemini_config(dagster_home: Path, **fields: object) -> GeminiConfig:
    """The Gemini configuration the operator's settings give with DAGSTER_HOME at ``dagster_home``,
    with ``fields`` set directly; the transport is the settings' default unless a test names one."""
    return GeminiConfig.from_settings(load_settings({"DAGSTER_HOME": str(dagster_home)}), **fields)
