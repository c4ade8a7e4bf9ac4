"""The warm CLI service with the REAL Gemini CLI in ACP mode against the project's fake Gemini API.

Each test gets its own warm CLI service (the service is keyed by the bucket's folder, here under ``tmp_path``),
which ends with the test process or after its idle time. The whole day through the service is
``test_real_cli_pipeline.test_full_day_through_the_real_cli``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.gemini.call import ModelCall
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.gemini.resource import GeminiCLIResource
from nh_assets.process_stat import process_stat
from nh_assets.settings import REPO_ROOT
from nh_assets_tests.support.fakes import gemini_config

pytestmark = pytest.mark.real_cli

SYSTEM_PROMPT = REPO_ROOT / "registry" / "system_prompt.md"


def _prompt(prompt_id: str) -> str:
    return f"NEUROHELIX PROMPT: {prompt_id}\nDATE: 2026-11-20\nRESPONSE FORMAT: markdown\n\nSummarise."


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "fake-key-for-tests")
    with FakeGeminiAPI(log_path=tmp_path / "api.jsonl") as server:
        yield server


def _resource(tmp_path: Path, cli: str, api: FakeGeminiAPI, **overrides) -> GeminiCLIResource:
    """The default transport, acp (the settings' default: this test names none)."""
    fields = dict(
        gemini_cli=cli, rate_limit_db=str(tmp_path / "rate.sqlite"), workdir_root=str(tmp_path / "workdirs"),
        gemini_api_url=api.base_url, system_prompt=str(SYSTEM_PROMPT), kill_grace_s=2.0, warm_cli_idle_s=60.0,
    )
    return GeminiCLIResource(config=gemini_config(tmp_path, **{**fields, **overrides}))


def _generate(resource: GeminiCLIResource, prompt_id: str = "ai_ecosystem_watch", **call):
    call = ModelCall(**{"model": "gemini-2.5-flash", "timeout_s": 60, **call})
    with dg.build_resources({"gemini": resource}) as resources, dg.build_asset_context() as context:
        return resources.gemini.generate(context, prompt=_prompt(prompt_id), call=call)


def _warm_cli_processes(tmp_path: Path) -> tuple[list[int], list[int]]:
    """(service pids, warm CLI pids) of this test's service, read from /proc."""
    service_dir = str(tmp_path / "gemini_warm_cli")
    services, parents = [], {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = process_stat(int(entry))
            if stat is None or stat.exited:
                continue
            parents[int(entry)] = (stat.parent, cmdline)
            if b"nh_assets.gemini.warm_cli.service" in cmdline and os.readlink(f"/proc/{entry}/cwd") == service_dir:
                services.append(int(entry))
        except OSError:
            continue
    clis = [pid for pid, (ppid, cmdline) in parents.items() if ppid in services and b"--acp" in cmdline]
    return services, clis


def _api_calls(api: FakeGeminiAPI, prompt_id: str) -> list[dict]:
    return [r for r in api.requests if f"NEUROHELIX PROMPT: {prompt_id}\n" in r["prompt"] or r["kind"] == "search"]


@pytest.mark.parametrize("tools", [(), ("google_web_search",)], ids=["no-tools", "search-loop"])
def test_a_warm_cli_answers_as_the_one_shot_call_does(tmp_path, gemini_cli_path, api, tools):
    call = dict(tools=tools, temperature=0.3)
    warm = _generate(_resource(tmp_path, gemini_cli_path, api), **call)
    seen = len(api.requests)
    oneshot = _generate(_resource(tmp_path, gemini_cli_path, api, gemini_transport="oneshot"), **call)
    assert (warm.transport, oneshot.transport) == ("acp", "oneshot")
    assert warm.response == oneshot.response and "# ai_ecosystem_watch" in warm.response
    assert warm.gate.requests == oneshot.gate.requests
    warm_requests, oneshot_requests = api.requests[:seen], api.requests[seen:]
    # Per model, the same requests, output and thinking tokens, and the input tokens the API counted.
    assert set(warm.usage) == set(oneshot.usage)
    for model, usage in warm.usage.items():
        other = oneshot.usage[model]
        assert (usage.requests, usage.output_tokens, usage.thinking_tokens) == (other.requests, other.output_tokens, other.thinking_tokens)
        assert usage.input_tokens == sum(r["usage"]["promptTokenCount"] for r in warm_requests if r["model"] == model)
        assert other.input_tokens == sum(r["usage"]["promptTokenCount"] for r in oneshot_requests if r["model"] == model)
    # Each request's input differs only by the folder paths the CLI's session context names (the service's
    # CLI home is deeper than the one-shot's): a few dozen bytes, and the tokens those bytes make.
    for a, b in zip(warm_requests, oneshot_requests, strict=True):
        extra = abs(a["bytes"] - b["bytes"])
        assert extra <= 64
        assert abs(a["usage"]["promptTokenCount"] - b["usage"]["promptTokenCount"]) <= -(-extra // 4) + 1
    assert set(warm.metadata()) == set(oneshot.metadata())
    assert warm.metadata()["gemini.transport"].value == "acp" and warm.warnings == []
    # What the API was sent: the row's tools, temperature and our system prompt, on both paths.
    for key in ("tools", "temperature", "system_chars", "kind"):
        assert [r[key] for r in warm_requests] == [r[key] for r in oneshot_requests], key
    assert {r["temperature"] for r in warm_requests if r["kind"] != "search"} == {0.3}


def test_concurrent_prompts_each_get_a_fresh_session_within_the_process_cap(tmp_path, gemini_cli_path, api):
    api.latency_s = 0.5
    resource = _resource(tmp_path, gemini_cli_path, api, max_gemini_processes=2)
    ids = [f"prompt_{n}" for n in range(5)]
    results: dict[str, object] = {}

    def ask(prompt_id: str) -> None:
        try:
            results[prompt_id] = _generate(resource, prompt_id, model="gemini-2.5-flash-lite" if prompt_id[-1] in "13" else "gemini-2.5-flash")
        except Exception as exc:  # reported below
            results[prompt_id] = exc

    threads = [threading.Thread(target=ask, args=(prompt_id,)) for prompt_id in ids]
    for thread in threads:
        thread.start()
    peak = 0
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, len(_warm_cli_processes(tmp_path)[1]))
        time.sleep(0.1)
    for prompt_id in ids:
        result = results[prompt_id]
        assert not isinstance(result, Exception), result
        assert result.transport == "acp" and result.response.startswith(f"# {prompt_id} ")
    services, clis = _warm_cli_processes(tmp_path)
    assert len(services) == 1 and 1 <= len(clis) <= 2 and peak <= 2
    # No conversation carries over: every request holds exactly one prompt, on the row's model.
    for record in api.requests:
        assert record["prompt"].count("NEUROHELIX PROMPT:") == 1
        prompt_id = record["prompt"].split("NEUROHELIX PROMPT: ", 1)[1].split()[0]
        assert record["model"] == ("gemini-2.5-flash-lite" if prompt_id[-1] in "13" else "gemini-2.5-flash")
    assert len(api.requests) == len(ids)


class _StallingAPI(FakeGeminiAPI):
    """Answers only when told to: a prompt is in flight at the CLI for as long as the test needs."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.release = threading.Event()
        self.arrived = threading.Event()

    def answer(self, model: str, prompt: str) -> str:
        self.arrived.set()
        self.release.wait(120)
        return super().answer(model, prompt)


def test_a_cli_killed_mid_prompt_fails_retryably_and_the_service_replaces_it(tmp_path, gemini_cli_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "fake-key-for-tests")
    with _StallingAPI() as api:
        resource = _resource(tmp_path, gemini_cli_path, api)
        failure: list[BaseException] = []
        thread = threading.Thread(target=lambda: failure.append(pytest.raises(GeminiFailure, _generate, resource).value))
        thread.start()
        assert api.arrived.wait(120), "the prompt never reached the API"
        (victim,) = _warm_cli_processes(tmp_path)[1]
        os.kill(victim, signal.SIGKILL)
        thread.join(120)
        api.release.set()
        (error,) = failure
        assert error.kind is FailureKind.OTHER and error.kind.retryable  # the step's retry policy takes over
        assert "ended mid-prompt" in str(error) and "\n" not in str(error)
        # The retry is served by a new warm CLI; the killed one is gone.
        retried = _generate(resource)
        assert retried.transport == "acp" and retried.response.startswith("# ai_ecosystem_watch")
        clis = _warm_cli_processes(tmp_path)[1]
        assert clis and victim not in clis


def test_a_prompt_past_its_timeout_is_cancelled_and_the_cli_serves_the_next(tmp_path, gemini_cli_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "fake-key-for-tests")
    with _StallingAPI() as api:
        resource = _resource(tmp_path, gemini_cli_path, api)
        with pytest.raises(GeminiFailure) as info:
            _generate(resource, timeout_s=5)
        assert info.value.kind is FailureKind.TIMEOUT and "cancelled" in str(info.value)
        before = _warm_cli_processes(tmp_path)[1]
        api.release.set()
        after = _generate(resource, "second_prompt")
        assert after.transport == "acp" and after.response.startswith("# second_prompt ")
        # The CLI acknowledged the cancel, so it stayed in the service and served the next prompt.
        assert before and _warm_cli_processes(tmp_path)[1] == before


def _cli_without_acp(tmp_path: Path, fake_cli: Path) -> Path:
    """A CLI from before ACP: rejects ``--acp`` as yargs does, answers headless calls as the fake."""
    wrapper = tmp_path / "old-cli" / "gemini"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do [ "$arg" = --acp ] && { echo "Unknown argument: acp" >&2; exit 1; }; done\n'
        f'exec {fake_cli} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def test_when_the_warm_cli_cannot_serve_the_call_is_made_one_shot_and_says_so(tmp_path, fake_cli, fake_cli_env, capfd):
    with FakeGeminiAPI() as api:
        result = _generate(_resource(tmp_path, str(_cli_without_acp(tmp_path, fake_cli)), api))
    assert result.transport == "oneshot" and result.metadata()["gemini.transport"].value == "oneshot"
    assert result.response.startswith("# ai_ecosystem_watch")
    # The step's log says why (Dagster's log handler writes the step's log to stderr here).
    (warning,) = [line for line in capfd.readouterr().err.splitlines() if "Gemini transport oneshot" in line]
    assert "a warm CLI did not start: the CLI exited with code 1: Unknown argument: acp" in warning
    assert "\n" not in warning
    (call,) = [json.loads(line) for line in fake_cli_env["log"].read_text().splitlines()]
    assert call["prompt"].startswith("NEUROHELIX PROMPT: ai_ecosystem_watch") and call["output"] == "json"
