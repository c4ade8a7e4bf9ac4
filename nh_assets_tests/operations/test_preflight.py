"""Preflight verdicts, one check at a time, then the CLI and the Dagster job end to end."""

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from nh_assets import definitions
from nh_assets.pools import apply_pool_limits
from nh_assets.operations.preflight import (
    Level,
    check_cloudflare_token,
    check_data_root,
    check_gemini_auth,
    check_gemini_cli,
    check_instance,
    check_rate_limit,
    check_wrangler,
)
from nh_assets.gemini.rate_limit import SharedRateLimit
from nh_assets.gemini.rate_limit_stores import SQLiteStore
from nh_assets.settings import REPO_ROOT, load_settings

SECRET = "AIza-preflight-secret-0042"
TOKEN = "cf-preflight-token-0042"


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "clis"
    _script(bin_dir / "gemini", 'echo "0.61.0"')
    _script(bin_dir / "wrangler", 'echo "4.42.0"')
    return bin_dir


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": "/nonexistent-home", **extra}


# --- Gemini CLI -------------------------------------------------------------------------------


@pytest.mark.fast
def test_gemini_cli_ok(bin_dir):
    verdict = check_gemini_cli(str(bin_dir / "gemini"), _env())
    assert verdict.level is Level.OK and "0.61.0" in verdict.detail


@pytest.mark.fast
@pytest.mark.parametrize(
    ("body", "timeout", "expected"),
    [
        (None, 5, "not found"),
        ("sleep 5", 0.5, "did not answer --version within"),
        ('echo "broken install" >&2; exit 3', 5, "exited 3: broken install"),
    ],
)
def test_gemini_cli_bad(tmp_path, body, timeout, expected):
    cli = tmp_path / "bad" / "gemini"
    if body is not None:
        _script(cli, body)
    started = time.monotonic()
    verdict = check_gemini_cli(str(cli), _env(), timeout_s=timeout)
    assert verdict.level is Level.FAIL and expected in verdict.detail
    assert time.monotonic() - started < 4


# --- Gemini auth ------------------------------------------------------------------------------


def _home(tmp_path: Path, settings: dict | None = None, creds: bool = False, dotenv: str | None = None) -> Path:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    if settings is not None:
        (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    if creds:
        (home / ".gemini" / "oauth_creds.json").write_text(json.dumps({"access_token": SECRET}))
    if dotenv is not None:
        (home / ".gemini" / ".env").write_text(dotenv)
    return home


@pytest.mark.fast
def test_gemini_auth_verdicts(tmp_path):
    assert check_gemini_auth(_env(), demo=True).level is Level.OK
    by_key = check_gemini_auth(_env(GEMINI_API_KEY=SECRET), demo=False)
    assert by_key.level is Level.OK and SECRET not in by_key.detail

    oauth = {"security": {"auth": {"selectedType": "oauth-personal"}}}
    logged_in = check_gemini_auth(_env(HOME=str(_home(tmp_path, oauth, creds=True))), demo=False)
    assert logged_in.level is Level.OK and SECRET not in logged_in.detail
    dotenv = check_gemini_auth(_env(HOME=str(_home(tmp_path / "b", dotenv=f"GEMINI_API_KEY={SECRET}\n"))), demo=False)
    assert dotenv.level is Level.OK and SECRET not in dotenv.detail


@pytest.mark.fast
@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"security": {"auth": {"selectedType": "oauth-personal"}}}, "no cached login"),
        ({"selectedAuthType": "gemini-api-key"}, "GEMINI_API_KEY is not set"),
        (None, "no Gemini auth found"),
    ],
)
def test_gemini_auth_bad(tmp_path, settings, expected):
    verdict = check_gemini_auth(_env(HOME=str(_home(tmp_path, settings))), demo=False)
    assert verdict.level is Level.FAIL and expected in verdict.detail


# --- wrangler, token, data root, rate limit -----------------------------------------------------


@pytest.mark.fast
def test_wrangler_verdicts(bin_dir, tmp_path):
    assert check_wrangler(str(bin_dir / "wrangler"), _env(), token_present=True).level is Level.OK
    missing = str(tmp_path / "none" / "wrangler")
    assert check_wrangler(missing, _env(), token_present=False).level is Level.WARN  # deploys skipped anyway
    fail = check_wrangler(missing, _env(), token_present=True)
    assert fail.level is Level.FAIL and "npm install -g wrangler" in fail.detail
    assert check_cloudflare_token(True).level is Level.OK
    assert check_cloudflare_token(False).level is Level.WARN


@pytest.mark.fast
def test_data_root_verdicts(tmp_path):
    assert check_data_root(tmp_path).level is Level.OK
    assert check_data_root(tmp_path / "later").level is Level.WARN
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    not_dir = check_data_root(a_file)
    assert not_dir.level is Level.FAIL and "not a directory" in not_dir.detail
    assert check_data_root(a_file / "data").level is Level.FAIL  # cannot be created under a file
    if os.geteuid() != 0:  # root writes through permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert check_data_root(locked).level is Level.FAIL


@pytest.mark.fast
def test_rate_limit_verdicts(tmp_path):
    db = tmp_path / "bucket.sqlite"
    assert check_rate_limit(db, 50, 100).level is Level.OK  # nothing recorded yet
    SharedRateLimit(SQLiteStore(db), 50, 100).close()
    earlier = int(time.time() * 1000) - 10 * 60 * 1000  # today, outside the minute window
    insert = "INSERT INTO gemini_requests (name, item_timestamp) VALUES ('gemini', ?)"
    with sqlite3.connect(db) as conn:
        conn.executemany(insert, [(earlier + i,) for i in range(85)])
    near = check_rate_limit(db, 50, 100)
    assert near.level is Level.WARN and "85/100 in the last 24 h" in near.detail
    with sqlite3.connect(db) as conn:
        conn.executemany(insert, [(earlier + 100 + i,) for i in range(15)])
    used_up = check_rate_limit(db, 50, 100)
    assert used_up.level is Level.FAIL and "NH_RATE_PER_DAY" in used_up.detail
    assert check_rate_limit(db, 50, 40).level is Level.FAIL  # inconsistent limits


# --- instance ---------------------------------------------------------------------------------


@pytest.mark.fast
def test_instance_verdicts(dagster_home):
    env = _env(DAGSTER_HOME=str(dagster_home))
    # The project's dagster.yaml (copied into dagster_home): queued runs, per-partition run limit.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        verdicts = {v.check: v for v in check_instance(instance, env)}
        assert verdicts["instance"].level is Level.OK and "Sqlite" in verdicts["instance"].detail
        assert verdicts["pools"].level is Level.WARN and "python -m nh_assets.pools apply" in verdicts["pools"].detail
        assert "default_limit 1" in verdicts["pools"].detail
        assert verdicts["run_queue"].level is Level.OK
        assert "at most 4 runs; tag limits on dagster/partition" in verdicts["run_queue"].detail
        apply_pool_limits(instance)
        pools = {v.check: v for v in check_instance(instance, env)}["pools"]
        assert pools.level is Level.OK and "gemini_sequential=1" in pools.detail and "gemini_high=8" in pools.detail
    (no_home,) = check_instance(None, _env())
    assert no_home.level is Level.WARN and "DAGSTER_HOME" in no_home.detail


# --- end to end -------------------------------------------------------------------------------


def _cli(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nh_assets.operations.preflight"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.dagster
def test_cli_exit_codes_and_no_secrets(settings_env, bin_dir, tmp_path, dagster_home):
    env = {
        **settings_env,
        "NH_GEMINI_CLI": str(bin_dir / "gemini"),
        "NH_WRANGLER_CLI": str(bin_dir / "wrangler"),
        "GEMINI_API_KEY": SECRET,
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "DAGSTER_HOME": str(dagster_home),
    }
    ok = _cli(env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.splitlines()
    assert any(line.startswith("OK    gemini_cli") for line in lines)
    assert any(line.startswith("WARN  pools") for line in lines)  # pools not applied in this fresh home
    assert lines[-1].startswith("preflight: 0 FAIL")
    assert SECRET not in ok.stdout + ok.stderr and TOKEN not in ok.stdout + ok.stderr

    bad = _cli({**env, "NH_GEMINI_CLI": str(tmp_path / "missing-gemini"), "NH_DATA_ROOT": str(bin_dir / "gemini")})
    assert bad.returncode == 1
    assert "FAIL  gemini_cli" in bad.stdout and "FAIL  data_root" in bad.stdout


@pytest.mark.dagster
def test_preflight_job_records_verdicts(settings_env, registry, instance, bin_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    good = {**settings_env, "NH_GEMINI_CLI": str(bin_dir / "gemini"), "NH_WRANGLER_CLI": str(tmp_path / "no-wrangler")}

    defs = definitions.build_definitions(load_settings(good), registry)
    result = defs.resolve_job_def("preflight").execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    (output,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    table = output.step_output_data.metadata["verdicts"].value
    assert "| OK | gemini_cli |" in table and "| WARN | wrangler |" in table and "| WARN | cloudflare |" in table
    assert SECRET not in "\n".join(str(e) for e in instance.all_logs(result.run_id))

    bad = load_settings({**good, "NH_GEMINI_CLI": str(tmp_path / "no-gemini")})
    defs = definitions.build_definitions(bad, registry)
    failed = defs.resolve_job_def("preflight").execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    data = failure.step_failure_data.user_failure_data
    assert data.description.startswith("preflight: 1 FAIL — gemini_cli:")
    assert "| FAIL | gemini_cli |" in data.metadata["verdicts"].value
