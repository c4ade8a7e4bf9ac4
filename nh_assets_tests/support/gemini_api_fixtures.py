"""Pytest fixtures for running the REAL ``@google/gemini-cli`` against the
project's fake Gemini API (:mod:`nh_assets.demo.api`).

Register with ``pytest_plugins = ["nh_assets_tests.support.gemini_api_fixtures"]``.

Every settings key / env var used below was checked in the 0.61.0 CLI bundle
(``node_modules/@google/gemini-cli/bundle``), not guessed:

* ``security.auth.selectedType = "gemini-api-key"`` - use GEMINI_API_KEY auth.
* ``privacy.usageStatisticsEnabled = false`` - otherwise the CLI resolves and
  posts usage logs to ``play.googleapis.com`` (seen with strace).
* ``general.enableAutoUpdate`` / ``general.enableAutoUpdateNotification`` =
  false - no npm update check.
* ``telemetry.enabled = false`` (+ env ``GEMINI_TELEMETRY_ENABLED=false``) -
  OpenTelemetry off (already the default; made explicit).
* ``tools.useRipgrep = false`` - silences "Ripgrep is not available" on stderr.
* ``ui.showCompatibilityWarnings = false`` - silences the "256-color support
  not detected" warning on stderr.
* ``advanced.ignoreLocalEnv = true`` - do not load ``.env`` files found by
  walking up from the cwd (only ``$HOME/.env`` would still be read).
* env ``GEMINI_CLI_TRUST_WORKSPACE=true`` - needed: headless runs in an
  untrusted folder exit 55 (same effect as ``--skip-trust``).
* env ``GEMINI_CLI_NO_RELAUNCH=true`` - skip the self-relaunch into a second
  node process (saves ~1 s per call).
* env ``GEMINI_CLI_HOME`` / ``HOME`` - the CLI writes ``.gemini/{projects.json,
  installation_id,history/,tmp/<project>/chats/...}`` there.
* env ``TMPDIR`` - on API errors the CLI writes
  ``$TMPDIR/gemini-client-error-*.json`` reports.
* env ``NO_COLOR=1`` - no ANSI escapes around fatal error messages.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.gemini.cli_home import HEADLESS_SETTINGS as CLI_SETTINGS
from nh_assets.settings import REPO_ROOT

GEMINI_CLI = REPO_ROOT / "node_modules" / ".bin" / "gemini"
FAKE_API_KEY = "fake-key-for-tests"

def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# No tool is declared unless a test asks for one (``tools.core``): with the CLI's default tools the
# fake model, like a real one, answers a research question with a google_web_search call.
GEMINI_CLI_TEST_SETTINGS: dict[str, Any] = _merge(CLI_SETTINGS, {"tools": {"core": []}})


GeminiEnvFactory = Callable[..., dict[str, str]]


def gemini_env(
    root: Path,
    base_url: str,
    *,
    api_key: str | None = FAKE_API_KEY,
    trust: bool = True,
    settings: dict[str, Any] | None = None,
    name: str = "gemini-home",
) -> dict[str, str]:
    """A complete, hermetic environment for one gemini CLI subprocess, its home under ``root``.

    ``api_key=None`` omits GEMINI_API_KEY, ``trust=False`` omits GEMINI_CLI_TRUST_WORKSPACE,
    ``settings`` is deep-merged into the settings.json above. The result is meant to be passed as
    ``env=`` as is (NOT merged with ``os.environ``, so a developer's real GEMINI_API_KEY /
    GOOGLE_* / proxy variables never leak in).
    """
    home = root / name
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    tmpdir = root / f"{name}-tmp"
    tmpdir.mkdir(exist_ok=True)
    merged = _merge(GEMINI_CLI_TEST_SETTINGS, settings or {})
    (home / ".gemini" / "settings.json").write_text(json.dumps(merged, indent=2), encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "GEMINI_CLI_HOME": str(home),
        "TMPDIR": str(tmpdir),
        "GOOGLE_GEMINI_BASE_URL": base_url,
        "GEMINI_CLI_NO_RELAUNCH": "true",
        "GEMINI_TELEMETRY_ENABLED": "false",
        "NO_COLOR": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    for var in ("LANG", "LC_ALL", "TZ"):
        if var in os.environ:
            env[var] = os.environ[var]
    if api_key is not None:
        env["GEMINI_API_KEY"] = api_key
    if trust:
        env["GEMINI_CLI_TRUST_WORKSPACE"] = "true"
    return env


@pytest.fixture
def gemini_env_factory(tmp_path: Path) -> GeminiEnvFactory:
    """``factory(base_url, *, api_key=FAKE_API_KEY, trust=True, settings=None, name="gemini-home")``:
    :func:`gemini_env` with its home under the test's ``tmp_path``."""
    return functools.partial(gemini_env, tmp_path)


@pytest.fixture
def fake_gemini_api(tmp_path: Path) -> Iterator[FakeGeminiAPI]:
    """A running :class:`FakeGeminiAPI`; requests are also logged to
    ``tmp_path / "fake_gemini_requests.jsonl"``."""
    api = FakeGeminiAPI(log_path=tmp_path / "fake_gemini_requests.jsonl").start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="session")
def gemini_cli_path() -> str:
    """Absolute path of the repo's pinned gemini CLI (``npm ci`` installs it)."""
    if not (GEMINI_CLI.is_file() and os.access(GEMINI_CLI, os.X_OK)):
        pytest.fail("real gemini CLI missing: run `npm ci` at the repo root", pytrace=False)
    return str(GEMINI_CLI)


@pytest.fixture
def gemini_api_env(
    tmp_path: Path, fake_gemini_api: FakeGeminiAPI, gemini_env_factory: GeminiEnvFactory
) -> dict[str, str]:
    """Env for the real CLI talking to ``fake_gemini_api`` (see module doc)."""
    return gemini_env_factory(fake_gemini_api.base_url)
