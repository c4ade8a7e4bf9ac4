"""The Gemini resource against the fake ``gemini`` executable: contract, timeouts, classification."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.gemini.call import ModelCall
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.gemini.resource import GeminiCLIResource
from nh_assets.process_stat import process_stat
from nh_assets_tests.support.fakes import gemini_config, shared_fake_api

pytestmark = pytest.mark.fast

PROMPT = "NEUROHELIX PROMPT: ai_ecosystem_watch\nDATE: 2026-11-20\nRESPONSE FORMAT: markdown\n\nSummarise."


def _resource(tmp_path: Path, cli: Path | str, **overrides) -> GeminiCLIResource:
    """One-shot: the fake ``gemini`` speaks the headless contract only (ACP: test_acp_pool)."""
    fields = dict(
        gemini_cli=str(cli),
        gemini_transport="oneshot",
        rate_limit_db=str(tmp_path / "rate.sqlite"),
        workdir_root=str(tmp_path / "workdirs"),
        kill_grace_s=1.0,
        gemini_api_url=shared_fake_api().base_url,
    )
    return GeminiCLIResource(config=gemini_config(tmp_path, **{**fields, **overrides}))


def _generate(resource: GeminiCLIResource, prompt: str = PROMPT, **call):
    call = ModelCall(**{"model": "gemini-2.5-flash", "timeout_s": 20, **call})
    with dg.build_resources({"gemini": resource}) as resources, dg.build_asset_context() as context:
        return resources.gemini.generate(context, prompt=prompt, call=call)


def _log(paths) -> list[dict]:
    return [json.loads(line) for line in paths["log"].read_text().splitlines()]


def test_success_parses_response_and_tokens(tmp_path, fake_cli, fake_cli_env):
    result = _generate(_resource(tmp_path, fake_cli))
    (call,) = _log(fake_cli_env)
    assert result.response.startswith("# ai_ecosystem_watch")
    assert result.input_tokens > 0 and result.output_tokens > 0
    assert result.total_tokens == result.input_tokens + result.output_tokens
    assert call["output"] == "json" and call["model"] == "gemini-2.5-flash"
    assert call["prompt"] == PROMPT
    assert call["stdin"] == ""
    assert call["skip_trust"] is True
    assert call["approval_mode"] == "default"
    # Its own fresh working directory holding only the call's settings, removed afterwards.
    assert call["cwd_entries"] == [".gemini"] and Path(call["cwd"]).parent == tmp_path / "workdirs"
    assert not Path(call["cwd"]).exists()
    # One answered call, one request through the rate gate, reconciled with the CLI's stats.
    assert result.gate.total == 1 and dict(result.gate.requests) == {"gemini-2.5-flash": 1}
    assert result.warnings == []


def test_the_rows_tools_temperature_and_thinking_reach_the_cli_settings(tmp_path, fake_cli, fake_cli_env):
    _generate(_resource(tmp_path, fake_cli), tools=("google_web_search",), temperature=0.3, thinking_budget=0)
    (call,) = _log(fake_cli_env)
    settings = call["workspace_settings"]
    assert settings["tools"]["core"] == ["google_web_search"]
    (override,) = settings["modelConfigs"]["customOverrides"]
    assert override["match"] == {"model": "gemini-2.5-flash"}
    assert override["modelConfig"]["generateContentConfig"] == {"temperature": 0.3, "thinkingConfig": {"thinkingBudget": 0}}
    _generate(_resource(tmp_path, fake_cli), tools=())
    assert _log(fake_cli_env)[1]["workspace_settings"]["tools"]["core"] == []


def test_every_api_request_of_a_call_takes_a_rate_permit_and_is_cross_checked(tmp_path, fake_cli, fake_cli_env, monkeypatch):
    monkeypatch.setenv("FAKE_GEMINI_API_REQUESTS", "3")
    result = _generate(_resource(tmp_path, fake_cli))
    assert result.gate.total == 3 and result.warnings == []
    assert result.metadata()["gemini.api_requests"].value == 3
    # The usage is what the three answers said at the gate, as on the warm transport.
    assert result.usage["gemini-2.5-flash"].requests == 3
    assert result.metadata()["gemini.models"].value["gemini-2.5-flash"]["gate_requests"] == 3
    from nh_assets.gemini.rate_limit_stores import SQLiteStore
    from nh_assets.gemini.rate_limit import SharedRateLimit

    bucket = SharedRateLimit(SQLiteStore(tmp_path / "rate.sqlite"), 50, 1000)
    try:
        assert bucket.usage()["last_minute"] == 3
    finally:
        bucket.close()


def test_a_cli_that_reports_other_usage_than_the_gate_read_is_warned_about(tmp_path, fake_cli_env):
    """The gate's figures are the call's; the CLI's own stats are only checked against them."""
    stats = {"models": {"gemini-2.5-flash": {"api": {"totalRequests": 1}, "tokens": {"candidates": 5}}}}
    cli = tmp_path / "gemini"
    cli.write_text(f"#!/bin/sh\necho '{json.dumps({'response': 'answer', 'stats': stats})}'\n")
    cli.chmod(0o755)
    result = _generate(_resource(tmp_path, cli))  # it answers without sending any request
    assert result.response == "answer" and result.usage == {} and result.gate.total == 0
    assert result.warnings == [
        "gemini-2.5-flash: 0 request(s) crossed the rate gate, the CLI reports 1",
        "gemini-2.5-flash: the CLI reports 5 output tokens, the gate read 0",
    ]


def test_a_day_cap_reached_inside_a_call_stops_it_at_the_gate(tmp_path, fake_cli, fake_cli_env, monkeypatch):
    from nh_assets.gemini.rate_limit import SharedRateLimit
    from nh_assets.gemini.rate_limit_stores import SQLiteStore

    # One request made earlier today (outside the minute window) by some other process.
    SharedRateLimit(SQLiteStore(tmp_path / "rate.sqlite"), per_minute=5, per_day=6).close()
    earlier = int(time.time() * 1000) - 10 * 60 * 1000
    with sqlite3.connect(tmp_path / "rate.sqlite") as conn:
        conn.executemany("INSERT INTO gemini_requests (name, item_timestamp) VALUES ('gemini', ?)", [(earlier,)] * 4)
    monkeypatch.setenv("FAKE_GEMINI_API_REQUESTS", "3")
    with pytest.raises(GeminiFailure) as info:
        _generate(_resource(tmp_path, fake_cli, rate_per_minute=5, rate_per_day=6))
    # Two of the call's requests fitted in the day; the third was refused at the gate.
    assert [call["outcome"] for call in _log(fake_cli_env)] == ["api_error"]
    assert info.value.kind is FailureKind.DAILY_CAP and not info.value.kind.retryable
    assert "NH_RATE_PER_DAY" in str(info.value)


def test_yolo_only_when_the_row_asks(tmp_path, fake_cli, fake_cli_env):
    _generate(_resource(tmp_path, fake_cli), approval_mode="yolo")
    assert _log(fake_cli_env)[0]["approval_mode"] == "yolo"


def test_timeout_kills_the_whole_process_group(tmp_path, fake_cli, fake_cli_env, monkeypatch):
    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", "hang")
    started = time.monotonic()
    with pytest.raises(GeminiFailure) as info:
        _generate(_resource(tmp_path, fake_cli), timeout_s=3)
    assert info.value.kind is FailureKind.TIMEOUT
    assert time.monotonic() - started < 30
    cli_pid, child_pid = map(int, (fake_cli_env["state"] / "hang_pids").read_text().split())
    assert not _alive(cli_pid) and not _alive(child_pid)


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (killed, not yet reaped by PID 1) counts as dead."""
    stat = process_stat(pid)
    return stat is not None and not stat.exited


@pytest.mark.parametrize(
    ("scenario", "kind", "retryable"),
    [
        ("auth", FailureKind.AUTH, False),
        ("untrusted", FailureKind.UNTRUSTED_FOLDER, False),
        ("rate_limit", FailureKind.RATE_LIMIT, True),
        ("invalid_json", FailureKind.BAD_OUTPUT, True),
        ("fail_n", FailureKind.OTHER, True),
    ],
)
def test_failures_are_classified(tmp_path, fake_cli, fake_cli_env, monkeypatch, scenario, kind, retryable):
    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", scenario)
    with pytest.raises(GeminiFailure) as info:
        _generate(_resource(tmp_path, fake_cli))
    assert info.value.kind is kind
    assert info.value.kind.retryable is retryable
    message = str(info.value)
    assert "\n" not in message and "fix:" in message


def test_missing_cli_names_the_fix(tmp_path):
    with pytest.raises(GeminiFailure) as info:
        _generate(_resource(tmp_path, tmp_path / "no-such-gemini"))
    assert info.value.kind is FailureKind.CLI_MISSING
    assert "NH_GEMINI_CLI" in str(info.value) and "NH_DEMO=1" in str(info.value)


def test_secret_never_reaches_the_failure_message(tmp_path, fake_cli, fake_cli_env, monkeypatch):
    secret = "AIzaSy-very-secret-value-123"
    monkeypatch.setenv("GEMINI_API_KEY", secret)
    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", "leak_secret")
    with pytest.raises(GeminiFailure) as info:
        _generate(_resource(tmp_path, fake_cli))
    assert secret not in str(info.value)
    assert "***" in str(info.value)


def test_the_cli_never_receives_the_pipelines_database_or_broker_urls(tmp_path, fake_cli, fake_cli_env, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSy-passed-through")
    monkeypatch.setenv("NH_POSTGRES_URL", "postgresql+psycopg2://nh:pw@db/nh")
    monkeypatch.setenv("NH_CELERY_BROKER", "redis://:pw@broker:6379/0")
    _generate(_resource(tmp_path, fake_cli))
    (call,) = _log(fake_cli_env)
    assert "GEMINI_API_KEY" in call["env_names"]
    assert not {"NH_POSTGRES_URL", "NH_CELERY_BROKER"} & set(call["env_names"])


def test_backoff_grows_and_429_waits_longer(tmp_path, fake_cli):
    resource = _resource(tmp_path, fake_cli, retry_base_s=1.0, rate_limit_backoff_s=60.0)
    other = GeminiFailure(FailureKind.OTHER, "x")
    limited = GeminiFailure(FailureKind.RATE_LIMIT, "x")
    first, third = resource.backoff_seconds(other, 0), resource.backoff_seconds(other, 2)
    assert 1.0 <= first <= 1.5 and 4.0 <= third <= 6.0
    assert resource.backoff_seconds(limited, 0) >= 60.0


REAL_AUTH_STDERR = """{
  "session_id": "b47df000",
  "error": {
    "type": "Error",
    "message": "Please set an Auth method in your /h/.gemini/settings.json or specify one of the following environment variables before running: GEMINI_API_KEY, GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_GENAI_USE_GCA",
    "code": 41
  }
}"""


# 0.61.0 headless with an expired Google login it could not refresh (NO_BROWSER=true): a stack trace, then the message.
REAL_LOGIN_STDERR = """Error authenticating: FatalAuthenticationError: Manual authorization is required but the current session is non-interactive. Please run the Gemini CLI in an interactive terminal to log in, provide a GEMINI_API_KEY, or ensure Application Default Credentials are configured.
    at initOauthClient (file:///n/node_modules/@google/gemini-cli/bundle/chunk-JDPZ4CE3.js:279252:13)
    at async Config.refreshAuth (file:///n/node_modules/@google/gemini-cli/bundle/chunk-JDPZ4CE3.js:379274:29)
  exitCode: 41
}
Manual authorization is required but the current session is non-interactive. Please run the Gemini CLI in an interactive terminal to log in, provide a GEMINI_API_KEY, or ensure Application Default Credentials are configured."""


def test_an_expired_google_login_is_named_with_its_fix_in_one_line():
    from nh_assets.gemini.failures import classify_exit

    failure = classify_exit(41, "", REAL_LOGIN_STDERR)
    assert failure.kind is FailureKind.AUTH
    assert "Google login" in failure.cause and "\n" not in failure.cause and "initOauthClient" not in failure.cause
    assert "log in again" in str(failure)


@pytest.mark.parametrize(
    ("returncode", "stdout", "stderr", "kind"),
    [
        (41, "", REAL_AUTH_STDERR, FailureKind.AUTH),
        (173, "", "Attempt 1 failed with status 429. Retrying\nstatus: 429\n", FailureKind.RATE_LIMIT),
        (55, "", "Gemini CLI is not running in a trusted directory", FailureKind.UNTRUSTED_FOLDER),
        (1, "", "[API Error: models/gemini-9 is not found for API version v1beta] 404 NOT_FOUND", FailureKind.CONFIG),
        (1, "", "TypeError: fetch failed", FailureKind.OTHER),
    ],
)
def test_classification_of_real_cli_exits(returncode, stdout, stderr, kind):
    from nh_assets.gemini.failures import classify_exit

    failure = classify_exit(returncode, stdout, stderr)
    assert failure.kind is kind
    if kind is FailureKind.AUTH:
        assert failure.cause.startswith("exit 41: Please set an Auth method")
