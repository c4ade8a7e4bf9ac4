"""The Gemini resource against the fake ``gemini`` executable: contract, timeouts, classification."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.gemini.resource import GeminiCLIResource
from nh_assets.gemini.failures import FailureKind, GeminiFailure

PROMPT = "NEUROHELIX PROMPT: ai_ecosystem_watch\nDATE: 2026-11-20\nRESPONSE FORMAT: markdown\n\nSummarise."


def _resource(tmp_path: Path, cli: Path | str, **overrides) -> GeminiCLIResource:
    fields = dict(
        cli_path=str(cli),
        rate_limit_db=str(tmp_path / "rate.sqlite"),
        workdir_root=str(tmp_path / "workdirs"),
        kill_grace_s=1.0,
    )
    fields.update(overrides)
    return GeminiCLIResource(**fields)


def _generate(resource: GeminiCLIResource, **kwargs):
    args = dict(prompt=PROMPT, model="gemini-2.5-flash", timeout_s=20)
    args.update(kwargs)
    with dg.build_resources({"gemini": resource}) as resources, dg.build_asset_context() as context:
        return resources.gemini.generate(context, **args)


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
    # Its own fresh, empty working directory, removed afterwards.
    assert call["cwd_entries"] == [] and Path(call["cwd"]).parent == tmp_path / "workdirs"
    assert not Path(call["cwd"]).exists()


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
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in {"Z", "X"}


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
